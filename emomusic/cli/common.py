"""Options and helpers shared by the subcommands."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

from emomusic.emotion import Emotion, emotion_from_options, parse_emotion
from emomusic.errors import EmomusicError


def emotion_options(f):
    """Add ``--valence``, ``--arousal`` and ``--mood`` to a command."""
    f = click.option("--mood", "-m", type=str, default=None, help="A mood word (see 'emomusic emotions') or 'V,A'.")(f)
    f = click.option("--arousal", "-a", type=float, default=None, help="Arousal in [-1, 1] (calm .. excited).")(f)
    f = click.option("--valence", "-v", type=float, default=None, help="Valence in [-1, 1] (unpleasant .. pleasant).")(f)
    return f


def _check_seed(ctx, param, value):
    if value is None:
        return None
    from emomusic.validation import check_seed

    return check_seed(value, "--seed")


def seed_option(f=None, *, default: int | None = 0, help: str = "Random seed (same seed, same output)."):
    """``--seed``: one rule for every command (emomusic.validation.check_seed, 0..2**32-1)."""
    def deco(g):
        return click.option("--seed", type=int, default=default, show_default=default is not None, help=help,
                            callback=_check_seed)(g)
    return deco(f) if f is not None else deco


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print a machine-readable JSON result.")(f)


def resolve_emotion(valence: float | None, arousal: float | None, mood: str | None) -> Emotion:
    return emotion_from_options(valence, arousal, mood)


def resolve_point(text: str, option: str) -> Emotion:
    """A ``--from``/``--to`` value: a mood word or ``V,A``."""
    try:
        return parse_emotion(text)
    except EmomusicError as exc:
        raise EmomusicError(f"{option}: {exc}") from None


def positive(name: str, value: float | int | None, allow_zero: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise EmomusicError(f"{name} must be a finite number, got {value}")
    if value < 0 or (value == 0 and not allow_zero):
        raise EmomusicError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, default=_json_default))


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def output_paths(output: Path, n: int, fmt: str, stem: str) -> list[Path]:
    """Where ``--n`` outputs go: ``output`` itself for one, ``output/<stem>_NNN.ext`` for more."""
    if n == 1:
        return [output]
    if output.exists() and not output.is_dir():
        raise EmomusicError(f"with --n {n}, -o must be a folder, but {output} is a file")
    if output.suffix and output.suffix.lower() in (".mid", ".midi", ".abc", ".musicxml", ".xml", ".wav", ".svg", ".png"):
        raise EmomusicError(f"with --n {n}, -o must be a folder, not a file name like {output.name}")
    ext = FORMAT_SUFFIX.get(fmt, "." + fmt)
    return [output / f"{stem}_{i + 1:03d}{ext}" for i in range(n)]


# Output extensions the commands know: the piece formats of emomusic.io plus sheet music.
OUTPUT_EXTENSIONS = {
    ".mid": "midi", ".midi": "midi", ".abc": "abc", ".musicxml": "musicxml", ".xml": "musicxml",
    ".mxl": "musicxml", ".wav": "wav", ".svg": "svg", ".png": "png",
}
FORMAT_SUFFIX = {"midi": ".mid", "abc": ".abc", "musicxml": ".musicxml", "wav": ".wav", "svg": ".svg", "png": ".png"}


def output_format(output: Path, n: int, fmt: str | None, formats: tuple[str, ...], default: str) -> str:
    """The output format of a generating command: ``--format`` if given, else ``-o``'s
    extension; with ``--n`` > 1 (``-o`` is a folder) ``--format`` or ``default``."""
    if fmt is not None:
        fmt = {"mid": "midi", "xml": "musicxml", "mxl": "musicxml"}.get(fmt.lower(), fmt.lower())
        if fmt not in formats:
            raise EmomusicError(f"unknown --format {fmt!r}; use one of {', '.join(formats)}")
    if n > 1:
        return fmt or default
    ext = output.suffix.lower()
    known = {e: f for e, f in OUTPUT_EXTENSIONS.items() if f in formats}
    if ext in known:
        if fmt is not None and known[ext] != fmt:
            raise EmomusicError(f"-o {output.name} is {known[ext]}, but --format says {fmt}")
        return known[ext]
    if fmt is None:
        raise EmomusicError(
            f"cannot tell the format of {output} from its extension; use one of {', '.join(sorted(known))} or --format"
        )
    return fmt


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()
