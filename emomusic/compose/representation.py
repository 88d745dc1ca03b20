"""Piano-roll segments: the representation the VAE encodes.

A segment is ``bars_per_segment`` bars of 4/4 at 16th-note resolution, stored as a float32
array of shape ``(3, n_steps, n_pitches)``:

* channel 0 - onset (1 where a note starts),
* channel 1 - duration in steps / n_steps at the onset cell (notes are cut at the segment end),
* channel 2 - velocity / 127 at the onset cell.

Quantisation follows each file's own beat grid (MIDI ticks per quarter): EMOPIA's
transcriptions sit on a fixed 120 BPM grid, POP909 and VGMIDI are beat-aligned MIDI.
"""

from __future__ import annotations

import numpy as np

from emomusic.piece import Note

ONSET, DURATION, VELOCITY = 0, 1, 2


def notes_to_segments(notes, cfg, min_notes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Notes (pitch, start beats, duration beats, velocity) -> (segments (S, 3, T, P), keep mask (S,)).

    ``notes`` is an (N, 4) float array or a list of :class:`Note`. Segments with fewer than
    ``min_notes`` onsets are marked ``False`` in the mask (kept so sequences stay contiguous).
    """
    arr = _as_array(notes)
    T, P, spb = cfg.n_steps, cfg.n_pitches, cfg.steps_per_beat
    if arr.size == 0:
        return np.zeros((0, 3, T, P), np.float32), np.zeros(0, bool)
    start = np.round(arr[:, 1] * spb).astype(np.int64)
    dur = np.maximum(1, np.round(arr[:, 2] * spb).astype(np.int64))
    pitch = arr[:, 0].astype(np.int64)
    vel = np.clip(arr[:, 3], 1, 127) / 127.0
    ok = (pitch >= cfg.pitch_low) & (pitch <= cfg.pitch_high) & (start >= 0)
    start, dur, pitch, vel = start[ok], dur[ok], pitch[ok], vel[ok]
    n_seg = int(start.max() // T) + 1 if start.size else 0
    segs = np.zeros((n_seg, 3, T, P), np.float32)
    if n_seg == 0:
        return segs, np.zeros(0, bool)
    s = start // T
    t = start % T
    p = pitch - cfg.pitch_low
    d = np.minimum(dur, T - t)
    segs[s, ONSET, t, p] = 1.0
    segs[s, DURATION, t, p] = d / T
    segs[s, VELOCITY, t, p] = vel
    counts = segs[:, ONSET].reshape(n_seg, -1).sum(1)
    return segs, counts >= min_notes


def segments_to_notes(segs: np.ndarray, cfg, threshold: float = 0.5, offset_beats: float = 0.0,
                      melody: tuple[int, float] | None = None) -> list[Note]:
    """(S, 3, T, P) rolls (onset channel as probabilities or 0/1) -> notes, segment after segment.

    ``threshold``: the onset probability kept. ``melody`` = (lowest MIDI pitch, threshold): at a
    step where nothing from that pitch up reaches ``threshold``, the highest cell there that
    reaches the melody's (lower) threshold is kept too: one more melody note, never a chord."""
    T, spb = cfg.n_steps, cfg.steps_per_beat
    out: list[Note] = []
    for si, seg in enumerate(segs):
        keep = seg[ONSET] >= threshold
        if melody is not None:
            lo = max(0, int(melody[0]) - cfg.pitch_low)
            upper = seg[ONSET][:, lo:]
            maybe = upper >= float(melody[1])
            steps = np.nonzero(maybe.any(axis=1) & ~keep[:, lo:].any(axis=1))[0]
            if steps.size:
                top = maybe.shape[1] - 1 - np.argmax(maybe[steps, ::-1], axis=1)
                keep[steps, lo + top] = True
        ts, ps = np.nonzero(keep)
        for t, p in zip(ts.tolist(), ps.tolist()):
            d = int(round(float(seg[DURATION, t, p]) * T))
            d = max(1, min(d, T - t))
            v = int(round(float(seg[VELOCITY, t, p]) * 127))
            out.append(Note(int(p + cfg.pitch_low), offset_beats + (si * T + t) / spb, d / spb, max(1, min(127, v))))
    out.sort(key=lambda n: (n.start, n.pitch))
    return out


def transpose_segments(segs: np.ndarray, k: int) -> np.ndarray:
    """Shift the pitch axis by ``k`` semitones (notes moved off the range are dropped)."""
    if k == 0:
        return segs
    out = np.zeros_like(segs)
    if k > 0:
        out[..., k:] = segs[..., :-k]
    else:
        out[..., :k] = segs[..., -k:]
    return out


def _as_array(notes) -> np.ndarray:
    if isinstance(notes, np.ndarray):
        return notes.reshape(-1, 4).astype(np.float64)
    return np.array([(n.pitch, n.start, n.duration, n.velocity) for n in notes], dtype=np.float64).reshape(-1, 4)
