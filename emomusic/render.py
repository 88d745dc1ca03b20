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


def _prepare(piece: Piece, soundfont, synth: str, stacklevel: int):
    """What both renderers check and load first: (synth name, SoundFont path, the loaded
    SoundFont, ``preset(part) -> (bank, program)``); the synth's fallback note is a warning
    at the caller's caller (``stacklevel``)."""
    from emomusic.sf2 import load_soundfont

    name, note = resolve_synth(synth)
    if note:
        warnings.warn(note, stacklevel=stacklevel)
    piece.validate()
    if piece.is_empty():
        raise PieceFormatError("the piece has no notes to render")
    sf_path = soundfont if soundfont is not None else default_soundfont()
    sf = load_soundfont(sf_path)

    def preset(part: Part) -> tuple[int, int]:
        p = sf.preset_for(part.program, part.is_drum)
        return p.bank, p.program

    return name, sf_path, sf, preset


def render_piece(piece: Piece, soundfont: str | os.PathLike | None = None, sample_rate: int = 44100, *,
                 synth: str = "auto", reverb: float = 0.0, max_frames: int | None = None) -> np.ndarray:
    """Audio of ``piece``: float32 ``(frames, 2)``, peak at most 0.98.

    ``synth``: ``auto`` (FluidSynth when installed, else the numpy player), ``fluidsynth``
    or ``numpy``; ``reverb``: room reverb amount 0..1 (0 = dry). ``max_frames``: only the
    first frames are wanted (a session clip): FluidSynth and the reverb stop there, so the
    samples are those of the whole render, cut, except that the peak limit (0.98) is then
    measured on what is kept (the same unless the cut-off release tail was louder)."""
    from emomusic.audio import sample_peak
    from emomusic.sf2 import synthesize

    sr = _check_sample_rate(sample_rate)
    reverb = _check_reverb(reverb)
    name, sf_path, sf, preset = _prepare(piece, soundfont, synth, stacklevel=3)
    if name == "fluidsynth":
        from emomusic.render_fluidsynth import render_parts

        audio = render_parts(parts(piece), sf_path, sr, preset, max_frames=max_frames)
    else:
        audio = synthesize(sf, note_events(piece), sr)
    cut = max_frames is not None and audio.shape[0] >= int(max_frames)
    if cut:
        audio = audio[: int(max_frames)]
    if reverb > 0:
        from emomusic.audio import REVERB_TAIL_S, room_reverb

        # cut: the reverb's tail would be cut too (the reverb is causal: the same samples)
        audio = room_reverb(audio, sr, reverb, tail_s=0.0 if cut else REVERB_TAIL_S)
        if max_frames is not None:
            audio = audio[: int(max_frames)]
    audio *= np.float32(MASTER_GAIN)
    peak = sample_peak(audio)
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


BLOCK = 1 << 16  # frames per block when streaming a render to a file


def write_wav(piece: Piece, path: str | os.PathLike, soundfont: str | os.PathLike | None = None, sample_rate: int = 44100,
              *, synth: str = "auto", reverb: float = 0.0, loudness: float | None = None) -> Path:
    """Render ``piece`` and write a 16-bit stereo WAV atomically, levelled to ``loudness``
    LUFS (None: :data:`emomusic.audio.LISTENING_LUFS`; pass ``loudness=False`` for the
    unlevelled mix, peak at most 0.98) with the true peak at most
    :data:`emomusic.audio.TRUE_PEAK_DBTP`: the gain reaches the target and a true-peak
    look-ahead limiter (:mod:`emomusic.limiter`) takes the peaks above the ceiling, at most
    :data:`emomusic.limiter.MAX_REDUCTION_DB` (a mix that would need more stays under the
    target by the rest).

    Streamed (:func:`render_to_file`): the mix is rendered block by block into a temporary
    float32 file beside the output while its loudness is measured, then levelled, limited
    and written block by block, so memory stays flat whatever the length (FluidSynth;
    the numpy player renders in memory first)."""
    return render_to_file(piece, path, soundfont, sample_rate, synth=synth, reverb=reverb, loudness=loudness)["path"]


