"""trajectory.png: the planned and the measured path on the valence-arousal circle."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from emomusic.emotion import Emotion
from emomusic.session.plan import SessionPlan

_QUADRANT_LABELS = {  # in the corners, outside the unit circle
    "Q1": (0.82, 1.04, "Q1 happy / excited"),
    "Q2": (-0.82, 1.04, "Q2 tense / angry"),
    "Q3": (-0.82, -1.04, "Q3 sad / depressed"),
    "Q4": (0.82, -1.04, "Q4 calm / relaxed"),
}


def plot_trajectory(path: str | Path, plan: SessionPlan, measured: Sequence[Emotion | None] = ()) -> Path:
    """Draw the plan's waypoints (line, numbered) and each clip's measured emotion (dots
    joined to their waypoints by thin lines) on Russell's circumplex; written atomically."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state, safe on any thread

    from emomusic.atomic import atomic_path

    fig = Figure(figsize=(6.4, 6.4), dpi=100)
    ax = fig.subplots()
    th = [2 * math.pi * k / 200 for k in range(201)]
    ax.plot([math.cos(t) for t in th], [math.sin(t) for t in th], color="0.75", lw=1)
    ax.axhline(0, color="0.8", lw=0.8)
    ax.axvline(0, color="0.8", lw=0.8)
    for x, y, text in _QUADRANT_LABELS.values():
        ax.text(x, y, text, ha="center", va="center", fontsize=8, color="0.4")
    pv = [c.emotion.valence for c in plan.clips]
    pa = [c.emotion.arousal for c in plan.clips]
    ax.plot(pv, pa, "-o", color="tab:blue", ms=4, lw=1.5, label="planned", zorder=3)
    seen: set[tuple[float, float]] = set()
    for c in plan.clips:
        xy = (round(c.emotion.valence, 3), round(c.emotion.arousal, 3))
        if xy in seen:  # clips at one point (matching/settling): number only the first
            continue
        seen.add(xy)
        ax.annotate(str(c.index), xy, xytext=(4, 4), textcoords="offset points", fontsize=7, color="tab:blue")
    mx, my = [], []
    for c, m in zip(plan.clips, measured):
        if m is None:
            continue
        ax.plot([c.emotion.valence, m.valence], [c.emotion.arousal, m.arousal], color="tab:orange", lw=0.6, alpha=0.6)
        mx.append(m.valence)
        my.append(m.arousal)
        ax.annotate(str(c.index), (m.valence, m.arousal), xytext=(3, -8), textcoords="offset points", fontsize=6, color="tab:red")
    if mx:
        ax.plot(mx, my, "x", color="tab:red", ms=6, label="measured", zorder=4)
    ax.plot([plan.start.valence], [plan.start.arousal], "s", color="green", ms=9, label="start", zorder=5)
    ax.plot([plan.target.valence], [plan.target.arousal], "*", color="purple", ms=13, label="target", zorder=5)
    ax.set_xlim(-1.12, 1.12)
    ax.set_ylim(-1.12, 1.12)
    ax.set_aspect("equal")
    ax.set_xlabel("valence (unpleasant .. pleasant)")
    ax.set_ylabel("arousal (calm .. excited)")
    title = plan.name or "session"
    ax.set_title(f"{title}: {plan.minutes:g} min, {len(plan.clips)} clips ({plan.strategy}, {plan.path})", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=4, fontsize=8, frameon=False)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)
