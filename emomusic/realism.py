"""Realism features: what separates generated pieces from real music (issue #11).

Pure functions of a :class:`~emomusic.piece.Piece` (numpy only), one per feature, used by
``benchmarks/realism.py`` for a classifier two-sample test (C2ST, Lopez-Paz & Oquab, "Revisiting
Classifier Two-Sample Tests", ICLR 2017): a classifier that cannot tell generated from real
pieces on these features (accuracy near 0.5) means the generated music matches real music in
everything they describe. Each function returns ``nan`` where it is undefined (too few notes,
bars or windows) rather than raising.

Times are in beats, so the features do not depend on the tempo marking (EMOPIA's MIDI is
transcribed at a nominal 120 BPM: 4 beats = 2 seconds there). Melodic features are measured
on the top voice (:func:`melody`: the skyline, :func:`emomusic.estimator.melody_line`), so a
piano texture and a single tune are comparable; texture features use every pitched note.

Melodic shape
    :func:`interval_mean_abs`, :func:`interval_shares` (repeat / step / skip / leap),
    :func:`contour_change_rate`.
Repetition and form
    :func:`repeated_pattern_share` (a 4-interval melodic pattern, with its rhythm, that
    comes back inside the piece), :func:`chroma_self_similarity` (4-beat windows),
    :func:`recurrence` (each 4-beat window against the most similar earlier one at any
    offset: repetition and return without trusting the bar lines),
    :func:`bar_self_similarity` (each bar against the most similar earlier bar),
    :func:`cadence_long_share` (phrase ends on a long note). The last two read the bar grid
    (:data:`GRID_FEATURES`): compare them only with music whose bar lines are real.
Tonality
    :func:`key_strength`, :func:`pitch_class_entropy` (:mod:`emomusic.metrics`),
    :func:`dissonance`.
Texture
    :func:`polyphony` (sounding notes at once, :mod:`emomusic.metrics`), :func:`pitch_spread`,
    :func:`notes_per_beat`, :func:`low_register_share` (notes below MIDI 48).

:func:`features` returns all of them as a dict (:data:`FEATURES` in order);
:data:`TEXTURE_FEATURES` are the per-quadrant texture targets.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

import numpy as np

from emomusic import metrics
from emomusic.piece import Note, Piece

LOW_REGISTER = 48  # notes below C3 count as low register
PHRASE_BARS = 4
CHROMA_WINDOW_BEATS = 4.0  # 2 seconds at EMOPIA's nominal 120 BPM

FEATURES = (
    "interval_mean_abs",
    "interval_repeat_share",
    "interval_step_share",
    "interval_leap_share",
    "contour_change_rate",
    "repeated_pattern_share",
    "chroma_self_similarity",
    "recurrence",
    "bar_self_similarity",
    "cadence_long_share",
    "key_strength",
    "pitch_class_entropy",
    "dissonance",
    "polyphony",
    "pitch_spread",
    "notes_per_beat",
    "low_register_share",
)
TEXTURE_FEATURES = ("notes_per_beat", "low_register_share", "polyphony")
# Features that read the bar grid: meaningless on music whose bar lines are nominal (EMOPIA's
# transcriptions sit on a fixed 120 BPM grid that does not follow the music's own beat).
GRID_FEATURES = ("bar_self_similarity", "cadence_long_share")
RECURRENCE_MAX_STEPS = 4096  # recurrence() reads at most this many grid steps (64 bars of 4/4 at 4 per beat)


# -- the melody line ------------------------------------------------------------------------------
def melody(piece: Piece) -> list[Note]:
    """The top voice of ``piece`` (one note per onset group, cut at the next onset), in order.

    A monophonic piece is returned as it is (notes sorted by start); a polyphonic one goes
    through :func:`emomusic.estimator.melody_line` (highest note per onset within 30 ms).
    """
    notes = piece.notes
    if not notes:
        return []
    starts = [n.start for n in notes]
    if len(set(round(s, 6) for s in starts)) == len(notes) and all(
        a.end <= b.start + 1e-6 for a, b in zip(notes, notes[1:])
    ):
        return notes
    from emomusic.estimator import melody_line

    return melody_line(piece).notes


def _intervals(line: Sequence[Note]) -> np.ndarray:
    p = np.array([n.pitch for n in line], dtype=int)
    return np.diff(p) if p.size > 1 else np.zeros(0, dtype=int)


# -- melodic shape --------------------------------------------------------------------------------
def interval_mean_abs(piece: Piece) -> float:
    """Mean absolute melodic interval of the top voice, in semitones."""
    iv = _intervals(melody(piece))
    return float(np.abs(iv).mean()) if iv.size else math.nan


def interval_shares(piece: Piece) -> dict[str, float]:
    """Shares of the top voice's melodic intervals that are repeats (0 semitones), steps
    (1-2), skips (3-4) and leaps (5 or more); they sum to 1."""
    iv = np.abs(_intervals(melody(piece)))
    if not iv.size:
        return {"repeat": math.nan, "step": math.nan, "skip": math.nan, "leap": math.nan}
    return {
        "repeat": float(np.mean(iv == 0)),
        "step": float(np.mean((iv >= 1) & (iv <= 2))),
        "skip": float(np.mean((iv >= 3) & (iv <= 4))),
        "leap": float(np.mean(iv >= 5)),
    }


def contour_change_rate(piece: Piece) -> float:
    """Share of consecutive pairs of moving intervals (repeats skipped) that change direction.

    0 for a scale that only rises, 1 for a zig-zag.
    """
    iv = _intervals(melody(piece))
    s = np.sign(iv[iv != 0])
    if s.size < 2:
        return math.nan
    return float(np.mean(s[1:] != s[:-1]))


# -- repetition and form --------------------------------------------------------------------------
def repeated_pattern_share(piece: Piece, n: int = 4, rhythm: bool = True, resolution: int = 4) -> float:
    """Share of the top voice's ``n``-interval windows whose pattern occurs again in the piece.

    A window is ``n`` consecutive melodic intervals (``n + 1`` notes); with ``rhythm`` its
    pattern also holds the ``n`` inter-onset intervals, quantised to ``resolution`` steps
    per beat, so only a motif with its rhythm counts, at any transposition. The value is
    the share of windows whose pattern occurs at least twice. A 4-note motif played 4
    times in the same rhythm gives 1.0; a melody that never repeats gives 0.
    """
    line = melody(piece)
    if len(line) < n + 2:  # at least two windows
        return math.nan
    iv = _intervals(line)
    on = np.array([n_.start for n_ in line])
    ioi = np.round(np.diff(on) * resolution).astype(int)
    keys = []
    for i in range(len(iv) - n + 1):
        k = tuple(iv[i : i + n])
        if rhythm:
            k = k + tuple(ioi[i : i + n])
        keys.append(k)
    counts = Counter(keys)
    return float(np.mean([counts[k] >= 2 for k in keys]))


def chroma_windows(piece: Piece, window_beats: float = CHROMA_WINDOW_BEATS) -> np.ndarray:
    """Duration-weighted chroma (12 values) of each ``window_beats`` window; empty ones dropped."""
    notes = piece.notes
    if not notes:
        return np.zeros((0, 12))
    n_win = max(1, int(math.ceil(piece.end_beat / window_beats - 1e-9)))
    chroma = np.zeros((n_win, 12))
    for nt in notes:
        w0 = int(nt.start // window_beats)
        w1 = min(n_win - 1, int(math.ceil(nt.end / window_beats - 1e-9)) - 1)
        for w in range(w0, max(w0, w1) + 1):
            ov = min(nt.end, (w + 1) * window_beats) - max(nt.start, w * window_beats)
            if ov > 0:
                chroma[w, nt.pitch % 12] += ov
    return chroma[chroma.sum(axis=1) > 1e-9]


def chroma_self_similarity(piece: Piece, window_beats: float = CHROMA_WINDOW_BEATS) -> float:
    """Mean cosine similarity of the chroma of every pair of ``window_beats`` windows.

    1.0 when every window holds the same pitch-class mix (one harmony throughout); pieces
    that wander through unrelated keys score low. Needs two non-empty windows.
    """
    c = chroma_windows(piece, window_beats)
    if len(c) < 2:
        return math.nan
    u = c / np.linalg.norm(c, axis=1, keepdims=True)
    sim = u @ u.T
    return float(sim[np.triu_indices(len(c), 1)].mean())


def recurrence(piece: Piece, window_beats: float = 4.0, resolution: int = 4, hop_beats: float = 1.0) -> float:
    """Mean, over windows after the first, of the highest Jaccard similarity to an earlier
    window placed anywhere: repetition and return that does not depend on the bar lines.

    A window holds the (onset step, pitch) cells of the notes starting in ``window_beats``
    beats (``resolution`` steps per beat, onsets rounded to the grid), relative to its own
    start. Windows start every ``hop_beats`` beats; each is compared with every window that
    ends at or before its start, at any step offset (so a phrase that returns half a bar
    later than the bar grid would put it still counts). Windows without onsets are skipped.
    1.0 when the music loops exactly, 0 when no window shares a cell with any earlier one.
    ``nan`` when no window has an earlier one. Only the first :data:`RECURRENCE_MAX_STEPS`
    grid steps are read.
    """
    notes = piece.notes
    win = int(round(window_beats * resolution))
    hop = max(1, int(round(hop_beats * resolution)))
    if not notes or win < 1:
        return math.nan
    steps = [int(round(n.start * resolution)) for n in notes]
    T = min(max(max(steps) + 1, int(math.ceil(piece.end_beat * resolution - 1e-9))), RECURRENCE_MAX_STEPS)
    if T < 2 * win:
        return math.nan
    roll = np.zeros((T, 128), dtype=np.float32)
    for st, nt in zip(steps, notes):
        if 0 <= st < T:
            roll[st, nt.pitch] = 1.0
    gram = roll @ roll.T  # shared cells of two grid steps
    n_win = T - win + 1
    inter = np.zeros((n_win, n_win), dtype=np.float32)  # shared cells of the windows starting at i and j
    for k in range(win):
        inter += gram[k:k + n_win, k:k + n_win]
    counts = np.convolve(roll.sum(axis=1), np.ones(win, dtype=np.float32))[win - 1:win - 1 + n_win]
    best = []
    for s in range(win, n_win, hop):
        if counts[s] == 0:
            continue
        earlier = slice(0, s - win + 1)
        union = counts[s] + counts[earlier] - inter[s, earlier]
        with np.errstate(invalid="ignore", divide="ignore"):
            jac = np.where(union > 0, inter[s, earlier] / union, 0.0)
        best.append(float(jac.max()))
    return float(np.mean(best)) if best else math.nan


def _bar_cells(piece: Piece, resolution: int) -> list[set[tuple[int, int]]]:
    bar = piece.time_signature.bar_beats
    cells: list[set] = [set() for _ in range(piece.n_bars)]
    for nt in piece.notes:
        b = int(nt.start // bar + 1e-9)
        if b < len(cells):
            cells[b].add((int(round((nt.start - b * bar) * resolution)), nt.pitch))
    return cells


def bar_self_similarity(piece: Piece, resolution: int = 4) -> float:
    """Mean, over bars after the first, of the highest Jaccard similarity to an earlier bar.

    A bar is the set of (onset step in the bar, pitch) cells of its notes (``resolution``
    steps per beat); empty bars are skipped. 1.0 when every bar repeats an earlier one
    exactly (a loop, or a section that returns), 0 when no bar shares a note with any
    earlier one. Measures repetition and return at bar level.
    """
    bars = [c for c in _bar_cells(piece, resolution) if c]
    if len(bars) < 2:
        return math.nan
    best = [max(metrics.jaccard(bars[b], bars[a]) for a in range(b)) for b in range(1, len(bars))]
    return float(np.mean(best))


def cadence_long_share(piece: Piece, phrase_bars: int = PHRASE_BARS, ratio: float = 2.0) -> float:
    """Share of phrases whose last bar holds a long top-voice note (a cadence that lands).

    Phrases are ``phrase_bars``-bar groups from the start (complete ones only). A note's
    length is its inter-onset interval in the top voice (the last note: its duration); a
    phrase "lands" when the longest note starting in its last bar is at least ``ratio``
    times the median length of the piece's top-voice notes. Phrases whose last bar has no
    top-voice onset are left out.
    """
    line = melody(piece)
    if len(line) < 2:
        return math.nan
    on = np.array([n.start for n in line])
    length = np.append(np.diff(on), line[-1].duration)
    med = float(np.median(length))
    bar = piece.time_signature.bar_beats
    n_phr = piece.n_bars // phrase_bars
    lands = []
    for k in range(n_phr):
        lo, hi = ((k + 1) * phrase_bars - 1) * bar, (k + 1) * phrase_bars * bar
        sel = (on >= lo - 1e-6) & (on < hi - 1e-6)
        if sel.any():
            lands.append(float(length[sel].max()) >= ratio * med - 1e-9)
    return float(np.mean(lands)) if lands else math.nan


# -- tonality -------------------------------------------------------------------------------------
def key_strength(piece: Piece) -> float:
    """Krumhansl-Schmuckler key clarity: the best correlation of the duration-weighted
    pitch-class histogram with the 24 Krumhansl-Kessler key profiles (-1..1)."""
    from emomusic.attributes import key_correlations, pitch_class_histogram

    notes = piece.notes
    if not notes:
        return math.nan
    return float(key_correlations(pitch_class_histogram(notes)).max())


def pitch_class_entropy(piece: Piece) -> float:
    """Shannon entropy (bits) of the pitch-class histogram (:func:`emomusic.metrics.pitch_class_entropy`)."""
    return metrics.pitch_class_entropy(piece)


def dissonance(piece: Piece) -> float:
    """Share of pitch-class pairs sounding together at onsets that are dissonant (interval
    class 1, 2 or 6), as the estimator's feature (:mod:`emomusic.estimator`); 0 for one line."""
    from emomusic.estimator import _dissonance

    notes = piece.notes
    return _dissonance(notes) if notes else math.nan


