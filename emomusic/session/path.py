"""The journey of a plan: phases, and one waypoint emotion per clip along an eased path.

Shape (``strategy="iso"``)::

    matching phase   ~match_minutes at the start emotion ("meet the listener")
    transition       the path from start to target (through the via points)
    settling phase   ~settle_minutes at the target emotion

``strategy="compensatory"`` plays music of the target mood from the first clip. Each
waypoint comes with its *progress* (0..1) along the journey, which fades the heart-rate
offset of the tempo (see :mod:`emomusic.session.schedule`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from emomusic.emotion import Emotion

PATHS = ("eased", "linear", "arousal-first", "valence-first")
STRATEGIES = ("iso", "compensatory")
PHASES = ("matching", "transition", "settling")
SAME_POINT = 1e-9  # emotions closer than this are one point


@dataclass
class Journey:
    phases: list[str]
    emotions: list[Emotion]
    progress: list[float]  # 0 at the start mood, 1 at the target

    @property
    def matching(self) -> int:
        return self.phases.count("matching")


def smoothstep(t: float) -> float:
    return t * t * (3.0 - 2.0 * t)


def leg_point(a: Emotion, b: Emotion, t: float, path: str) -> Emotion:
    """Position ``t`` in [0, 1] along one leg a -> b of the path."""
    t = min(1.0, max(0.0, t))
    if path == "linear":
        return a.lerp(b, t)
    if path == "eased":
        return a.lerp(b, smoothstep(t))
    # axis-first paths: first half moves one axis (eased), second half the other
    s1 = smoothstep(min(1.0, 2.0 * t))
    s2 = smoothstep(max(0.0, 2.0 * t - 1.0))
    if path == "arousal-first":
        return Emotion(a.valence + (b.valence - a.valence) * s2, a.arousal + (b.arousal - a.arousal) * s1)
    return Emotion(a.valence + (b.valence - a.valence) * s1, a.arousal + (b.arousal - a.arousal) * s2)


def transition_points(points: Sequence[Emotion], m: int, path: str) -> list[tuple[Emotion, float]]:
    """``m`` waypoints strictly between the first and last of ``points`` (through the vias),
    with the overall progress (0..1) of each, for fading the heart-rate offset."""
    if m <= 0:
        return []
    legs = list(zip(points, points[1:]))
    lengths = [max(a.distance(b), 1e-9) for a, b in legs]
    total = sum(lengths)
    # distribute the m clips over the legs in proportion to their length (largest remainder)
    raw = [m * L / total for L in lengths]
    counts = [int(math.floor(r)) for r in raw]
    for i in sorted(range(len(legs)), key=lambda i: raw[i] - counts[i], reverse=True)[: m - sum(counts)]:
        counts[i] += 1
    out: list[tuple[Emotion, float]] = []
    done = 0
    for (a, b), k in zip(legs, counts):
        for j in range(k):
            # positions spread over the leg; a leg ending at a via point reaches it exactly
            t = (j + 1) / (k + (1 if b is points[-1] else 0))
            out.append((leg_point(a, b, t, path), (done + j + 1) / (m + 1)))
        done += k
    return out


def phase_counts(n: int, clip_seconds: float, match_minutes: float, settle_minutes: float) -> tuple[int, int, int]:
    """Clips in the matching, transition and settling phases (iso strategy)."""
    m = int(round(match_minutes * 60 / clip_seconds))
    s = int(round(settle_minutes * 60 / clip_seconds))
    if match_minutes > 0:
        m = max(1, m)
    if settle_minutes > 0:
        s = max(1, s)
    # Leave at least half the session (and one clip) for the transition.
    budget = max(0, n - max(1, (n + 1) // 2))
    while m + s > budget and (m > 0 or s > 0):
        if m >= s and m > 0:
            m -= 1
        elif s > 0:
            s -= 1
    return m, n - m - s, s


def journey(start: Emotion, target: Emotion, via: Sequence[Emotion], n: int, clip_seconds: float,
            match_minutes: float, settle_minutes: float, path: str, strategy: str) -> Journey:
    """Phase, waypoint emotion and progress of each of the ``n`` clips."""
    if strategy == "compensatory":
        # Target-mood music from the start; no matching phase. The last clips are "settling".
        s = min(n - 1, int(round(settle_minutes * 60 / clip_seconds))) if n > 1 else 0
        phases = ["transition"] * (n - s) + ["settling"] * s
        emotions = [target] * n
        progress = [min(1.0, (i + 1) / max(1, n - s)) for i in range(n)]
    else:
        m, t, s = phase_counts(n, clip_seconds, match_minutes, settle_minutes)
        if start.distance(target) < SAME_POINT and not via:
            pts = [(start, (j + 1) / (t + 1)) for j in range(t)]
        else:
            pts = transition_points([start, *via, target], t, path)
        phases = ["matching"] * m + ["transition"] * t + ["settling"] * s
        emotions = [start] * m + [p for p, _ in pts] + [target] * s
        progress = [0.0] * m + [q for _, q in pts] + [1.0] * s
    # keep the user's labels on the end points
    emotions = [
        e if (e.label or not (e.distance(start) < SAME_POINT or e.distance(target) < SAME_POINT))
        else (start if e.distance(start) < SAME_POINT else target)
        for e in emotions
    ]
    return Journey(phases, emotions, progress)
