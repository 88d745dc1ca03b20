"""Timing and dynamics of a plan: clip lengths, tempi, loudness, and the step rule.

:class:`StepRule` is the one home of the continuity rule between consecutive clips: the
planner follows it (:meth:`StepRule.follow`), an edited plan's missing values are filled
within it (:meth:`StepRule.fill`), :meth:`SessionPlan.validate` checks it
(:meth:`StepRule.violation`), and the builder's in-clip tempo ramp meets the neighbouring
clip half-way (:meth:`StepRule.meeting_point`). Tempo steps are ratios (``|t2/t1 - 1|``, at
most 10 %: heart-rate entrainment studies, see docs/session.md), loudness steps are in dB.
To change a limit, change ``limit=`` of :data:`TEMPO_STEP` or :data:`LOUDNESS_STEP`; a plan
may also carry its own (``max_tempo_step`` / ``max_loudness_step``).

Durations: ``n = ceil(minutes*60 / clip_seconds)`` clips of ``clip_seconds``; when the
session is not a multiple of ``clip_seconds`` the last clip is shorter, and a remainder
under a quarter of a clip is merged into the clip before it (which becomes longer) so no
clip is a fragment. The durations always sum exactly to ``minutes * 60`` seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

from emomusic.emotion import Emotion
from emomusic.session.checks import PlanError
from emomusic.session.path import smoothstep

REFERENCE_LOUDNESS_DB = -20.0  # session loudness at the template's centre velocity
REFERENCE_VELOCITY = 72.0
LOUDNESS_RANGE_DB = (-30.0, -14.0)
TEMPO_RANGE = (40.0, 200.0)
MIN_LAST_CLIP_FRACTION = 0.25
SECONDS_EPS = 1e-6
MAX_MINUTES = 180.0
MIN_CLIP_SECONDS = 2.0
FILL_HEADROOM = 0.999  # filled-in values of an edited plan stay just inside the limit
STEP_EPS = 1e-9  # a step this much over the limit still passes (float error)


@dataclass(frozen=True)
class StepRule:
    """The largest change of one quantity between consecutive clips.

    ``relative``: the step is the ratio ``|b/a - 1|`` (tempo), else the difference
    ``|b - a|`` (loudness, dB). The planner aims below the limit, at
    ``min(limit * planning, planning_cap)``, leaving room for rounding and small edits."""

    quantity: str  # "tempo" | "loudness"
    limit: float
    relative: bool
    max_limit: float  # the largest limit a plan may carry
    planning: float = 1.0
    planning_cap: float = math.inf
    unit: str = ""

    @property
    def setting(self) -> str:
        return f"max_{self.quantity}_step"

    def with_limit(self, limit: float) -> "StepRule":
        return replace(self, limit=float(limit))

    def check_limit(self) -> None:
        if not (0 < self.limit <= self.max_limit):
            raise PlanError(f"{self.setting} must be in (0, {self.max_limit:g}]{self.unit}, got {self.limit:g}")

    @property
    def plan_step(self) -> float:
        return min(self.limit * self.planning, self.planning_cap)

    @property
    def fill_step(self) -> float:
        return self.limit * FILL_HEADROOM

    def step(self, a: float, b: float) -> float:
        return abs(b / a - 1.0) if self.relative else abs(b - a)

    def clamp(self, value: float, ref: float, step: float | None = None) -> float:
        """``value`` moved the least so the step from ``ref`` is at most ``step`` (the limit)."""
        s = self.limit if step is None else step
        lo, hi = (ref / (1.0 + s), ref * (1.0 + s)) if self.relative else (ref - s, ref + s)
        return min(hi, max(lo, value))

    def meeting_point(self, a: float, b: float) -> float:
        """Where two neighbouring clips meet: half the step from each (geometric mean for ratios)."""
        return math.sqrt(a * b) if self.relative else 0.5 * (a + b)

    def violation(self, a: float, b: float, where: str) -> str | None:
        """None when ``a -> b`` keeps the rule, else the one-line message saying why not."""
        s = self.step(a, b)
        if s <= self.limit + STEP_EPS:
            return None
        if self.relative:
            return (f"{where}: {self.quantity} {a:.1f} -> {b:.1f} BPM is a {100 * s:.1f}% step "
                    f"(at most {100 * self.limit:g}% between clips)")
        return (f"{where}: {self.quantity} {a:.1f} -> {b:.1f}{self.unit} is a {s:.1f}{self.unit} jump "
                f"(at most {self.limit:g}{self.unit} between clips)")

    def enforce(self, values: Sequence[float]) -> list[float]:
        """One forward pass: each value within the limit of the one before (after rounding)."""
        out = list(values)
        for i in range(1, len(out)):
            out[i] = self.clamp(out[i], out[i - 1])
        return out

    def follow(self, values: Sequence[float], fixed: int = 1) -> list[float]:
        """Follow ``values`` closely in steps of at most :attr:`plan_step`. A forward pass from
        the first value; then a backward pass over the clips after the first ``fixed`` ones
        lets a change that is too big start earlier, so the target is reached in time; a last
        forward pass restores the bound. The first ``fixed`` values (the matching phase) are
        kept as they are when possible."""
        step = self.plan_step
        out = [values[0]]
        for v in values[1:]:
            out.append(self.clamp(v, out[-1], step))
        for i in range(len(out) - 2, max(0, fixed) - 1, -1):
            out[i] = self.clamp(out[i], out[i + 1], step)
        for i in range(1, len(out)):
            out[i] = self.clamp(out[i], out[i - 1], step)
        return out

    def fill(self, values: Sequence[float], free: Sequence[bool]) -> list[float]:
        """The ``free`` positions moved (as little as possible) so each step to the previous and
        the next clip stays within :attr:`fill_step`; the other positions are kept."""
        step = self.fill_step
        out = list(values)
        for _ in range(len(out) + 1):
            before = list(out)
            for i in range(1, len(out)):
                if free[i]:
                    out[i] = self.clamp(out[i], out[i - 1], step)
            for i in range(len(out) - 2, -1, -1):
                if free[i]:
                    out[i] = self.clamp(out[i], out[i + 1], step)
            if out == before:
                break
        return out


TEMPO_STEP = StepRule("tempo", limit=0.10, relative=True, max_limit=0.25, planning_cap=0.08)
LOUDNESS_STEP = StepRule("loudness", limit=1.5, relative=False, max_limit=6.0, planning=0.8, unit=" dB")


# --------------------------------------------------------------------------------------
# Durations and seeds
# --------------------------------------------------------------------------------------


def check_size(minutes: float, clip_seconds: float) -> None:
    if minutes is None or not isinstance(minutes, (int, float)) or math.isnan(minutes) or minutes <= 0:
        raise PlanError(f"minutes must be > 0, got {minutes}")
    if minutes > MAX_MINUTES:
        raise PlanError(f"minutes must be at most {MAX_MINUTES:g} (3 hours), got {minutes:g}")
    if clip_seconds is None or math.isnan(clip_seconds) or clip_seconds <= 0:
        raise PlanError(f"clip seconds must be > 0, got {clip_seconds}")
    if clip_seconds > minutes * 60 + SECONDS_EPS:
        raise PlanError(f"clips of {clip_seconds:g} s are longer than the {minutes * 60:g} s session; use shorter clips or more minutes")
    if clip_seconds < MIN_CLIP_SECONDS:
        raise PlanError(f"clip seconds must be at least {MIN_CLIP_SECONDS:g}, got {clip_seconds:g}")


def clip_durations(total_seconds: float, clip_seconds: float) -> list[float]:
    """Durations summing exactly to ``total_seconds`` (see the module doc for the last clip)."""
    n = max(1, math.ceil(total_seconds / clip_seconds - 1e-9))
    durs = [clip_seconds] * n
    rest = round(total_seconds - clip_seconds * (n - 1), 6)
    durs[-1] = rest
    if n > 1 and rest < MIN_LAST_CLIP_FRACTION * clip_seconds - 1e-9:
        durs = durs[:-1]
        durs[-1] = round(clip_seconds + rest, 6)
    # exact sum: absorb float error in the last clip
    durs[-1] = round(total_seconds - sum(durs[:-1]), 6)
    return durs


def default_crossfade(clip_seconds: float, n: int) -> float:
    return min(2.0, clip_seconds / 5.0) if n > 1 else 0.0


def clip_seed(seed: int, index: int) -> int:
    return int(seed) * 1000 + index


# --------------------------------------------------------------------------------------
# Tempo and loudness of a mood, and their schedules
# --------------------------------------------------------------------------------------


def emotion_tempo(emotion: Emotion) -> float:
    from emomusic.attributes import template

    return float(min(TEMPO_RANGE[1], max(TEMPO_RANGE[0], template(emotion).tempo_bpm)))


def emotion_loudness(emotion: Emotion) -> float:
    """Target loudness in dB: the template velocity as a level relative to -20 dB at velocity 72."""
    from emomusic.attributes import template

    vel = max(1.0, template(emotion).velocity)
    db = REFERENCE_LOUDNESS_DB + 20.0 * math.log10(vel / REFERENCE_VELOCITY)
    return float(min(LOUDNESS_RANGE_DB[1], max(LOUDNESS_RANGE_DB[0], db)))


def plan_tempos(emotions: Sequence[Emotion], progress: Sequence[float], heart_rate: float | None,
                rule: StepRule, fixed: int) -> list[float]:
    """Each mood's tempo, offset toward the heart rate at the start (the offset fades along the
    journey), followed within ``rule`` and rounded to 0.01 BPM without breaking it."""
    own = [emotion_tempo(e) for e in emotions]
    if heart_rate is not None:
        offset = math.log(heart_rate / own[0])
        desired = [tp * math.exp(offset * (1.0 - smoothstep(p))) for tp, p in zip(own, progress)]
        desired[0] = heart_rate
    else:
        desired = own
    tempos = [round(x, 2) for x in rule.follow(desired, fixed=fixed)]
    return [float(t) for t in rule.enforce(tempos)]


def plan_loudness(emotions: Sequence[Emotion], rule: StepRule, fixed: int) -> list[float]:
    return [round(v, 3) for v in rule.follow([emotion_loudness(e) for e in emotions], fixed=fixed)]
