"""The melodic contour of the training tunes, as a decoding prior.

The small melody model's lines turn direction more often than real tunes (the generated lines
zig-zag: about 57% of consecutive moves change direction against 50% in the held-out folk
tunes, and after a step they go on the same way less often), at every temperature. This
module counts, over the training corpus, how the next melodic interval follows the line so
far - a table of interval-class transitions - and turns it into a logit bonus that the
decoder adds to each candidate pitch (:class:`ContourPrior`, used by
:class:`emomusic.melody.grammar.Grammar`).

Intervals are grouped into nine signed classes (:func:`interval_class`): repeat, step (1-2
semitones), skip (3-4), leap (5-7) and wide leap (8 or more), up or down; classes rather than
semitones, so the prior does not depend on where the scale's half steps fall. The state a
transition is conditioned on (:func:`contour_state`) is the class of the last *moving*
interval and whether a repeated note came after it (contour runs through repeated notes),
or "no move yet" at the start of a line. Rests are skipped: the line is the sequence of
sounding pitches, as a listener follows it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

N_CLASSES = 9  # signed interval classes -4..4, stored at index class + 4
N_STATES = 17  # 8 moving classes x (repeat after it or not) + "no move yet"
SMOOTHING = 1.0  # add-one counts: every transition keeps a finite log-probability
CLIP = 3.0  # largest bonus or penalty (logits) the fitted table may hold


def interval_class(iv: int) -> int:
    """Signed class of a melodic interval in semitones: 0 repeat, 1 step (1-2), 2 skip (3-4),
    3 leap (5-7), 4 wide leap (8 or more); negative going down."""
    a = abs(int(iv))
    if a == 0:
        return 0
    size = 1 if a <= 2 else 2 if a <= 4 else 3 if a <= 7 else 4
    return size if iv > 0 else -size


# class + 4 of every interval from -127 to +127 semitones (index interval + 127): the decoder looks
# classes up here, once per candidate pitch, instead of calling interval_class
CLASS_INDEX = tuple(interval_class(i) + 4 for i in range(-127, 128))


def contour_state(last_move: int, repeated: bool) -> int:
    """Index (0..16) of the state a transition is conditioned on: ``last_move`` is the class of
    the last moving interval (0: none yet), ``repeated`` whether a repeated note followed it."""
    if last_move == 0:
        return N_STATES - 1
    if not -4 <= last_move <= 4:
        raise ValueError(f"interval class must be in -4..4, got {last_move}")
    k = last_move + 4 if last_move < 0 else last_move + 3  # -4..-1 -> 0..3, 1..4 -> 4..7
    return k + (8 if repeated else 0)


def transition_counts(lines: Iterable[Sequence[int]]) -> list[list[int]]:
    """Counts [state][class + 4] of the interval classes that follow each contour state over
    ``lines`` (each a sequence of MIDI pitches, rests already left out)."""
    counts = [[0] * N_CLASSES for _ in range(N_STATES)]
    for line in lines:
        last_move, repeated = 0, False
        for a, b in zip(line, line[1:]):
            c = interval_class(b - a)
            counts[contour_state(last_move, repeated)][c + 4] += 1
            if c:
                last_move, repeated = c, False
            else:
                repeated = True
    return counts


def tune_lines(tunes) -> list[list[int]]:
    """The sounding pitches of each :class:`~emomusic.melody.notation.CanonTune`, in order."""
    return [[p for p in t.pitches() if p is not None] for t in tunes]


def log_probs(counts: Sequence[Sequence[float]]) -> list[list[float]]:
    """log P(class | state) per row of ``counts``, add-one smoothed (every entry finite)."""
    _check(counts)
    out = []
    for r in counts:
        total = sum(r) + SMOOTHING * N_CLASSES
        out.append([math.log((c + SMOOTHING) / total) for c in r])
    return out


def _check(table: Sequence[Sequence[float]], counts: bool = True) -> None:
    if len(table) != N_STATES or any(len(r) != N_CLASSES for r in table):
        raise ValueError(f"a contour table must be {N_STATES} x {N_CLASSES}")
    if counts and any(c < 0 for r in table for c in r):
        raise ValueError("contour counts must not be negative")
    if any(not math.isfinite(c) for r in table for c in r):
        raise ValueError("a contour table must be finite")


def fit_bonus(target: Sequence[Sequence[float]], measure, iterations: int = 3, clip: float = CLIP,
              log=None) -> tuple[list[list[float]], list[float]]:
    """The logit bonus table that makes a sampler's transitions match ``target`` counts.

    ``measure(table)`` samples with the bonus table ``table`` and returns the transition counts
    it produced. Starting from no bonus, each iteration adds log P_target(class | state) -
    log P_sampled(class | state) (iterative proportional fitting of the conditional
    distributions), each entry kept within +-``clip``. Returns the table and, per
    iteration, the total-variation distance between the sampled and target conditionals
    (averaged over states, weighted by the target's counts) before that iteration's update.
    """
    want = log_probs(target)
    weights = [sum(r) for r in target]
    table = [[0.0] * N_CLASSES for _ in range(N_STATES)]
    history = []
    for it in range(iterations):
        got = log_probs(measure(table))
        tv = sum(w * 0.5 * sum(abs(math.exp(a) - math.exp(b)) for a, b in zip(wr, gr))
                 for w, wr, gr in zip(weights, want, got)) / max(1e-9, sum(weights))
        history.append(tv)
        if log:
            log(f"contour fit, iteration {it + 1}: distance to the corpus {tv:.4f}")
        table = [[max(-clip, min(clip, t + a - b)) for t, a, b in zip(tr, wr, gr)]
                 for tr, wr, gr in zip(table, want, got)]
    return table, history


class ContourPrior:
    """A logit bonus per (contour state, next interval class), times ``weight``: :meth:`row` gives
    the nine bonuses of one state, indexed by class + 4. The shipped table is fitted with
    :func:`fit_bonus` so that the decoder's transitions match the training tunes'."""

    def __init__(self, table: Sequence[Sequence[float]], weight: float = 1.0):
        _check(table, counts=False)
        self.weight = float(weight)
        self.rows = [tuple(self.weight * float(v) for v in r) for r in table]

    @classmethod
    def from_config(cls, cfg: dict, weight: float = 1.0) -> "ContourPrior | None":
        """The prior from a checkpoint config's ``contour`` entry (its fitted ``bonus`` table), or
        None when it has none or ``weight`` is 0."""
        entry = cfg.get("contour")
        if not entry or "bonus" not in entry or weight <= 0:
            return None
        return cls(entry["bonus"], weight)

    def row(self, last_move: int, repeated: bool) -> tuple[float, ...]:
        return self.rows[contour_state(last_move, repeated)]

    def bias(self, last_move: int, repeated: bool, last_pitch: int, pitch: int) -> float:
        """The bonus of ``pitch`` after ``last_pitch`` in the given state."""
        return self.row(last_move, repeated)[interval_class(pitch - last_pitch) + 4]


def corpus_entry(tunes) -> dict:
    """The ``contour`` entry written into a checkpoint's config: transition counts over the
    training tunes (untransposed; intervals do not depend on the key)."""
    lines = tune_lines(tunes)
    return {"classes": "repeat 0, step 1-2, skip 3-4, leap 5-7, wide 8+ semitones; signed",
            "states": "last moving class -4..-1, 1..4; +8 when a repeat followed it; 16 = no move yet",
            "tunes": len(lines), "counts": transition_counts(lines)}
