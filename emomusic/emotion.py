"""The emotion space: a point in Russell's valence-arousal circumplex.

:class:`Emotion` is the one typed emotion used everywhere in emomusic. It is validated
once, where input enters (CLI options, API calls, JSON plans); everything downstream can
trust it.

Quadrants follow EMOPIA: Q1 +V+A (happy, excited), Q2 -V+A (tense, angry),
Q3 -V-A (sad, depressed), Q4 +V-A (calm, relaxed). A point on an axis (value 0) goes to
the positive side, so every emotion has exactly one quadrant.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable

from emomusic.errors import EmotionError

QUADRANTS = ("Q1", "Q2", "Q3", "Q4")
QUADRANT_NAMES = {
    "Q1": "happy / excited (+valence, +arousal)",
    "Q2": "tense / angry (-valence, +arousal)",
    "Q3": "sad / depressed (-valence, -arousal)",
    "Q4": "calm / relaxed (+valence, -arousal)",
}
# Representative centre of each quadrant, used where a quadrant label has to become a point.
QUADRANT_CENTRES = {"Q1": (0.6, 0.6), "Q2": (-0.6, 0.6), "Q3": (-0.6, -0.6), "Q4": (0.6, -0.6)}


def _check_component(name: str, value: object) -> float:
    if isinstance(value, bool):
        raise EmotionError(f"{name} must be a number in [-1, 1], got {value!r}")
    if not isinstance(value, (int, float)):
        try:
            value = float(value)  # numpy scalars, strings of numbers
        except (TypeError, ValueError):
            raise EmotionError(f"{name} must be a number in [-1, 1], got {value!r}") from None
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        raise EmotionError(f"{name} must be a finite number in [-1, 1], got {value}")
    if not -1.0 <= value <= 1.0:
        raise EmotionError(f"{name} must be in [-1, 1], got {value:g}")
    return value


@dataclass(frozen=True)
class Emotion:
    """A valence-arousal point, both in [-1, 1]. ``label`` is an optional mood word."""

    valence: float
    arousal: float
    label: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "valence", _check_component("valence", self.valence))
        object.__setattr__(self, "arousal", _check_component("arousal", self.arousal))

    # -- derived views -------------------------------------------------------------
    @property
    def quadrant(self) -> str:
        if self.valence >= 0:
            return "Q1" if self.arousal >= 0 else "Q4"
        return "Q2" if self.arousal >= 0 else "Q3"

    @property
    def intensity(self) -> float:
        """Distance from the neutral centre, clipped to 1."""
        return min(1.0, math.hypot(self.valence, self.arousal))

    @property
    def angle(self) -> float:
        """Angle on the circumplex in degrees, 0 = pleasant, 90 = aroused."""
        return math.degrees(math.atan2(self.arousal, self.valence)) % 360.0

    def as_tuple(self) -> tuple[float, float]:
        return (self.valence, self.arousal)

    def to_dict(self) -> dict:
        d = {"valence": round(self.valence, 4), "arousal": round(self.arousal, 4), "quadrant": self.quadrant}
        if self.label:
            d["label"] = self.label
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Emotion":
        if not isinstance(d, dict) or "valence" not in d or "arousal" not in d:
            raise EmotionError(f"an emotion needs 'valence' and 'arousal', got {d!r}")
        return cls(d["valence"], d["arousal"], d.get("label"))

    @classmethod
    def from_quadrant(cls, quadrant: str) -> "Emotion":
        q = str(quadrant).upper()
        if q not in QUADRANT_CENTRES:
            raise EmotionError(f"unknown quadrant {quadrant!r}; use one of {', '.join(QUADRANTS)}")
        v, a = QUADRANT_CENTRES[q]
        return cls(v, a, q)

    # -- geometry ------------------------------------------------------------------
    def distance(self, other: "Emotion") -> float:
        """Euclidean distance in the valence-arousal plane (0 .. 2*sqrt(2))."""
        return math.hypot(self.valence - other.valence, self.arousal - other.arousal)

    def lerp(self, other: "Emotion", t: float) -> "Emotion":
        """Linear interpolation: t=0 gives self, t=1 gives other."""
        t = float(t)
        if not 0.0 <= t <= 1.0 or math.isnan(t):
            raise EmotionError(f"interpolation position must be in [0, 1], got {t}")
        return Emotion(
            self.valence + (other.valence - self.valence) * t,
            self.arousal + (other.arousal - self.arousal) * t,
        )

    def marker_text(self) -> str:
        """Text for MIDI markers, e.g. ``emotion v=0.60 a=-0.40 Q4``."""
        return f"emotion v={self.valence:.2f} a={self.arousal:.2f} {self.quadrant}"

    def __str__(self) -> str:
        name = f"{self.label}: " if self.label else ""
        return f"{name}valence {self.valence:+.2f}, arousal {self.arousal:+.2f} ({self.quadrant})"


def interpolate(start: Emotion, end: Emotion, n: int) -> list[Emotion]:
    """``n`` evenly spaced emotions from ``start`` to ``end`` inclusive."""
    if n < 1:
        raise EmotionError("need at least one point")
    if n == 1:
        return [start]
    return [start.lerp(end, i / (n - 1)) for i in range(n)]


_PAIR = re.compile(r"^\s*\(?\s*([-+]?[\d.]+(?:e[-+]?\d+)?|nan|inf|-inf)\s*[,;\s]\s*([-+]?[\d.]+(?:e[-+]?\d+)?|nan|inf|-inf)\s*\)?\s*$", re.I)


def parse_emotion(text: str | Emotion) -> Emotion:
    """Parse a user's emotion: a mood word (``calm``), ``V,A`` (``0.6,-0.4``) or ``Q1``..``Q4``."""
    if isinstance(text, Emotion):
        return text
    if not isinstance(text, str) or not text.strip():
        raise EmotionError("an emotion is a mood word or 'V,A' (e.g. calm or 0.6,-0.4)")
    s = text.strip()
    m = _PAIR.match(s)
    if m:
        return Emotion(float(m.group(1)), float(m.group(2)))
    if re.fullmatch(r"[qQ][1-4]", s):
        return Emotion.from_quadrant(s)
    if re.search(r"\d", s) and "," in s:
        raise EmotionError(f"cannot read {text!r} as 'V,A': use two numbers in [-1, 1], e.g. 0.6,-0.4")
    from emomusic.moods import mood_emotion

    return mood_emotion(s)


def emotion_from_options(valence: float | None, arousal: float | None, mood: str | None) -> Emotion:
    """Resolve the CLI's ``--valence/--arousal`` or ``--mood`` into one Emotion."""
    if mood is not None and (valence is not None or arousal is not None):
        raise EmotionError("give either --mood or --valence/--arousal, not both")
    if mood is not None:
        return parse_emotion(mood)
    if valence is None or arousal is None:
        raise EmotionError("give an emotion: --valence V --arousal A, or --mood WORD")
    return Emotion(valence, arousal)


def mean_emotion(emotions: Iterable[Emotion]) -> Emotion:
    items = list(emotions)
    if not items:
        raise EmotionError("no emotions to average")
    return Emotion(sum(e.valence for e in items) / len(items), sum(e.arousal for e in items) / len(items))