def render_to_file(piece: Piece, path: str | os.PathLike, soundfont: str | os.PathLike | None = None,
                   sample_rate: int = 44100, *, synth: str = "auto", reverb: float = 0.0,
                   loudness: float | None = None) -> dict:
    """:func:`write_wav`, returning what it did: ``{"path", "frames", "gain_db",
    "limiter_db" (largest gain reduction), "loudness_lufs" (of the file, BS.1770-4),
    "peak" (sample peak), "true_peak_dbtp" (at most the ceiling when levelled)}``."""
    import tempfile

    from emomusic.atomic import atomic_path, check_writable_dir
    from emomusic.audio import LISTENING_LUFS

    target = None if loudness is False else check_loudness(LISTENING_LUFS if loudness is None else loudness)
    path = Path(path)
    check_writable_dir(path.parent if str(path.parent) else Path("."))  # fail before the work
    sr = _check_sample_rate(sample_rate)
    try:
        with tempfile.TemporaryFile(dir=path.parent if str(path.parent) else None) as raw:
            meter = _Meter(sr)
            frames, peak = 0, 0.0
            for block in _mix_blocks(piece, soundfont, sr, synth, reverb):
                meter.add(block)
                peak = max(peak, float(np.max(np.abs(block))) if block.size else 0.0)
                if not math.isfinite(peak):
                    raise EmomusicError("rendering produced invalid samples")
                raw.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
                frames += block.shape[0]
            with atomic_path(path) as tmp:
                info = _level_and_write(raw, frames, tmp, sr, meter.integrated(), peak, target)
    except OSError as exc:  # disk full, permissions changed under us, ...
        raise EmomusicError(f"cannot write {path}: {exc.strerror or exc}") from None
    return dict(info, path=path, frames=frames)


def _mix_blocks(piece: Piece, soundfont, sr: int, synth: str, reverb: float):
    """The mix as :func:`render_piece` makes it (before its peak scaling), in blocks."""
    from emomusic.sf2 import synthesize

    reverb = _check_reverb(reverb)
    name, sf_path, sf, preset = _prepare(piece, soundfont, synth, stacklevel=4)
    if name == "fluidsynth":
        from emomusic.render_fluidsynth import iter_parts

        blocks = iter_parts(parts(piece), sf_path, sr, preset, BLOCK)
    else:
        whole = synthesize(sf, note_events(piece), sr)
        blocks = (whole[i:i + BLOCK] for i in range(0, whole.shape[0], BLOCK))
    fx = None
    if reverb > 0:
        from emomusic.audio import reverb_processor

        fx = reverb_processor(reverb)
    gain = np.float32(MASTER_GAIN)
    for b in blocks:
        if fx is not None:
            b = np.ascontiguousarray(fx(np.ascontiguousarray(b.T), float(sr), reset=False).T)
        yield (b * gain).astype(np.float32)
    if fx is not None:  # the reverb's tail (as emomusic.audio.room_reverb: 2 s)
        from emomusic.audio import REVERB_TAIL_S

        tail = np.zeros((2, int(round(REVERB_TAIL_S * sr))), dtype=np.float32)
        yield (np.ascontiguousarray(fx(tail, float(sr), reset=False).T) * gain).astype(np.float32)


class _Meter:
    """BS.1770-4 integrated loudness of a stream: K-weighting carried across blocks, the
    weighted power summed per 100 ms (a quarter block); blocks of 400 ms with 75 % overlap
    and pyloudnorm's gates (tested against pyloudnorm)."""

    def __init__(self, sr: int):
        from emomusic.audio import k_sos

        self.sr = sr
        self.sos = k_sos(sr)
        self.zi = None
        self.step = int(round(0.1 * sr))
        self.carry = 0.0
        self.carry_n = 0
        self.sums: list[float] = []
        self.frames = 0

    def add(self, block: np.ndarray) -> None:
        from scipy.signal import sosfilt

        from emomusic.audio import as_2d

        x = as_2d(block)[:, :2].astype(np.float64)
        if x.shape[0] == 0:
            return
        if self.zi is None:
            self.zi = np.zeros((self.sos.shape[0], 2, x.shape[1]))
        y, self.zi = sosfilt(self.sos, x, axis=0, zi=self.zi)
        p = np.sum(np.square(y), axis=1)
        self.frames += p.shape[0]
        i = 0
        if self.carry_n:
            take = min(self.step - self.carry_n, p.shape[0])
            self.carry += float(np.sum(p[:take]))
            self.carry_n += take
            i = take
            if self.carry_n == self.step:
                self.sums.append(self.carry)
                self.carry, self.carry_n = 0.0, 0
        full = (p.shape[0] - i) // self.step
        if full:
            self.sums.extend(p[i:i + full * self.step].reshape(full, self.step).sum(axis=1).tolist())
            i += full * self.step
        if i < p.shape[0]:
            self.carry += float(np.sum(p[i:]))
            self.carry_n += p.shape[0] - i

    def integrated(self) -> float:
        q = np.asarray(self.sums)
        if self.frames == 0:
            return -math.inf
        if q.shape[0] < 4:  # shorter than one block: ungated
            total = float(np.sum(q)) + self.carry
            return -0.691 + 10 * math.log10(total / self.frames) if total > 0 else -math.inf
        z = (q[:-3] + q[1:-2] + q[2:-1] + q[3:]) / (4 * self.step)
        with np.errstate(divide="ignore"):
            level = -0.691 + 10 * np.log10(np.maximum(z, 1e-300))
        keep = level >= -70.0
        if not keep.any():
            return -math.inf
        gate = -0.691 + 10 * math.log10(float(np.mean(z[keep]))) - 10.0
        keep = (level > gate) & (level > -70.0)
        return -0.691 + 10 * math.log10(float(np.mean(z[keep]))) if keep.any() else -math.inf


