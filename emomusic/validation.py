"""Checks shared by every entry point (CLI, Python API, web): one rule each.

* :func:`check_seed`: a seed is a whole number in ``0 .. 2**32 - 1`` everywhere (numpy,
  torch and MusicGen all accept that range; larger values overflowed in some engines and
  negative ones were accepted by some commands and refused by others).
* :func:`check_fraction`: a share or amount such as ``variation`` or ``diversity`` is a real
  number in ``0 .. 1`` (booleans and NaN refused).
* :func:`clean_text`: a user-given title or description may not hold control characters
  (a newline in a title would inject lines into ``playlist.m3u8`` or headings into a
  README); it is trimmed and bounded in length.
"""

from __future__ import annotations

import math
import numbers
import unicodedata

from emomusic.errors import EmomusicError

SEED_MAX = 2**32 - 1


def check_seed(seed, name: str = "seed") -> int:
    """``seed`` as an ``int`` in ``0 .. 2**32 - 1``, or a one-line :class:`EmomusicError`."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        if isinstance(seed, float) and math.isfinite(seed) and seed == int(seed):
            seed = int(seed)
        else:
            raise EmomusicError(f"{name} must be a whole number in 0..{SEED_MAX}, got {seed!r}")
    seed = int(seed)
    if not 0 <= seed <= SEED_MAX:
        raise EmomusicError(f"{name} must be in 0..{SEED_MAX}, got {seed}")
    return seed


def check_fraction(value, name: str) -> float:
    """``value`` as a ``float`` in ``0 .. 1``, or a one-line :class:`EmomusicError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise EmomusicError(f"{name} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _bad_char(ch: str) -> bool:
    # Cc: C0/C1 controls (newline, tab, escape ...); Zl/Zp: line and paragraph separators;
    # the bidirectional overrides and isolates reorder the text shown around them.
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp") or "\u202a" <= ch <= "\u202e" or "\u2066" <= ch <= "\u2069"


def clean_text(text, what: str = "text", max_len: int = 200) -> str:
    """``text`` trimmed, checked to hold no control characters and at most ``max_len``
    characters; a one-line :class:`EmomusicError` naming ``what`` otherwise."""
    if not isinstance(text, str):
        raise EmomusicError(f"{what} must be text, got {type(text).__name__}")
    bad = next((ch for ch in text if _bad_char(ch)), None)
    if bad is not None:
        raise EmomusicError(f"{what} may not contain control characters (found {bad!r})")
    text = text.strip()
    if len(text) > max_len:
        raise EmomusicError(f"{what} is too long ({len(text)} characters; at most {max_len})")
    return text
