"""Render a :class:`~emomusic.piece.Piece` to audio through a SoundFont.

The default path is emomusic's own numpy SoundFont 2 synthesizer (:mod:`emomusic.sf2`), so
rendering installs from PyPI alone. The default SoundFont is ``TimGM6mb.sf2``, which ships
inside the pretty_midi wheel; ``soundfont=`` (CLI ``--soundfont``) overrides it.

Output: float32, shape ``(frames, 2)``, at ``sample_rate`` (44.1 kHz by default); its
length is the piece's duration plus the release tails of the last notes. The mix is
scaled down when its peak would exceed 0.98, so it never clips.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from emomusic.errors import EmomusicError, PieceFormatError
from emomusic.piece import Piece

PEAK = 0.98
MASTER_GAIN = 0.5  # headroom for chords and several parts before the peak limit applies


def default_soundfont() -> Path:
    """``TimGM6mb.sf2`` from the installed pretty_midi package (no download)."""
    env = os.environ.get("EMOMUSIC_SOUNDFONT")
    if env:
        return Path(env)
    try:
        from importlib.resources import files

        p = Path(str(files("pretty_midi") / "TimGM6mb.sf2"))
    except Exception:  # pragma: no cover - pretty_midi is a dependency
        raise EmomusicError("no default SoundFont: pretty_midi is not installed; pass --soundfont PATH") from None
    if not p.is_file():
        raise EmomusicError(f"no default SoundFont at {p}; pass --soundfont PATH")
    return p


def _check_sample_rate(sample_rate) -> int:
    try:
        sr = int(sample_rate)
    except (TypeError, ValueError):
        raise EmomusicError(f"sample rate must be a whole number of Hz, got {sample_rate!r}") from None
    if sr != sample_rate or not 8000 <= sr <= 192000:
        raise EmomusicError(f"sample rate must be a whole number between 8000 and 192000 Hz, got {sample_rate}")
    return sr


def note_events(piece: Piece) -> list[tuple[float, float, int, int, int, bool]]:
    """``(start_s, duration_s, pitch, velocity, program, is_drum)`` for every note, through
    the piece's tempo map."""
    beats, secs, bpms = piece._tempo_table()
    b = np.asarray(beats)
    events = []
    for t in piece.tracks:
        if not t.notes:
            continue
        starts = np.array([n.start for n in t.notes])
        ends = np.array([n.end for n in t.notes])
        s = _to_seconds(starts, b, secs, bpms)
        e = _to_seconds(ends, b, secs, bpms)
        for n, s0, e0 in zip(t.notes, s, e):
            events.append((float(s0), float(max(e0 - s0, 1e-3)), n.pitch, n.velocity, t.program, t.is_drum))
    return events


def _to_seconds(x: np.ndarray, beats: np.ndarray, secs, bpms) -> np.ndarray:
    i = np.clip(np.searchsorted(beats, x, side="right") - 1, 0, len(beats) - 1)
    return np.asarray(secs)[i] + (x - beats[i]) * 60.0 / np.asarray(bpms)[i]


def render_piece(piece: Piece, soundfont: str | os.PathLike | None = None, sample_rate: int = 44100) -> np.ndarray:
    """Audio of ``piece``: float32 ``(frames, 2)``, peak at most 0.98."""
    from emomusic.sf2 import load_soundfont, synthesize

    sr = _check_sample_rate(sample_rate)
    piece.validate()
    if piece.is_empty():
        raise PieceFormatError("the piece has no notes to render")
    sf = load_soundfont(soundfont if soundfont is not None else default_soundfont())
    audio = synthesize(sf, note_events(piece), sr)
    audio *= np.float32(MASTER_GAIN)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if not np.isfinite(peak):
        raise EmomusicError("rendering produced invalid samples")
    if peak > PEAK:
        audio *= np.float32(PEAK / peak * (1 - 1e-6))  # float32 rounding stays below PEAK
    return audio


def write_wav(piece: Piece, path: str | os.PathLike, soundfont: str | os.PathLike | None = None, sample_rate: int = 44100) -> Path:
    """Render ``piece`` and write a 16-bit stereo WAV atomically."""
    from emomusic.atomic import check_writable_dir
    from emomusic.audio import write_wav as _write

    path = Path(path)
    check_writable_dir(path.parent if str(path.parent) else Path("."))  # fail before the work
    audio = render_piece(piece, soundfont=soundfont, sample_rate=sample_rate)
    try:
        return _write(path, audio, _check_sample_rate(sample_rate), peak=PEAK)
    except OSError as exc:  # disk full, permissions changed under us, ...
        raise EmomusicError(f"cannot write {path}: {exc.strerror or exc}") from None
