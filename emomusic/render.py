"""Render a :class:`~emomusic.piece.Piece` to audio through a SoundFont.

Two players (``synth=``, CLI ``--synth``):

* ``fluidsynth``: FluidSynth through pyfluidsynth (:mod:`emomusic.render_fluidsynth`), the
  reference SoundFont player; used by default (``auto``) when libfluidsynth is installed.
* ``numpy``: emomusic's own SoundFont 2 player (:mod:`emomusic.sf2`), which needs nothing
  beyond PyPI; ``auto`` falls back to it silently, an explicit ``fluidsynth`` with a warning.

Both apply the sustain pedal and pitch bends of :class:`~emomusic.piece.Track`, pick the
same preset, and share the optional room reverb (``reverb=``, :func:`emomusic.audio.room_reverb`).
The default SoundFont is ``TimGM6mb.sf2``, which ships inside the pretty_midi wheel;
``soundfont=`` (CLI ``--soundfont``) overrides it.

Output of :func:`render_piece`: float32, shape ``(frames, 2)``, at ``sample_rate`` (44.1 kHz
by default); its length is the piece's duration plus the release tails of the last notes
(and the reverb tail). The mix is scaled down when its peak would exceed 0.98, so it never
clips. :func:`write_wav` then levels the file to ``loudness`` LUFS (default
:data:`emomusic.audio.LISTENING_LUFS`, -16) under a -1 dBTP true-peak ceiling.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emomusic.errors import EmomusicError, PieceFormatError
from emomusic.piece import Piece, without_overlaps

PEAK = 0.98
MASTER_GAIN = 0.5  # headroom for chords and several parts before the peak limit applies
SYNTHS = ("auto", "fluidsynth", "numpy")
SESSION_REVERB = 0.2  # room reverb amount for listening sessions (emomusic.audio.room_reverb)


def resolve_synth(synth: str = "auto") -> tuple[str, str | None]:
    """The player to use for ``synth`` and a message when an explicit choice cannot be
    honoured: ``auto`` is FluidSynth when it loads, else the numpy player (silently);
    ``fluidsynth`` falls back to the numpy player with a message when FluidSynth is missing."""
    if synth not in SYNTHS:
        raise EmomusicError(f"synth must be one of {', '.join(SYNTHS)}, got {synth!r}")
    if synth == "numpy":
        return "numpy", None
    from emomusic import render_fluidsynth

    if render_fluidsynth.available():
        return "fluidsynth", None
    if synth == "fluidsynth":
        return "numpy", ("FluidSynth is not available (pip install pyfluidsynth and the libfluidsynth3 "
                         "system library); rendering with emomusic's numpy SoundFont player instead")
    return "numpy", None


def default_soundfont() -> Path:
    """``TimGM6mb.sf2`` from the installed pretty_midi package (no download)."""
    env = os.environ.get("EMOMUSIC_SOUNDFONT")
    if env:
        return Path(env)
    try:
        from importlib.resources import files

        from emomusic.quiet import quiet_import

        p = Path(str(files(quiet_import("pretty_midi")) / "TimGM6mb.sf2"))  # importing it may talk on stdout
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


@dataclass(frozen=True)
class Part:
    """One track as the players see it, in seconds: ``notes`` are ``(start, end, pitch,
    velocity)`` with the key released at ``end`` (one voice per key, as in a MIDI file),
    ``pedals`` ``(down, up)``, ``bends`` ``(time, value -8192..8191)``."""

    index: int
    program: int
    is_drum: bool
    notes: tuple
    pedals: tuple
    bends: tuple


def parts(piece: Piece) -> list[Part]:
    """The piece's tracks with notes, through its tempo map (``index``: the track's position)."""
    beats, secs, bpms = piece._tempo_table()
    b = np.asarray(beats)
    out = []
    for i, t in enumerate(piece.tracks):
        if not t.notes:
            continue
        notes = without_overlaps(t.notes)
        s = _to_seconds(np.array([n.start for n in notes]), b, secs, bpms)
        e = _to_seconds(np.array([n.end for n in notes]), b, secs, bpms)
        ns = tuple((float(s0), float(max(e0, s0 + 1e-3)), n.pitch, n.velocity) for n, s0, e0 in zip(notes, s, e))
        pd = ()
        if t.pedals:
            ps = _to_seconds(np.array([p.start for p in t.pedals]), b, secs, bpms)
            pe = _to_seconds(np.array([p.end for p in t.pedals]), b, secs, bpms)
            pd = tuple(sorted((float(x), float(y)) for x, y in zip(ps, pe)))
        bd = ()
        if t.bends:
            order = sorted(t.bends, key=lambda x: x.beat)
            bt = _to_seconds(np.array([x.beat for x in order]), b, secs, bpms)
            bd = tuple((float(x), int(v.value)) for x, v in zip(bt, order))
        out.append(Part(i, t.program, t.is_drum, ns, pd, bd))
    return out


def note_events(piece: Piece) -> list[tuple]:
    """``(start_s, duration_s, pitch, velocity, program, is_drum, part, bend)`` for every
    note as the numpy player sounds it: a key released while the sustain pedal is down
    sounds until the pedal lifts (or until its key is struck again); ``bend`` is None or
    ``(times_s, semitones)`` relative to the note's start (see :func:`emomusic.sf2.synthesize`)."""
    from emomusic.piece import BEND_RANGE_SEMITONES
    from emomusic.sf2 import MAX_RELEASE_S

    events = []
    for part in parts(piece):
        next_on: dict[int, float] = {}
        ends = [0.0] * len(part.notes)
        for k in range(len(part.notes) - 1, -1, -1):
            start, end, pitch, _ = part.notes[k]
            for down, up in part.pedals:
                if down <= end < up:
                    end = up
                    break
            ends[k] = min(end, next_on.get(pitch, math.inf))
            next_on[pitch] = start
        bt = np.array([x[0] for x in part.bends])
        bv = np.array([x[1] for x in part.bends], dtype=np.float64) * (BEND_RANGE_SEMITONES / 8192.0)
        for (start, _, pitch, vel), end in zip(part.notes, ends):
            bend = None
            if bt.size:
                i0 = int(np.searchsorted(bt, start, side="right")) - 1
                i1 = int(np.searchsorted(bt, end + MAX_RELEASE_S, side="right"))
                sel = slice(max(0, i0), i1)
                times, semis = np.maximum(bt[sel] - start, 0.0), bv[sel]
                if i0 < 0:
                    times, semis = np.concatenate([[0.0], times]), np.concatenate([[0.0], semis])
                if np.any(semis != 0):
                    bend = (times, semis)
            events.append((start, max(end - start, 1e-3), pitch, vel, part.program, part.is_drum, part.index, bend))
    events.sort(key=lambda e: (e[0], e[6], e[2]))
    return events


