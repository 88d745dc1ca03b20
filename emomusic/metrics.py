"""Objective metrics for symbolic music, computed on :class:`~emomusic.piece.Piece` objects.

Pure functions (numpy only; scipy for the rank correlation). They follow the definitions
of muspy (Dong, Chen, Dong, McAuley & Berg-Kirkpatrick, "MusPy: A Toolkit for Symbolic
Music Generation", ISMIR 2020), which collects them from earlier work:

* pitch-class entropy, scale consistency, groove consistency, empty-beat rate, polyphony,
  pitch range (muspy ``metrics`` module; scale and groove consistency go back to Wu & Yang,
  "The Jazz Transformer on the Front Line", ISMIR 2020, and Mogren 2016);
* overlapping area (OA) of feature distributions between a generated and a reference set:
  Yang & Lerch, "On the evaluation of generative models in music", Neural Computing and
  Applications 2020 (histogram / KDE overlap), and Mittal, Engel, Hawthorne & Simon,
  "Symbolic Music Generation with Diffusion Models", ISMIR 2021 (OA of Gaussian fits);
* novelty / near-copy rate of n-bar segments against a training corpus (the "verbatim
  n-bar phrase" check of melody-generation papers, here with a tolerant Jaccard match);
* diversity between seeds (mean pairwise dissimilarity of the generated note sets).

Times are in beats (quarter notes), as everywhere in emomusic. Drum tracks are ignored
(``Piece.notes`` excludes them). Functions return ``nan`` where a metric is undefined
(e.g. the entropy of a piece without notes) rather than raising.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from emomusic.piece import Note, Piece

MAJOR_STEPS = (0, 2, 4, 5, 7, 9, 11)
MINOR_STEPS = (0, 2, 3, 5, 7, 8, 10)  # natural minor, as muspy


# -- single-piece metrics --------------------------------------------------------------------
def _entropy(counts: np.ndarray) -> float:
    total = counts.sum()
    if total <= 0:
        return math.nan
    p = counts[counts > 0] / total
    return float(-(p * np.log2(p)).sum())


def pitch_class_histogram(piece: Piece, normalize: bool = True) -> np.ndarray:
    """Counts (or shares) of notes per pitch class 0..11 (C..B); one count per note."""
    h = np.zeros(12, dtype=float)
    for n in piece.notes:
        h[n.pitch % 12] += 1
    if normalize and h.sum() > 0:
        h /= h.sum()
    return h


def pitch_class_entropy(piece: Piece) -> float:
    """Shannon entropy (bits) of the pitch-class histogram, counting each note once.

    muspy ``pitch_class_entropy``: 0 for a single pitch class, log2(12) ~ 3.585 for a
    uniform chromatic distribution; a C major scale played once gives log2(7).
    Lower values mean a more tonal, less ambiguous pitch content.
    """
    return _entropy(pitch_class_histogram(piece, normalize=False))


def pitch_entropy(piece: Piece) -> float:
    """Shannon entropy (bits) of the 128-bin pitch histogram (muspy ``pitch_entropy``)."""
    h = np.zeros(128)
    for n in piece.notes:
        h[n.pitch] += 1
    return _entropy(h)


def scale_consistency(piece: Piece) -> float:
    """Largest share of notes that fit one major or natural-minor scale (muspy).

    The maximum over the 24 scales (12 tonics x {major, minor}) of the fraction of notes
    whose pitch class belongs to the scale. 1.0 for purely diatonic music.
    """
    notes = piece.notes
    if not notes:
        return math.nan
    h = pitch_class_histogram(piece, normalize=False)
    best = 0.0
    for tonic in range(12):
        for steps in (MAJOR_STEPS, MINOR_STEPS):
            best = max(best, sum(h[(tonic + s) % 12] for s in steps))
    return float(best / len(notes))


def _bar_beats(piece: Piece) -> float:
    return piece.time_signature.bar_beats


def groove_consistency(piece: Piece, resolution: int = 4) -> float:
    """1 minus the mean Hamming distance between onset patterns of consecutive bars (muspy).

    Each bar becomes a binary vector of ``bar_beats * resolution`` positions (1 where a
    note starts); the Hamming distance of neighbouring bars is divided by the vector
    length, averaged over all neighbouring pairs, and subtracted from 1. Identical rhythm
    in every bar gives 1.0. The piece has ``ceil(end_beat / bar)`` bars, as in muspy;
    it needs at least two (``nan`` otherwise).
    """
    notes = piece.notes
    bar = _bar_beats(piece)
    if not notes:
        return math.nan
    steps = max(1, int(round(bar * resolution)))
    n_bars = int(math.ceil(piece.end_beat / bar - 1e-9))
    if n_bars < 2:
        return math.nan
    grid = np.zeros((n_bars, steps), dtype=bool)
    for n in notes:
        pos = int(round(n.start * resolution))
        b, s = divmod(pos, steps)
        if b < n_bars:
            grid[b, s] = True
    dist = np.mean(grid[1:] != grid[:-1], axis=1)
    return float(1.0 - dist.mean())


def empty_beat_rate(piece: Piece, end_beat: float | None = None) -> float:
    """Share of beats in which no note sounds (muspy ``empty_beat_rate``).

    A beat ``[k, k+1)`` is non-empty when any note overlaps it (held notes count). The
    piece spans ``ceil(end_beat)`` beats, by default up to the last note end. Pass
    ``end_beat`` to count trailing silence (e.g. the requested length of a generation).
    """
    notes = piece.notes
    end = piece.end_beat if end_beat is None else float(end_beat)
    n_beats = int(math.ceil(end - 1e-9))
    if n_beats <= 0:
        return math.nan
    busy = np.zeros(n_beats, dtype=bool)
    for n in notes:
        first = int(math.floor(n.start + 1e-9))
        last = int(math.ceil(n.end - 1e-9))  # exclusive
        busy[max(0, first) : min(n_beats, max(last, first + 1))] = True
    return float(1.0 - busy.mean())


def _activity(piece: Piece, resolution: int) -> np.ndarray:
    """Number of distinct pitches sounding at each grid step (``resolution`` per beat)."""
    notes = piece.notes
    if not notes:
        return np.zeros(0, dtype=int)
    n_steps = int(math.ceil(piece.end_beat * resolution - 1e-9))
    roll = np.zeros((n_steps, 128), dtype=bool)
    for n in notes:
        a = int(round(n.start * resolution))
        b = max(a + 1, int(round(n.end * resolution)))
        roll[a:b, n.pitch] = True
    return roll.sum(axis=1)


def polyphony(piece: Piece, resolution: int = 12) -> float:
    """Mean number of pitches sounding at once, over time steps where any sounds (muspy)."""
    act = _activity(piece, resolution)
    act = act[act > 0]
    return float(act.mean()) if act.size else math.nan


def polyphony_rate(piece: Piece, resolution: int = 12) -> float:
    """Share of time steps (``resolution`` per beat) where two or more pitches sound (muspy)."""
    act = _activity(piece, resolution)
    return float((act >= 2).mean()) if act.size else math.nan


def pitch_range(piece: Piece) -> int:
    """Highest minus lowest MIDI pitch (0 for one pitch, -1 for no notes)."""
    notes = piece.notes
    if not notes:
        return -1
    pitches = [n.pitch for n in notes]
    return max(pitches) - min(pitches)


def n_pitch_classes_used(piece: Piece) -> int:
    return len({n.pitch % 12 for n in piece.notes})


def summary(piece: Piece) -> dict[str, float]:
    """All single-piece metrics in one dict (for tables and JSON)."""
    return {
        "pitch_class_entropy": pitch_class_entropy(piece),
        "scale_consistency": scale_consistency(piece),
        "groove_consistency": groove_consistency(piece),
        "empty_beat_rate": empty_beat_rate(piece),
        "polyphony": polyphony(piece),
        "pitch_range": float(pitch_range(piece)),
        "notes_per_beat": len(piece.notes) / piece.end_beat if piece.end_beat > 0 else math.nan,
    }


# -- feature distributions and overlapping area ---------------------------------------------------
def _onsets(notes: Sequence[Note]) -> list[float]:
    return sorted({round(n.start, 3) for n in notes})


def note_features(piece: Piece, feature: str) -> np.ndarray:
    """Per-note values of one feature of ``piece`` (in seconds-free units).

    ``pitch`` (MIDI number), ``pitch_class`` (0..11), ``velocity`` (1..127), ``duration``
    (beats), ``ioi`` (inter-onset interval in beats between consecutive distinct onsets,
    so chords count once).
    """
    notes = piece.notes
    if feature == "pitch":
        return np.array([n.pitch for n in notes], dtype=float)
    if feature == "pitch_class":
        return np.array([n.pitch % 12 for n in notes], dtype=float)
    if feature == "velocity":
        return np.array([n.velocity for n in notes], dtype=float)
    if feature == "duration":
        return np.array([n.duration for n in notes], dtype=float)
    if feature == "ioi":
        on = _onsets(notes)
        return np.diff(np.array(on, dtype=float)) if len(on) > 1 else np.zeros(0)
    raise ValueError(f"unknown feature {feature!r}; use one of {', '.join(FEATURE_BINS)}")


# Bin edges per feature: pitch / pitch class / velocity on their integer grids; duration and
# IOI on a log-spaced grid in beats (1/32 beat .. 16 beats) so short and long values both count.
_LOG_EDGES = np.concatenate([[0.0], np.geomspace(1 / 32, 16, 25), [np.inf]])
FEATURE_BINS: dict[str, np.ndarray] = {
    "pitch": np.arange(-0.5, 128.5, 1.0),
    "pitch_class": np.arange(-0.5, 12.5, 1.0),
    "velocity": np.arange(0.5, 128.5 + 8, 8.0),
    "duration": _LOG_EDGES,
    "ioi": _LOG_EDGES,
}


def feature_histogram(pieces: Piece | Iterable[Piece], feature: str, normalize: bool = True) -> np.ndarray:
    """Histogram of ``feature`` pooled over all notes of ``pieces`` on fixed bins."""
    if isinstance(pieces, Piece):
        pieces = [pieces]
    values = [note_features(p, feature) for p in pieces]
    allv = np.concatenate(values) if values else np.zeros(0)
    h, _ = np.histogram(allv, bins=FEATURE_BINS[feature])
    h = h.astype(float)
    if normalize and h.sum() > 0:
        h /= h.sum()
    return h


def overlapping_area(p: np.ndarray, q: np.ndarray) -> float:
    """Overlapping area of two histograms on the same bins: ``sum(min(p_i, q_i))``.

    Both are normalised to sum 1 first. 1.0 for identical distributions, 0.0 for disjoint
    supports (Yang & Lerch 2020). ``nan`` if either is empty.
    """
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    if p.shape != q.shape:
        raise ValueError(f"histograms differ in shape: {p.shape} vs {q.shape}")
    sp, sq = p.sum(), q.sum()
    if sp <= 0 or sq <= 0:
        return math.nan
    return float(min(1.0, np.minimum(p / sp, q / sq).sum()))


def gaussian_overlap(mu1: float, sd1: float, mu2: float, sd2: float) -> float:
    """Overlapping area of two normal densities N(mu1, sd1^2) and N(mu2, sd2^2).

    The statistic of Mittal et al. (2021), who fit Gaussians to pitch and duration
    statistics. Exact: the densities cross at most twice; the overlap is the integral of
    the smaller density, summed over the intervals between crossings.
    """
    from scipy.stats import norm

    sd1 = max(float(sd1), 1e-9)
    sd2 = max(float(sd2), 1e-9)
    if abs(sd1 - sd2) < 1e-12 * max(sd1, sd2):
        if abs(mu1 - mu2) < 1e-12:
            return 1.0
        c = (mu1 + mu2) / 2
        lo, hi = (mu1, mu2) if mu1 < mu2 else (mu2, mu1)
        # the lower-mean density is smaller on the right of c, the other on the left
        return float(norm.sf(c, lo, sd1) + norm.cdf(c, hi, sd1))
    # solve log N1(x) = log N2(x): a x^2 + b x + c = 0
    a = 1 / (2 * sd2**2) - 1 / (2 * sd1**2)
    b = mu1 / sd1**2 - mu2 / sd2**2
    c = mu2**2 / (2 * sd2**2) - mu1**2 / (2 * sd1**2) + math.log(sd2 / sd1)
    disc = max(b * b - 4 * a * c, 0.0)
    roots = sorted([(-b - math.sqrt(disc)) / (2 * a), (-b + math.sqrt(disc)) / (2 * a)])
    edges = [-math.inf] + roots + [math.inf]
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mid = roots[0] - 1.0 if lo == -math.inf else (roots[-1] + 1.0 if hi == math.inf else (lo + hi) / 2)
        which = (mu1, sd1) if norm.pdf(mid, mu1, sd1) < norm.pdf(mid, mu2, sd2) else (mu2, sd2)
        total += norm.cdf(hi, *which) - norm.cdf(lo, *which)
    return float(min(1.0, max(0.0, total)))


def distribution_oa(generated: Iterable[Piece], reference: Iterable[Piece], feature: str) -> float:
    """OA between the pooled ``feature`` histograms of a generated and a reference set."""
    return overlapping_area(feature_histogram(list(generated), feature), feature_histogram(list(reference), feature))


def gaussian_oa(generated: Iterable[Piece], reference: Iterable[Piece], feature: str) -> float:
    """OA of Gaussian fits (mean, sd) of a pooled feature, as Mittal et al. (2021)."""
    g = np.concatenate([note_features(p, feature) for p in generated] or [np.zeros(0)])
    r = np.concatenate([note_features(p, feature) for p in reference] or [np.zeros(0)])
    if g.size < 2 or r.size < 2:
        return math.nan
    return gaussian_overlap(g.mean(), g.std(), r.mean(), r.std())


OA_FEATURES = ("pitch", "duration", "ioi", "velocity", "pitch_class")


def oa_report(generated: Sequence[Piece], reference: Sequence[Piece], features: Sequence[str] = OA_FEATURES) -> dict[str, float]:
    """Histogram OA per feature and their mean (``mean``)."""
    out = {f: distribution_oa(generated, reference, f) for f in features}
    vals = [v for v in out.values() if not math.isnan(v)]
    out["mean"] = float(np.mean(vals)) if vals else math.nan
    return out


# -- segments: novelty / near-copies, diversity ---------------------------------------------------
@dataclass(frozen=True)
class SegmentSet:
    """Binary (onset step, pitch) patterns of fixed-length segments, for fast comparison."""

    matrix: "object"  # scipy.sparse.csr_matrix, one row per segment
    sizes: np.ndarray  # notes (distinct onset/pitch cells) per segment
    owners: np.ndarray  # index of the piece each segment comes from

    def __len__(self) -> int:
        return int(self.sizes.shape[0])


def piece_cells(
    piece: Piece, start: float = 0.0, end: float = math.inf, resolution: int = 4, transpose_invariant: bool = False
) -> set[tuple[int, int]]:
    """Distinct (onset step from ``start``, pitch) cells of the notes starting in [start, end).

    Onsets are quantised to ``resolution`` steps per beat. With ``transpose_invariant`` the
    pitches are taken relative to the lowest pitch of the window, so a transposed copy
    still matches.
    """
    notes = [n for n in piece.notes if start - 1e-6 <= n.start < end - 1e-6]
    if not notes:
        return set()
    base = min(n.pitch for n in notes) if transpose_invariant else 0
    return {(int(round((n.start - start) * resolution)), n.pitch - base) for n in notes}


def segment_set(
    pieces: Sequence[Piece],
    bars: int = 2,
    hop_bars: int | None = None,
    resolution: int = 4,
    transpose_invariant: bool = True,
    min_notes: int = 4,
) -> SegmentSet:
    """Cut every piece into ``bars``-bar windows (every ``hop_bars`` bars, default ``bars``).

    Windows with fewer than ``min_notes`` distinct cells are skipped (silence is not a
    copy of anything).
    """
    from scipy import sparse

    hop = hop_bars or bars
    rows, cols, sizes, owners = [], [], [], []
    width = 128 * 2 if transpose_invariant else 128
    for pi, p in enumerate(pieces):
        bar = p.time_signature.bar_beats
        notes = p.notes  # sorted by start
        if not notes:
            continue
        starts = np.array([n.start for n in notes])
        pitches = np.array([n.pitch for n in notes], dtype=np.int64)
        n_bars = p.n_bars
        for b0 in range(0, max(1, n_bars - bars + 1), hop):
            lo_b, hi_b = b0 * bar, (b0 + bars) * bar
            lo, hi = np.searchsorted(starts, [lo_b - 1e-6, hi_b - 1e-6])
            if hi - lo < min_notes:
                continue
            steps = np.round((starts[lo:hi] - lo_b) * resolution).astype(np.int64)
            pw = pitches[lo:hi] - (pitches[lo:hi].min() if transpose_invariant else 0)
            cells = np.unique(steps * width + pw)
            if cells.size < min_notes:
                continue
            r = len(sizes)
            rows.append(np.full(cells.size, r, dtype=np.int64))
            cols.append(cells)
            sizes.append(cells.size)
            owners.append(pi)
    rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    cols = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    n_cols = int(bars * 16 * resolution * width)  # room for bars of up to 16 beats
    m = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(sizes), n_cols))
    return SegmentSet(m, np.array(sizes, dtype=np.float32), np.array(owners, dtype=np.int64))


def max_jaccard(query: SegmentSet, corpus: SegmentSet, chunk: int = 128) -> np.ndarray:
    """For each query segment, its highest Jaccard similarity to any corpus segment."""
    out = np.zeros(len(query), dtype=np.float32)
    if len(query) == 0 or len(corpus) == 0:
        return out
    ct = corpus.matrix.T.tocsc()
    for i in range(0, len(query), chunk):
        inter = (query.matrix[i : i + chunk] @ ct).toarray()
        union = query.sizes[i : i + chunk, None] + corpus.sizes[None, :] - inter
        out[i : i + chunk] = (inter / np.maximum(union, 1)).max(axis=1)
    return out


def near_copy_rate(
    generated: Sequence[Piece],
    corpus: Sequence[Piece] | SegmentSet,
    bars: int = 2,
    threshold: float = 0.8,
    resolution: int = 4,
    transpose_invariant: bool = True,
) -> dict[str, float]:
    """Share of generated ``bars``-bar segments that nearly copy a corpus segment.

    A segment is the set of (quantised onset, pitch) cells of its notes (pitches relative
    to the segment's lowest note when ``transpose_invariant``); a generated segment is a
    near copy when its Jaccard similarity to some corpus segment is >= ``threshold``, an
    exact copy at 1.0. Corpus windows are taken every bar (overlapping), generated ones
    bar-aligned without overlap. Returns ``near_copy``, ``exact_copy``, ``mean_max_jaccard``
    and ``segments`` (the number compared). Generic over pieces: used by the compose and
    melody benchmarks alike.
    """
    q = segment_set(generated, bars, bars, resolution, transpose_invariant)
    c = corpus if isinstance(corpus, SegmentSet) else segment_set(corpus, bars, 1, resolution, transpose_invariant)
    best = max_jaccard(q, c)
    if best.size == 0:
        return {"near_copy": math.nan, "exact_copy": math.nan, "mean_max_jaccard": math.nan, "segments": 0}
    return {
        "near_copy": float((best >= threshold).mean()),
        "exact_copy": float((best >= 1.0 - 1e-6).mean()),
        "mean_max_jaccard": float(best.mean()),
        "segments": int(best.size),
    }


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def diversity(pieces: Sequence[Piece], resolution: int = 4) -> float:
    """Mean pairwise dissimilarity (1 - Jaccard of (onset, pitch) cells) between pieces.

    0 when all pieces are identical, 1 when no two share a note at the same position.
    Use it on pieces generated for the same emotion with different seeds. ``nan`` for
    fewer than two pieces.
    """
    cells = [piece_cells(p, resolution=resolution) for p in pieces]
    if len(cells) < 2:
        return math.nan
    d = [1.0 - jaccard(cells[i], cells[j]) for i in range(len(cells)) for j in range(i + 1, len(cells))]
    return float(np.mean(d))


# -- correlation -------------------------------------------------------------------------------
def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation of ``x`` and ``y`` (scipy); ``nan`` if either is constant."""
    from scipy.stats import spearmanr

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y differ in length: {x.shape} vs {y.shape}")
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    return float(spearmanr(x, y).statistic)


def quadrant_agreement(requested: Sequence, estimated: Sequence) -> dict[str, float]:
    """Share of estimated emotions in the requested quadrant, and per-axis sign agreement.

    Both sequences hold :class:`~emomusic.emotion.Emotion` objects (anything with
    ``valence``, ``arousal`` and ``quadrant``). An axis agrees when both values are on the
    same side (>= 0 counts as positive, as for quadrants).
    """
    pairs = list(zip(requested, estimated))
    if not pairs:
        return {"quadrant": math.nan, "valence": math.nan, "arousal": math.nan, "n": 0}
    q = np.mean([r.quadrant == e.quadrant for r, e in pairs])
    v = np.mean([(r.valence >= 0) == (e.valence >= 0) for r, e in pairs])
    a = np.mean([(r.arousal >= 0) == (e.arousal >= 0) for r, e in pairs])
    return {"quadrant": float(q), "valence": float(v), "arousal": float(a), "n": len(pairs)}


MetricFn = Callable[[Piece], float]
