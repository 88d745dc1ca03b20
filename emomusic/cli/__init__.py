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


def _usage_error(exc: click.ClickException) -> str:
    """click's usage errors (three lines: Usage / Try / Error) as one line."""
    msg = exc.format_message().strip().replace("\n", " ")
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        return f"{msg} (see '{ctx.command_path} --help')"
    return msg


def _quiet_exit(code: int, console: bool) -> None:
    """Exit with ``code``; a Ctrl-C from here on (during interpreter shutdown, atexit
    callbacks, thread joins) ends the process quietly with status 130 instead of printing
    "Exception ignored in atexit callback" or a fatal "finalizing" error."""
    import signal

    def _now(signum, frame):  # pragma: no cover - exercised through a subprocess
        os._exit(130)

    try:
        if console:  # not when main() is called in-process (tests, embedding)
            signal.signal(signal.SIGINT, _now)
    except (ValueError, OSError):  # not the main thread (embedded use): nothing to do
        pass
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()
        code = code or 141
    except Exception:
        pass
    try:
        sys.stderr.flush()
    except Exception:
        pass
    if code:  # success returns, as click's own main does for in-process callers
        sys.exit(code)


def _drop_stdout() -> None:
    """Point stdout at /dev/null: its reader is gone, and Python's own flush at shutdown
    would otherwise fail again with "Exception ignored ... BrokenPipeError"."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line on stderr and exit status 2."""
    code = 0
    try:
        try:
            rv = cli.main(args=argv, prog_name="emomusic", standalone_mode=False)
            code = rv if isinstance(rv, int) else 0  # --help / --version return 0
        except click.exceptions.Abort as exc:  # click turns Ctrl-C (and EOF at a prompt) into Abort
            click.echo("Interrupted." if isinstance(exc.__context__, KeyboardInterrupt) else "Aborted.", err=True)
            code = 130
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.ClickException as exc:
            click.echo(f"Error: {_one_line(_usage_error(exc))}", err=True)
            code = 2 if isinstance(exc, click.UsageError) else exc.exit_code
        except EmomusicError as exc:
            click.echo(f"Error: {_one_line(exc)}", err=True)
            code = 2
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            code = 130
        except MemoryError:
            click.echo("Error: out of memory (the input or the requested output is too large for this machine)", err=True)
            code = 2
        except BrokenPipeError:  # `emomusic emotions | head`: the reader left; say nothing
            _drop_stdout()
            code = 141
        except OSError as exc:  # the file system or the machine refused (disk full, I/O error ...)
            if os.environ.get("EMOMUSIC_DEBUG"):
                raise
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            click.echo(f"Error: {_one_line(where + (exc.strerror or str(exc) or type(exc).__name__))}", err=True)
            code = 2
        except Exception as exc:  # last resort: no traceback for users unless asked for
            if os.environ.get("EMOMUSIC_DEBUG"):
                raise
            click.echo(f"Error: internal error ({type(exc).__name__}: {_one_line(exc)[:300]}); "
                       "set EMOMUSIC_DEBUG=1 for details", err=True)
            code = 1
    except KeyboardInterrupt:  # a second Ctrl-C while reporting the first
        code = 130
    _quiet_exit(code, console=argv is None)
