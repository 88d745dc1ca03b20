"""Each clip a small complete piece: whole phrases, the final cadence just before the join.

A clip of a session is cross-faded into the next over ``crossfade_s`` seconds (the *join
region*, from the clip's planned end to the end of its tail). So that the join falls between
two pieces and not inside a phrase, every clip asks its engine for a whole number of bars
laid out as a form plan (:func:`emomusic.form.resolve_form`: phrases ending on cadences, the
last on the tonic), and its tempo is *nudged* (at most ``MAX_NUDGE``, and never so far that a
step between clips breaks the plan's :class:`~emomusic.session.schedule.StepRule`) so that
the final bar, the cadence, begins within the last ``CADENCE_WINDOW_S`` seconds before the
join region. The final chord is then held through the join (:func:`hold_final`), so the
crossfade overlaps one piece's last chord with the next piece's opening.

The fit is a pure function of the plan (:func:`fit_phrases`), computed once per build with
the clips' real tempo ramps (:func:`emomusic.session.clips.ramp_tempo`, between the nudged
tempi, so neighbouring clips still meet at the same tempo).
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass, replace

from emomusic.piece import Piece, Tempo

MAX_NUDGE = 0.05  # a clip's tempo moves at most this ratio from its planned tempo (and steps between
# clips stay within the planner's aim, StepRule.plan_step, or the plan's own step where larger)
CADENCE_WINDOW_S = 2.0  # the final cadence begins at most this long before the join region ...
CADENCE_MARGIN_S = 0.1  # ... and at least this long before it
MIN_BARS = 2  # a clip has at least two bars (a phrase and its cadence)
# preference among bar counts (added to |log nudge|): 4-bar phrases, 2-bar phrases, one phrase
STRUCTURE_COST = {4: 0.0, 2: 0.015, 1: 0.03}
HOLD_SLACK_BEATS = 0.25  # notes ending this close to the piece's end are its final chord


@dataclass(frozen=True)
class PhraseFit:
    """How clip ``index`` is laid out: ``bars`` bars at ``tempo`` (the plan's tempo times
    ``nudge``), form plan ``form``; ``cadence_s``: where its last bar (the final cadence)
    begins, ``end_s``: where its last bar ends, ``join_s``: where the join region begins,
    all in seconds from the clip's start (with its tempo ramp)."""

    index: int
    bars: int
    bar_beats: float
    tempo: float
    nudge: float
    form: object  # emomusic.form.FormPlan
    cadence_s: float
    end_s: float
    join_s: float

    @property
    def in_window(self) -> bool:
        return self.join_s - CADENCE_WINDOW_S - 1e-6 <= self.cadence_s <= self.join_s - CADENCE_MARGIN_S + 1e-6

    def phrase_bounds_s(self, tempo_map: Piece) -> list[float]:
        """Start of every phrase after the first, and the piece's end, in seconds."""
        starts = [s.start_bar for s in self.form.sections[1:]]
        return [tempo_map.beat_to_seconds(b * self.bar_beats) for b in starts] + [self.end_s]

    def to_dict(self) -> dict:
        return {
            "bars": self.bars,
            "bar_beats": self.bar_beats,
            "tempo": round(self.tempo, 3),
            "tempo_nudge": round(self.nudge, 5),
            "form": self.form.to_dict(),
            "cadence_s": round(self.cadence_s, 3),
            "piece_end_s": round(self.end_s, 3),
            "join_s": round(self.join_s, 3),
        }


def join_start(plan, i: int) -> float:
    """Where clip ``i``'s join region begins (seconds from its start): its planned end, or
    for the last clip the start of the session's closing fade."""
    from emomusic.session.clips import END_FADE_SECONDS

    w = plan.clips[i]
    if i < len(plan.clips) - 1:
        return w.duration_s
    return w.duration_s - min(END_FADE_SECONDS, w.duration_s / 4)


def tempo_map(plan, i: int, tempi: list[float]) -> Piece:
    """An empty piece carrying clip ``i``'s tempo ramp between the (nudged) ``tempi``."""
    from emomusic.session.clips import ramp_tempo

    before = tempi[i - 1] if i > 0 else None
    after = tempi[i + 1] if i < len(tempi) - 1 else None
    return ramp_tempo(Piece(tempos=[Tempo(tempi[i])]), tempi[i], before, after, plan.clips[i].duration_s, plan)


def _structure(bars: int) -> float:
    return STRUCTURE_COST[4 if bars % 4 == 0 else 2 if bars % 2 == 0 else 1]


def _nudge_range(plan, i: int, tempi: list[float]) -> tuple[float, float]:
    """Nudges of clip ``i`` that keep the StepRule with both neighbours and MAX_NUDGE."""
    rule, clips = plan.tempo_rule, plan.clips
    t = clips[i].tempo

    def bound(j: int) -> float:  # the planner's aim, or the plan's own step where it is larger
        return min(rule.limit, max(rule.plan_step, rule.step(clips[j].tempo, clips[j + 1].tempo))) * (1 - 1e-6)

    lo, hi = 1.0 - MAX_NUDGE, 1.0 + MAX_NUDGE
    if i > 0:
        s = bound(i - 1)
        lo, hi = max(lo, tempi[i - 1] * (1 - s) / t), min(hi, tempi[i - 1] * (1 + s) / t)
    if i < len(tempi) - 1:
        s = bound(i)
        lo, hi = max(lo, tempi[i + 1] / (1 + s) / t), min(hi, tempi[i + 1] / (1 - s) / t)
    return lo, hi


