"""Input checks shared by the planner's modules: one-line :class:`PlanError` messages."""

from __future__ import annotations

import math

from emomusic.emotion import Emotion, parse_emotion
from emomusic.errors import EmomusicError

MAX_SEED = 2**32 - 1  # plan seeds: clip seeds are seed * 1000 + index (numpy and torch take them)


class PlanError(EmomusicError, ValueError):
    """A session plan (arguments or edited JSON) that breaks a rule; one line."""


def number(value: object, name: str) -> float:
    """A finite float; ``name`` goes into the message."""
    if isinstance(value, bool) or value is None:
        raise PlanError(f"{name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise PlanError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(x) or math.isinf(x):
        raise PlanError(f"{name} must be a finite number, got {value!r}")
    return x


def whole(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise PlanError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def seed_value(value: object, name: str) -> int:
    """A seed: a whole number in 0..MAX_SEED."""
    s = whole(value, name)
    if not 0 <= s <= MAX_SEED:
        raise PlanError(f"{name} must be 0..{MAX_SEED}, got {s}")
    return s


def emotion_field(value: object, where: str) -> Emotion:
    try:
        if isinstance(value, dict):
            return Emotion.from_dict(value)
        if isinstance(value, (str, Emotion)):
            return parse_emotion(value)
    except EmomusicError as exc:
        raise PlanError(f"{where}: {exc}") from None
    raise PlanError(f"{where}: an emotion is {{\"valence\": V, \"arousal\": A}} or a mood word, got {value!r}")
