"""User-facing errors.

Anything wrong with what a user gave us (a value, a file, a path, a checkpoint) raises
:class:`EmomusicError` (or a subclass) with a one-line message. The CLI prints it as
``Error: <message>`` and exits with status 2; it never shows a traceback for these.
"""

from __future__ import annotations


class EmomusicError(Exception):
    """A problem with the user's input, files or set-up, explained in one line."""


class EmotionError(EmomusicError, ValueError):
    """An emotion value or mood word that cannot be used."""


class PieceFormatError(EmomusicError):
    """A music file that cannot be read (corrupt, empty, unsupported)."""


class CheckpointError(EmomusicError):
    """A checkpoint that is missing, incomplete, or made for another model."""