def _to_seconds(x: np.ndarray, beats: np.ndarray, secs, bpms) -> np.ndarray:
    i = np.clip(np.searchsorted(beats, x, side="right") - 1, 0, len(beats) - 1)
    return np.asarray(secs)[i] + (x - beats[i]) * 60.0 / np.asarray(bpms)[i]


def render_piece(piece: Piece, soundfont: str | os.PathLike | None = None, sample_rate: int = 44100, *,
                 synth: str = "auto", reverb: float = 0.0) -> np.ndarray:
    """Audio of ``piece``: float32 ``(frames, 2)``, peak at most 0.98.

    ``synth``: ``auto`` (FluidSynth when installed, else the numpy player), ``fluidsynth``
    or ``numpy``; ``reverb``: room reverb amount 0..1 (0 = dry)."""
    from emomusic.sf2 import load_soundfont, synthesize

    sr = _check_sample_rate(sample_rate)
    reverb = _check_reverb(reverb)
    name, note = resolve_synth(synth)
    if note:
        warnings.warn(note, stacklevel=2)
    piece.validate()
    if piece.is_empty():
        raise PieceFormatError("the piece has no notes to render")
    sf_path = soundfont if soundfont is not None else default_soundfont()
    sf = load_soundfont(sf_path)
    if name == "fluidsynth":
        from emomusic.render_fluidsynth import render_parts

        def preset(part: Part) -> tuple[int, int]:
            p = sf.preset_for(part.program, part.is_drum)
            return p.bank, p.program

        audio = render_parts(parts(piece), sf_path, sr, preset)
    else:
        audio = synthesize(sf, note_events(piece), sr)
    if reverb > 0:
        from emomusic.audio import room_reverb

        audio = room_reverb(audio, sr, reverb)
    audio *= np.float32(MASTER_GAIN)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if not np.isfinite(peak):
        raise EmomusicError("rendering produced invalid samples")
    if peak > PEAK:
        audio *= np.float32(PEAK / peak * (1 - 1e-6))  # float32 rounding stays below PEAK
    return audio


def _check_reverb(reverb) -> float:
    try:
        r = float(reverb)
    except (TypeError, ValueError):
        raise EmomusicError(f"reverb must be a number between 0 and 1, got {reverb!r}") from None
    if not 0.0 <= r <= 1.0:
        raise EmomusicError(f"reverb must be between 0 and 1, got {reverb}")
    return r


def check_loudness(loudness) -> float | None:
    """A loudness target in LUFS (-40..-6), or None for no levelling."""
    if loudness is None:
        return None
    try:
        v = float(loudness)
    except (TypeError, ValueError):
        raise EmomusicError(f"loudness must be a number of LUFS (e.g. -16) or 'off', got {loudness!r}") from None
    if not (math.isfinite(v) and -40.0 <= v <= -6.0):
        raise EmomusicError(f"loudness must be between -40 and -6 LUFS, got {loudness}")
    return v


def write_wav(piece: Piece, path: str | os.PathLike, soundfont: str | os.PathLike | None = None, sample_rate: int = 44100,
              *, synth: str = "auto", reverb: float = 0.0, loudness: float | None = None) -> Path:
    """Render ``piece`` and write a 16-bit stereo WAV atomically, levelled to ``loudness``
    LUFS (None: :data:`emomusic.audio.LISTENING_LUFS`; pass ``loudness=False`` for the
    unlevelled mix) with the true peak at most :data:`emomusic.audio.TRUE_PEAK_DBTP`."""
    from emomusic.atomic import check_writable_dir
    from emomusic.audio import LISTENING_LUFS, normalize_lufs
    from emomusic.audio import write_wav as _write

    target = None if loudness is False else check_loudness(LISTENING_LUFS if loudness is None else loudness)
    path = Path(path)
    check_writable_dir(path.parent if str(path.parent) else Path("."))  # fail before the work
    sr = _check_sample_rate(sample_rate)
    audio = render_piece(piece, soundfont=soundfont, sample_rate=sr, synth=synth, reverb=reverb)
    if target is not None:
        audio = normalize_lufs(audio, sr, target)
    try:
        return _write(path, audio, sr, peak=PEAK)
    except OSError as exc:  # disk full, permissions changed under us, ...
        raise EmomusicError(f"cannot write {path}: {exc.strerror or exc}") from None
