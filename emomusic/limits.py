"""Bounds on what emomusic reads, so no input can take unbounded time or memory.

Every reader (MIDI, ABC, MusicXML) checks the file size before parsing and the piece it
built afterwards; the estimator and the renderer rely on these bounds. A larger input
gets a one-line :class:`~emomusic.errors.PieceFormatError`.
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator

from emomusic.errors import PieceFormatError

MAX_SECONDS = 3600.0  # one hour of music
MAX_BEATS = 60_000.0  # one hour at 1000 BPM: bounds per-beat arrays whatever the tempo map says
MAX_NOTES = 200_000
MAX_TRACKS = 256
MAX_EVENTS = 20_000  # tempo, key, time-signature changes and markers, each
MAX_MIDI_BYTES = 4 * 1024 * 1024  # 200k notes take about 1.6 MB
MAX_ABC_BYTES = 2 * 1024 * 1024
MAX_MUSICXML_BYTES = 32 * 1024 * 1024  # uncompressed (.mxl archives are checked member by member)
# music21 parses ABC and MusicXML; what cannot be bounded beforehand is timed out (main thread).
PARSE_SECONDS = 20.0


def check_file_size(path, size: int, limit: int, what: str) -> None:
    if size > limit:
        raise PieceFormatError(f"{path} is too large to read as {what} ({size / 1e6:.1f} MB; at most {limit / 1e6:.0f} MB)")


def check_piece_size(piece, source) -> None:
    """Refuse a piece longer than :data:`MAX_SECONDS` (or :data:`MAX_BEATS`) or with more
    than :data:`MAX_NOTES` notes or :data:`MAX_TRACKS` tracks."""
    n = sum(len(t.notes) for t in piece.tracks)
    if n > MAX_NOTES:
        raise PieceFormatError(f"{source} has too many notes ({n}; at most {MAX_NOTES})")
    if len(piece.tracks) > MAX_TRACKS:
        raise PieceFormatError(f"{source} has too many tracks ({len(piece.tracks)}; at most {MAX_TRACKS})")
    for what, items in (("tempo changes", piece.tempos), ("key changes", piece.keys),
                        ("time-signature changes", piece.time_signatures), ("markers", piece.markers)):
        if len(items) > MAX_EVENTS:
            raise PieceFormatError(f"{source} has too many {what} ({len(items)}; at most {MAX_EVENTS})")
    if n == 0:
        return
    end = piece.end_beat
    seconds = piece.duration_seconds
    if not seconds <= MAX_SECONDS:  # NaN too
        raise PieceFormatError(
            f"{source} is too long ({seconds / 60:.0f} minutes; at most {MAX_SECONDS / 60:.0f} minutes of music)"
        )
    if not end <= MAX_BEATS:
        raise PieceFormatError(f"{source} is too long ({end:.0f} beats; at most {MAX_BEATS:.0f})")


class _TimeUp(BaseException):
    """Raised inside a parser that ran past its time (a BaseException, so a library's
    ``except Exception`` cannot swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float, message: str) -> Iterator[None]:
    """Stop the block with a one-line :class:`PieceFormatError` after ``seconds``.

    Uses ``SIGALRM``, so it acts only in the main thread of a process (elsewhere, e.g. in a
    web server's worker thread, the block runs unbounded and the size bounds are what
    protect it). An alarm set by the caller is restored afterwards."""
    import signal
    import threading

    if seconds is None or seconds <= 0 or threading.current_thread() is not threading.main_thread() \
            or not hasattr(signal, "setitimer"):
        yield
        return

    def _alarm(signum, frame):
        raise _TimeUp()

    old_handler = signal.signal(signal.SIGALRM, _alarm)
    old_delay, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.monotonic()
    try:
        yield
    except _TimeUp:
        raise PieceFormatError(message) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_delay:
            signal.setitimer(signal.ITIMER_REAL, max(1e-3, old_delay - (time.monotonic() - start)))