def _level_and_write(raw, frames: int, tmp: Path, sr: int, level: float, peak: float, target: float | None) -> dict:
    """Pass two: the temporary mix at its gain through the limiter into ``tmp`` (16-bit);
    once more with the gain raised by the shortfall when the limiter took the level down by
    more than 0.3 LU (within its budget)."""
    import soundfile as sf

    from emomusic.audio import TRUE_PEAK_DBTP
    from emomusic.limiter import MAX_REDUCTION_DB, Limiter

    if target is None or not math.isfinite(level):
        gain_db = 20 * math.log10(PEAK / peak) if peak > PEAK else 0.0
        meter = _Meter(sr)
        peaks = _copy_out(raw, frames, tmp, sr, gain_db, None, meter)
        return _info(gain_db, 0.0, meter.integrated(), peaks)
    gain_db = target - level
    budget = TRUE_PEAK_DBTP - 20 * math.log10(max(peak, 1e-12)) + MAX_REDUCTION_DB
    gain_db = min(gain_db, budget + 4.0)  # past this the limiter would have to take far too much
    for attempt in range(2):
        lim = Limiter(sr, TRUE_PEAK_DBTP, 2)
        meter = _Meter(sr)
        peaks = _copy_out(raw, frames, tmp, sr, gain_db, lim, meter)
        out_level = meter.integrated()
        short = target - out_level
        if attempt or not (short > 0.3) or lim.max_reduction_db + short > MAX_REDUCTION_DB + 2.0:
            break
        gain_db += short
    return _info(gain_db, lim.max_reduction_db, out_level, peaks)


def _info(gain_db: float, limiter_db: float, level: float, peaks: list[float]) -> dict:
    return {"gain_db": round(gain_db, 3), "limiter_db": round(limiter_db, 2),
            "loudness_lufs": round(level, 2) if math.isfinite(level) else None, "peak": round(peaks[0], 4),
            "true_peak_dbtp": round(20 * math.log10(peaks[1]), 2) if peaks[1] > 0 else None}


def _copy_out(raw, frames: int, tmp: Path, sr: int, gain_db: float, lim, meter=None) -> None:
    import soundfile as sf

    from emomusic.audio import true_peak

    g = np.float32(10 ** (gain_db / 20))
    raw.seek(0)
    peaks = [0.0, 0.0]  # sample peak, true peak of what is written
    with sf.SoundFile(str(tmp), "w", sr, 2, subtype="PCM_16", format="WAV") as wav:
        left = frames
        while left > 0:
            n = min(BLOCK, left)
            data = raw.read(n * 8)
            block = np.frombuffer(data, dtype=np.float32).reshape(-1, 2) * g
            left -= block.shape[0]
            if block.shape[0] == 0:
                raise EmomusicError("the temporary render file ended early")
            out = block if lim is None else lim.process(block)
            _emit(wav, out, meter, peaks)
        if lim is not None:
            _emit(wav, lim.flush(), meter, peaks)
    return peaks


def _emit(wav, out: np.ndarray, meter, peaks: list[float]) -> None:
    from emomusic.audio import to_pcm16, true_peak

    if out.shape[0] == 0:
        return
    if meter is not None:
        meter.add(out)
    peaks[0] = max(peaks[0], float(np.max(np.abs(out))))
    peaks[1] = max(peaks[1], true_peak(out))
    wav.write(to_pcm16(out))
