"""Reading and writing pieces, chosen by file extension (``fmt`` overrides).

=========== ================================ =====================================
format      extensions                       read / write
=========== ================================ =====================================
midi        .mid .midi                       read (any type, any PPQ) / write (type 1, 480 PPQ)
abc         .abc                             read / write (music21 on read)
musicxml    .musicxml .xml .mxl              read / write (music21)
wav         .wav                             write (SoundFont rendering)
=========== ================================ =====================================

Every writer is atomic: the target appears whole or not at all.
"""

from __future__ import annotations

import os
from pathlib import Path

from emomusic.errors import EmomusicError, PieceFormatError
from emomusic.piece import Piece

EXTENSIONS = {
    ".mid": "midi",
    ".midi": "midi",
    ".abc": "abc",
    ".musicxml": "musicxml",
    ".xml": "musicxml",
    ".mxl": "musicxml",
    ".wav": "wav",
}
READABLE = ("midi", "abc", "musicxml")
WRITABLE = ("midi", "abc", "musicxml", "wav")
FORMAT_EXTENSION = {"midi": ".mid", "abc": ".abc", "musicxml": ".musicxml", "wav": ".wav"}


def format_for(path: str | os.PathLike, fmt: str | None = None, allowed: tuple[str, ...] = WRITABLE) -> str:
    """The format named by ``fmt`` or by ``path``'s extension; a clear error otherwise."""
    if fmt:
        f = fmt.lower().lstrip(".")
        f = {"mid": "midi", "midi": "midi", "xml": "musicxml", "mxl": "musicxml"}.get(f, f)
    else:
        ext = Path(path).suffix.lower()
        if ext not in EXTENSIONS:
            known = ", ".join(sorted({e for e, f in EXTENSIONS.items() if f in allowed}))
            raise EmomusicError(f"cannot tell the format of {path!s} from its extension; use one of {known} or --format")
        f = EXTENSIONS[ext]
    if f not in allowed:
        raise EmomusicError(f"format {f!r} is not supported here; use one of {', '.join(allowed)}")
    return f


def read_piece(path: str | os.PathLike, fmt: str | None = None, allow_empty: bool = False) -> Piece:
    """Read a MIDI, ABC or MusicXML file into a :class:`Piece`."""
    path = Path(path)
    f = format_for(path, fmt, READABLE)
    if not path.exists():
        raise EmomusicError(f"no such file: {path}")
    if path.is_dir():
        raise EmomusicError(f"{path} is a folder, not a music file")
    if not path.is_file():  # a device, pipe or socket: reading could block or never end
        raise EmomusicError(f"{path} is not a regular file")
    if path.stat().st_size == 0:
        raise PieceFormatError(f"{path} is empty")
    if f == "midi":
        from emomusic.io.midi import read_midi as reader
    elif f == "abc":
        from emomusic.io.abc import read_abc as reader
    else:
        from emomusic.io.musicxml import read_musicxml as reader
    piece = reader(path)
    if not allow_empty and piece.is_empty():
        raise PieceFormatError(f"{path} has no notes")
    return piece


def write_piece(piece: Piece, path: str | os.PathLike, fmt: str | None = None, **options) -> Path:
    """Write ``piece`` to ``path`` in the format of its extension (or ``fmt``), atomically.

    ``options`` go to the format's writer (e.g. ``soundfont=`` for WAV).
    """
    path = Path(path)
    f = format_for(path, fmt, WRITABLE)
    piece.validate()
    if f == "midi":
        from emomusic.io.midi import write_midi as writer
    elif f == "abc":
        from emomusic.io.abc import write_abc as writer
    elif f == "musicxml":
        from emomusic.io.musicxml import write_musicxml as writer
    else:
        from emomusic.render import write_wav as writer
    writer(piece, path, **options)
    return path