# -- texture --------------------------------------------------------------------------------------
def polyphony(piece: Piece) -> float:
    """Mean number of pitches sounding at once while any sounds (:func:`emomusic.metrics.polyphony`)."""
    return metrics.polyphony(piece)


def pitch_spread(piece: Piece) -> float:
    """Standard deviation of the pitches of all notes, in semitones."""
    p = [n.pitch for n in piece.notes]
    return float(np.std(p)) if p else math.nan


def notes_per_beat(piece: Piece) -> float:
    """Notes per beat from the first onset to the last note end."""
    notes = piece.notes
    if not notes:
        return math.nan
    span = max(n.end for n in notes) - notes[0].start
    return len(notes) / span if span > 0 else math.nan


def low_register_share(piece: Piece, below: int = LOW_REGISTER) -> float:
    """Share of notes with a MIDI pitch below ``below`` (48 = C3)."""
    notes = piece.notes
    return float(np.mean([n.pitch < below for n in notes])) if notes else math.nan


# -- all at once ------------------------------------------------------------------------------------
def features(piece: Piece) -> dict[str, float]:
    """Every feature of :data:`FEATURES` for ``piece`` (``nan`` where undefined)."""
    shares = interval_shares(piece)
    return {
        "interval_mean_abs": interval_mean_abs(piece),
        "interval_repeat_share": shares["repeat"],
        "interval_step_share": shares["step"],
        "interval_leap_share": shares["leap"],
        "contour_change_rate": contour_change_rate(piece),
        "repeated_pattern_share": repeated_pattern_share(piece),
        "chroma_self_similarity": chroma_self_similarity(piece),
        "recurrence": recurrence(piece),
        "bar_self_similarity": bar_self_similarity(piece),
        "cadence_long_share": cadence_long_share(piece),
        "key_strength": key_strength(piece),
        "pitch_class_entropy": pitch_class_entropy(piece),
        "dissonance": dissonance(piece),
        "polyphony": polyphony(piece),
        "pitch_spread": pitch_spread(piece),
        "notes_per_beat": notes_per_beat(piece),
        "low_register_share": low_register_share(piece),
    }


def feature_matrix(pieces: Sequence[Piece], names: Sequence[str] = FEATURES) -> np.ndarray:
    """One row of :func:`features` per piece (columns ``names``)."""
    rows = [features(p) for p in pieces]
    return np.array([[r[k] for k in names] for r in rows], dtype=float).reshape(len(rows), len(names))


__all__ = [
    "FEATURES", "GRID_FEATURES", "TEXTURE_FEATURES", "bar_self_similarity", "cadence_long_share", "chroma_self_similarity",
    "chroma_windows", "contour_change_rate", "dissonance", "feature_matrix", "features", "interval_mean_abs",
    "interval_shares", "key_strength", "low_register_share", "melody", "notes_per_beat", "pitch_class_entropy",
    "pitch_spread", "polyphony", "recurrence", "repeated_pattern_share",
]
