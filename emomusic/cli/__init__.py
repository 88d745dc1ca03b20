"""The ``emomusic`` command line: a thin click layer over the Python API.

Subcommands live in their own modules and are imported only when run, so
``emomusic --help`` and the non-neural commands never import torch.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from emomusic import __version__
from emomusic.errors import EmomusicError

# name -> (module, attribute, one-line help shown by --help without importing the module)
COMMANDS = {
    "compose": ("emomusic.cli.compose", "compose", "Compose multi-track MIDI for an emotion (VAE + 4-step diffusion-GAN)."),
    "melody": ("emomusic.cli.melody", "melody", "Write ABC melodies for an emotion (attribute template + ABC language model)."),
    "session": ("emomusic.cli.session", "session", "Build an iso-principle listening session from one mood to another."),
    "clip": ("emomusic.cli.clip", "clip", "Generate an audio clip for an emotion with MusicGen (+ LoRA adapter)."),
    "analyze": ("emomusic.cli.analyze", "analyze", "Measure a piece's musical attributes and estimate its emotion."),
    "render": ("emomusic.cli.render", "render", "Render MIDI/ABC/MusicXML to WAV through a SoundFont."),
    "emotions": ("emomusic.cli.analyze", "emotions", "List the mood words and their valence-arousal coordinates."),
    "serve": ("emomusic.cli.serve", "serve", "Start the local web page and HTTP API (emomusic serve, then open the URL)."),
    "train": ("emomusic.cli.train", "train", "Train the models (vae, diffgan, baseline, melody, musicgen-lora)."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy or {}

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx, name):
        if name in self.lazy:
            module, attr, _ = self.lazy[name]
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter):
        rows = [(name, self.lazy[name][2]) for name in self.list_commands(ctx) if name in self.lazy]
        rows += [
            (name, cmd.get_short_help_str(limit=80))
            for name, cmd in ((n, super(LazyGroup, self).get_command(ctx, n)) for n in super().list_commands(ctx))
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(sorted(rows))


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="emomusic")
def cli() -> None:
    """Turn an emotion into music.

    An emotion is a valence-arousal point in [-1, 1] x [-1, 1] (--valence 0.6 --arousal -0.4),
    a mood word (--mood calm; see 'emomusic emotions') or, for journeys, --from/--to.

    emomusic is not a medical device; sessions are for listening and research.
    """


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line on stderr and exit status 2."""
    try:
        cli.main(args=argv, prog_name="emomusic", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except EmomusicError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # last resort: no traceback for users unless asked for
        if os.environ.get("EMOMUSIC_DEBUG"):
            raise
        click.echo(f"Error: internal error ({type(exc).__name__}: {exc}); set EMOMUSIC_DEBUG=1 for details", err=True)
        sys.exit(1)
