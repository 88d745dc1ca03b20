"""Iso-principle listening sessions: plan a journey between two moods, then build it.

API (see docs/session.md)::

    plan_session(start, target, settings: PlanSettings | None = None, **overrides) -> SessionPlan
    build_session(plan, out_dir, settings: BuildSettings | None = None, *, engine=None,
                  estimator="default", resume=False, on_clip=None, **overrides) -> dict
    load_preset(name_or_path, **overrides) -> (start, target, PlanSettings); preset_names()
    with_fallback(BuildSettings) -> (BuildSettings, warning | None)   # default backend -> rules
"""

from __future__ import annotations

from emomusic.session.checks import PlanError
from emomusic.session.plan import SessionPlan, Waypoint
from emomusic.session.planner import plan_session
from emomusic.session.presets import load_preset, plan_from_preset, preset_names
from emomusic.session.schedule import LOUDNESS_STEP, TEMPO_STEP, StepRule
from emomusic.session.settings import BuildSettings, PlanSettings

__all__ = [
    "BuildSettings",
    "ClipResult",
    "LOUDNESS_STEP",
    "PlanError",
    "PlanSettings",
    "SessionPlan",
    "StepRule",
    "TEMPO_STEP",
    "Waypoint",
    "build_session",
    "load_preset",
    "plan_from_preset",
    "plan_session",
    "preset_names",
    "with_fallback",
]

_LAZY = {  # the builder pulls in the audio code: imported on first use
    "build_session": "emomusic.session.builder",
    "ClipResult": "emomusic.session.clips",
    "with_fallback": "emomusic.session.engines",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