def _choose(plan, i: int, tempi: list[float], bar_beats: float) -> tuple[float, int]:
    """The nudged tempo of clip ``i`` (neighbours fixed) whose cadence lands in the window,
    preferring 4-bar phrases and small nudges."""
    t_now = tempi[i]
    join = join_start(plan, i)
    lo_c, hi_c = join - CADENCE_WINDOW_S + 0.05, join - CADENCE_MARGIN_S - 0.05
    lo_f, hi_f = _nudge_range(plan, i, tempi)
    if lo_f > hi_f:  # the neighbours already use the whole step: keep the tempo
        lo_f = hi_f = t_now / plan.clips[i].tempo
    tm = tempo_map(plan, i, tempi)
    f_now = t_now / plan.clips[i].tempo
    best = None
    for bars in range(MIN_BARS, int(join * tempi[i] * (1 + MAX_NUDGE) / 60.0 / bar_beats) + 3):
        c = tm.beat_to_seconds((bars - 1) * bar_beats)  # cadence time at the current tempo
        # cadence time scales as 1/tempo: c(f) ~ c * f_now / f
        f_lo, f_hi = c * f_now / hi_c, c * f_now / max(lo_c, 1e-3)
        f = min(max(1.0, f_lo), f_hi)
        f = min(max(f, lo_f), hi_f)
        late, early = max(0.0, c * f_now / f - hi_c), max(0.0, lo_c - c * f_now / f)
        miss = 10.0 * late + early  # a cadence after the join starts would cut its phrase: much worse
        cost = (miss, abs(math.log(f)) + _structure(bars))
        if best is None or cost < best[0]:
            best = (cost, f, bars, min(max(c * f_now / f, lo_c), hi_c))
    _, f, bars, aim = best
    # refine on the real ramp (the meeting points move with the nudge too)
    base = plan.clips[i].tempo
    trial = list(tempi)
    for _ in range(6):
        trial[i] = base * f
        c = tempo_map(plan, i, trial).beat_to_seconds((bars - 1) * bar_beats)
        if lo_c - 0.04 <= c <= hi_c + 0.04:
            break
        f = min(max(f * (c / aim) ** 1.3, lo_f), hi_f)
    return base * f, bars


def fit_phrases(plan, bar_beats: float = 4.0, kind: str = "piece", rounds: int = 4) -> list[PhraseFit]:
    """The phrase layout of every clip of ``plan`` (see the module's docstring)."""
    from emomusic.form import resolve_form

    tempi = [w.tempo for w in plan.clips]
    counts = [MIN_BARS] * len(tempi)
    for _ in range(rounds):
        for i in range(len(tempi)):
            tempi[i], counts[i] = _choose(plan, i, tempi, bar_beats)
    fits = []
    for i, w in enumerate(plan.clips):
        tm = tempo_map(plan, i, tempi)
        join = join_start(plan, i)
        bars = counts[i]
        while bars > MIN_BARS and tm.beat_to_seconds((bars - 1) * bar_beats) > join - CADENCE_MARGIN_S:
            bars -= 1  # never let the join start before the final cadence
        fits.append(PhraseFit(
            index=w.index, bars=bars, bar_beats=float(bar_beats), tempo=tempi[i], nudge=tempi[i] / w.tempo,
            form=resolve_form(None, bars, w.emotion, kind),
            cadence_s=tm.beat_to_seconds((bars - 1) * bar_beats), end_s=tm.beat_to_seconds(bars * bar_beats),
            join_s=join,
        ))
    return fits


def hold_final(piece: Piece, end_beat: float, until_beat: float) -> Piece:
    """The piece with its final chord (notes sounding up to ``end_beat``, the piece's end)
    held to ``until_beat`` (a fermata through the join region)."""
    if until_beat <= end_beat:
        return piece
    tracks = []
    for t in piece.tracks:
        notes = [replace(n, duration=until_beat - n.start) if (not t.is_drum and n.start < end_beat
                                                               and n.end >= end_beat - HOLD_SLACK_BEATS) else n
                 for n in t.notes]
        tracks.append(replace(t, notes=notes))
    return replace(piece, tracks=tracks)


@functools.lru_cache(maxsize=None)
def _takes(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def with_plain_settings(fn, kwargs: dict) -> bool:
    """Add ``diversity=0`` to ``kwargs`` when ``fn`` takes it: a session is one player, so its
    clips keep the engine's plain settings (compose's player style, melody's per-tune settings
    would otherwise change the texture's character from clip to clip: a bass an octave higher,
    a left hand five times as busy, at a join). True when it was added."""
    if _takes(fn, "diversity"):
        kwargs["diversity"] = 0.0
        return True
    return False


def with_form(fn, kwargs: dict, form) -> bool:
    """Add ``form=form`` to ``kwargs`` when ``fn`` takes a ``form`` argument (engines gain it
    one by one); True when it was added."""
    if form is not None and _takes(fn, "form"):
        kwargs["form"] = form
        return True
    return False


__all__ = ["CADENCE_MARGIN_S", "CADENCE_WINDOW_S", "MAX_NUDGE", "PhraseFit", "fit_phrases", "hold_final",
           "join_start", "tempo_map", "with_form", "with_plain_settings"]
