"""Articulation: how long a piece's notes are held, chosen per piece as real pianists differ.

Real piano pieces differ a lot in how many notes sound at once: in EMOPIA's training clips
(16 bars, notes as played, pedal not applied) the mean number of pitches sounding ranges from
about 4 to 10 (10th to 90th percentile) within every quadrant, mostly because one player holds
notes into the next ones (legato, broken chords held under the hand) and another lifts them
early. The texture's rules alone gave every generated piece nearly the same hold (the spread
within a quadrant a third of the real one), one of the clearest tells of a classifier
two-sample test against real music (``benchmarks/realism.py``; docs/compose.md).

:func:`articulate` draws a target for one piece from the real distribution at its emotion
(:data:`POLYPHONY_LOG`: log-normal per quadrant, measured on EMOPIA's train split, blended
between the quadrants by the emotion's position) and scales every note's length by the one
factor (between :data:`MIN_SCALE` and :data:`MAX_SCALE`) that brings the piece's polyphony
(:func:`emomusic.metrics.polyphony`) nearest the target. Onsets, pitches and velocities stay;
the new ends lie on a grid of :data:`GRID` steps per beat (sixteenth notes, where the onsets lie:
a score made from the MIDI file reads as plain sixteenth-note values); a
lengthened note never runs into the next onset of its pitch in its track (one voice per key,
as a MIDI file holds it), past the harmony window it ends in (half a bar; the texture changes
chords there: a note does not run into a change it does not reach, and one that ends exactly on
a change may be held through the next window) or past the piece's end, and
the notes that close the piece (those still sounding at its end) keep their length, so the
final chord still rings to the end.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

import numpy as np

from emomusic.emotion import Emotion, mean_emotion
from emomusic.piece import Piece

# log of the mean number of pitches sounding at once (emomusic.metrics.polyphony, 12 steps per
# beat): (mean, standard deviation) per quadrant over EMOPIA's train split, its clips cut to 16
# bars as the realism benchmark cuts them (876 clips; `python scripts/articulation_targets.py
# ../shared/data/emopia` prints them: fit_targets). Linear means: Q1 6.0, Q2 6.9, Q3 5.9, Q4 5.5
# (SD 1.3-2.2).
POLYPHONY_LOG = {"Q1": (1.760, 0.281), "Q2": (1.874, 0.330), "Q3": (1.726, 0.288), "Q4": (1.669, 0.235)}
TARGET_SD_LIMIT = 1.8  # targets are drawn within this many standard deviations of the mean
MIN_SCALE = 0.6  # the shortest articulation: notes at 60% of their length ...
MAX_SCALE = 2.5  # ... the longest: two and a half times (held into the next notes)
SEARCH_STEPS = 10  # bisection steps on the log of the scale (to within ~0.1%)
RESOLUTION = 12  # grid steps per beat, as emomusic.metrics.polyphony
GRID = 4  # scaled note ends land on this many steps per beat (sixteenth notes, as the onsets: clean notation)


def fit_targets(pieces: Sequence[Piece], quadrants: Sequence[str]) -> dict[str, tuple[float, float]]:
    """:data:`POLYPHONY_LOG` from real pieces: per quadrant, the mean and standard deviation of
    the log of :func:`emomusic.metrics.polyphony` (pieces without notes are skipped), rounded
    to 3 decimals."""
    from emomusic.metrics import polyphony

    logs: dict[str, list[float]] = {}
    for p, q in zip(pieces, quadrants):
        if p.notes:
            logs.setdefault(q, []).append(math.log(polyphony(p)))
    return {q: (round(float(np.mean(v)), 3), round(float(np.std(v)), 3)) for q, v in sorted(logs.items())}


def _weights(emotion: Emotion) -> dict[str, float]:
    """Bilinear weights of the four quadrants at ``emotion`` (1 at a quadrant's corner)."""
    v, a = (emotion.valence + 1) / 2, (emotion.arousal + 1) / 2
    return {"Q1": v * a, "Q2": (1 - v) * a, "Q3": (1 - v) * (1 - a), "Q4": v * (1 - a)}


def target_distribution(emotion: Emotion) -> tuple[float, float]:
    """(mean, SD) of the log polyphony drawn for ``emotion``: the quadrants' values of
    :data:`POLYPHONY_LOG`, blended bilinearly by the emotion's position."""
    w = _weights(emotion)
    mean = sum(w[q] * POLYPHONY_LOG[q][0] for q in w)
    sd = sum(w[q] * POLYPHONY_LOG[q][1] for q in w)
    return float(mean), float(sd)


def draw_target(emotion: Emotion, seed: int) -> float:
    """The polyphony one piece aims at: log-normal at ``emotion`` (:func:`target_distribution`),
    within :data:`TARGET_SD_LIMIT` standard deviations, seeded."""
    mean, sd = target_distribution(emotion)
    z = float(np.clip(np.random.default_rng([int(seed), 23]).standard_normal(), -TARGET_SD_LIMIT, TARGET_SD_LIMIT))
    return math.exp(mean + sd * z)


class _Held:
    """A piece's notes as arrays, to find the polyphony of its notes scaled by a factor fast."""

    def __init__(self, piece: Piece):
        rows = [(ti, j, n.start, n.end, n.pitch) for ti, t in enumerate(piece.tracks) for j, n in enumerate(t.notes)]
        a = np.array(rows, dtype=float).reshape(-1, 5)
        self.track, self.index = a[:, 0].astype(int), a[:, 1].astype(int)
        self.start, self.end, self.pitch = a[:, 2], a[:, 3], a[:, 4].astype(int)
        self.keys, self.column = np.unique(self.pitch, return_inverse=True)  # one column per pitch used
        self.total = float(self.end.max()) if len(a) else 0.0
        # closing notes (still sounding at the end) keep their length
        self.closing = self.end >= self.total - 1e-6
        # a note may grow up to the next onset of its pitch in its track, and the piece's end
        limit = np.full(len(a), self.total)
        order = np.lexsort((self.start, self.pitch, self.track))
        same = (self.track[order][1:] == self.track[order][:-1]) & (self.pitch[order][1:] == self.pitch[order][:-1])
        nxt = np.where(same, self.start[order][1:], self.total)
        limit[order[:-1]] = np.minimum(limit[order[:-1]], nxt)
        # ... and the end of the harmony window (half bar; a bar in odd metres) it ends in: a held
        # note does not run through a chord change it does not reach. A note that ends on a
        # change counts as ending in the next window and may be held through it, as a hand holds
        # the last note of a figure into the next chord (capping those at the change instead
        # left the polyphony targets out of reach: realism 0.809 -> 0.833, session 9)
        ts = piece.time_signature
        window = ts.bar_beats / 2 if ts.numerator % 2 == 0 else ts.bar_beats
        limit = np.minimum(limit, (np.floor(self.end / window + 1e-9) + 1) * window)
        self.limit = np.maximum(limit, self.end)  # never shorter than it is because of the caps

    def ends(self, scale: float) -> np.ndarray:
        """The notes' ends with their lengths scaled by ``scale``, on the :data:`GRID` (at least
        one step long; a cap that is off the grid is kept as it is). Lengthening never shortens a
        note and shortening never lengthens one (where the grid would); a scale of exactly 1
        keeps them as they are."""
        if scale == 1.0:
            return self.end.copy()
        dur = self.end - self.start
        end = np.round((self.start + dur * scale) * GRID) / GRID
        end = np.maximum(end, self.start + 1.0 / GRID)
        grown = np.minimum(np.maximum(end, self.end), self.limit) if scale > 1 else np.minimum(end, self.end)
        return np.where(self.closing, self.end, grown)

    def polyphony(self, scale: float) -> float:
        """:func:`emomusic.metrics.polyphony` of the piece with its notes scaled by ``scale``."""
        ends = self.ends(scale)
        n_steps = int(math.ceil(max(self.total, float(ends.max())) * RESOLUTION - 1e-9))
        a = np.rint(self.start * RESOLUTION).astype(int)
        b = np.maximum(a + 1, np.rint(ends * RESOLUTION).astype(int))
        diff = np.zeros((n_steps + 2, len(self.keys)), dtype=np.int32)
        np.add.at(diff, (a, self.column), 1)
        np.add.at(diff, (np.minimum(b, n_steps + 1), self.column), -1)
        act = (np.cumsum(diff, axis=0)[:n_steps] > 0).sum(axis=1)
        act = act[act > 0]
        return float(act.mean()) if act.size else math.nan


def fit_scale(piece: Piece, target: float) -> float:
    """The factor in [:data:`MIN_SCALE`, :data:`MAX_SCALE`] whose scaled notes give ``piece``
    the polyphony nearest ``target`` (polyphony grows with the factor: bisection on its log)."""
    return _fit(_Held(piece), target)


def _fit(held: _Held, target: float) -> float:
    """:func:`fit_scale` on a piece's :class:`_Held` arrays."""
    lo, hi = math.log(MIN_SCALE), math.log(MAX_SCALE)
    if held.polyphony(math.exp(lo)) >= target:
        return MIN_SCALE
    if held.polyphony(math.exp(hi)) <= target:
        return MAX_SCALE
    for _ in range(SEARCH_STEPS):
        mid = (lo + hi) / 2
        if held.polyphony(math.exp(mid)) < target:
            lo = mid
        else:
            hi = mid
    return math.exp((lo + hi) / 2)


def scale_lengths(piece: Piece, scale: float) -> Piece:
    """``piece`` with every note's length times ``scale`` under the rules of the module doc."""
    return _scaled(piece, _Held(piece), scale) if piece.notes else piece


def _scaled(piece: Piece, held: _Held, scale: float) -> Piece:
    """:func:`scale_lengths` with the piece's :class:`_Held` arrays already made (a scale of
    exactly 1 leaves the piece as it is)."""
    if scale == 1.0:
        return piece
    ends = held.ends(scale)
    tracks = [list(t.notes) for t in piece.tracks]
    for k in range(len(ends)):
        ti, j = held.track[k], held.index[k]
        n = tracks[ti][j]
        tracks[ti][j] = replace(n, duration=float(max(1e-3, ends[k] - n.start)))
    return replace(piece, tracks=[replace(t, notes=notes) for t, notes in zip(piece.tracks, tracks)])


def articulate(piece: Piece, emotion: Emotion | Sequence[Emotion], *, seed: int = 0) -> Piece:
    """``piece`` with its notes held as one player of real music at ``emotion`` might hold them
    (module doc); ``emotion``: one, or one per segment (their mean is used). Seeded."""
    emotions = [emotion] if isinstance(emotion, Emotion) else list(emotion)
    if not emotions or not piece.notes:
        return piece
    held = _Held(piece)  # the arrays serve both the search and the scaling
    return _scaled(piece, held, _fit(held, draw_target(mean_emotion(emotions), seed)))


__all__ = ["MAX_SCALE", "MIN_SCALE", "POLYPHONY_LOG", "articulate", "draw_target", "fit_scale", "fit_targets",
           "scale_lengths", "target_distribution"]
