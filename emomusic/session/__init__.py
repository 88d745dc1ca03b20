"""Iso-principle listening sessions: plan a journey between two moods, then build it.

API: :func:`plan_session` (planner), :func:`build_session` (builder). See docs/session.md.
"""

from __future__ import annotations

from emomusic.session.planner import PlanError, SessionPlan, Waypoint, plan_session

__all__ = ["PlanError", "SessionPlan", "Waypoint", "plan_session", "build_session"]


def __getattr__(name):  # build_session pulls in numpy/audio code: import it on first use
    if name == "build_session":
        from emomusic.session.builder import build_session

        return build_session
    raise AttributeError(name)
