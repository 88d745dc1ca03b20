"""The settings of a session, each default in one place: :class:`PlanSettings` (the journey)
and :class:`BuildSettings` (how clips are made and accepted).

Both are dataclasses with a JSON round trip (``to_dict`` / ``from_dict``, which rejects
unknown keys naming the known ones) and ``validate()``, which checks everything cheaply,
before any work. The CLI's options and defaults, the presets' allowed keys
(:mod:`emomusic.session.presets`) and the web server's request models derive from them.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import ClassVar, Sequence

from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError
from emomusic.session.checks import PlanError, emotion_field, number, seed_value
from emomusic.session.keys import parse_tonic
from emomusic.session.path import PATHS, STRATEGIES
from emomusic.session.schedule import LOUDNESS_STEP, TEMPO_RANGE, TEMPO_STEP, check_size, clip_durations, default_crossfade


class _Settings:
    """``to_dict`` / ``from_dict`` / ``replace`` shared by the settings dataclasses."""

    kind: ClassVar[str] = "settings"

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def _check_keys(cls, given) -> None:
        known = cls.keys()
        for k in given:
            if k not in known:
                raise EmomusicError(f"unknown {cls.kind} {k!r} (known: {', '.join(known)})")

    @classmethod
    def from_dict(cls, d: dict):
        if not isinstance(d, dict):
            raise EmomusicError(f"{cls.kind} must be a JSON object, got {type(d).__name__}")
        cls._check_keys(d)
        return cls(**d)

    def replace(self, **changes):
        """A copy with ``changes`` applied (unknown names are an error)."""
        self._check_keys(changes)
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PlanSettings(_Settings):
    """Every parameter of :func:`emomusic.session.plan_session` but the start and target."""

    kind: ClassVar[str] = "plan setting"

    minutes: float = 15.0
    clip_seconds: float = 30.0
    match_minutes: float = 2.0  # matching phase at the start mood (iso)
    settle_minutes: float = 2.0  # settling phase at the target mood
    path: str = "eased"  # one of PATHS
    strategy: str = "iso"  # one of STRATEGIES
    heart_rate: float | None = None  # opening tempo (BPM): the listener's pulse
    seed: int = 0
    via: Sequence[Emotion | str] = field(default_factory=list)  # points the path passes through
    tonic: int | str | None = None  # home major key (the relative minor serves negative valence)
    crossfade_s: float | None = None  # seconds each join overlaps (None: min(2, clip/5))
    max_tempo_step: float = TEMPO_STEP.limit
    max_loudness_step: float = LOUDNESS_STEP.limit
    name: str = ""
    description: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["via"] = [v.to_dict() if isinstance(v, Emotion) else v for v in self.via]
        return d

    def via_emotions(self) -> list[Emotion]:
        if isinstance(self.via, (str, Emotion)) or not isinstance(self.via, (list, tuple)):
            raise PlanError(f"via must be a list of moods or points, got {self.via!r}")
        return [emotion_field(v, "via") for v in self.via]

    def durations(self) -> list[float]:
        return clip_durations(round(float(self.minutes) * 60.0, 6), float(self.clip_seconds))

    def validate(self) -> "PlanSettings":
        """Check every setting (one-line :class:`PlanError`); nothing is planned yet."""
        if self.path not in PATHS:
            raise PlanError(f"path must be one of {', '.join(PATHS)}, got {self.path!r}")
        if self.strategy not in STRATEGIES:
            raise PlanError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        check_size(number(self.minutes, "minutes"), number(self.clip_seconds, "clip seconds"))
        for nm, val in (("match minutes", self.match_minutes), ("settle minutes", self.settle_minutes)):
            if number(val, nm) < 0:
                raise PlanError(f"{nm} must be >= 0, got {val}")
        if self.heart_rate is not None and not (TEMPO_RANGE[0] <= number(self.heart_rate, "heart rate") <= TEMPO_RANGE[1]):
            raise PlanError(f"heart rate must be {TEMPO_RANGE[0]:g}..{TEMPO_RANGE[1]:g} BPM, got {self.heart_rate:g}")
        seed_value(self.seed, "seed")
        if self.tonic is not None:
            parse_tonic(self.tonic)
        self.via_emotions()
        durs = self.durations()
        if self.crossfade_s is not None:
            fade = number(self.crossfade_s, "crossfade seconds")
            if fade < 0 or (len(durs) > 1 and fade > min(durs) / 2):
                raise PlanError(f"crossfade must be between 0 and half the shortest clip ({min(durs) / 2:g} s), got {fade:g}")
        TEMPO_STEP.with_limit(number(self.max_tempo_step, "max_tempo_step")).check_limit()
        LOUDNESS_STEP.with_limit(number(self.max_loudness_step, "max_loudness_step")).check_limit()
        for nm in ("name", "description"):
            if not isinstance(getattr(self, nm), str):
                raise PlanError(f"{nm} must be text, got {getattr(self, nm)!r}")
        return self

    def crossfade(self) -> float:
        durs = self.durations()
        if self.crossfade_s is None:
            return default_crossfade(float(self.clip_seconds), len(durs))
        return float(self.crossfade_s)


def _backends() -> tuple[str, ...]:
    from emomusic.session.engines import BACKENDS

    return BACKENDS


@dataclass
class BuildSettings(_Settings):
    """How a plan is built: the clip engine and the closed loop's acceptance thresholds."""

    kind: ClassVar[str] = "build setting"
    backends: ClassVar[tuple[str, ...]] = _backends()  # the engine registry's names

    backend: str = "symbolic"
    model: str | os.PathLike | None = None  # the backend's checkpoint (MusicGen folder for musicgen)
    adapter: str | os.PathLike | None = None  # LoRA adapter folder (musicgen)
    soundfont: str | os.PathLike | None = None  # SoundFont 2 file for rendering (None: the default)
    max_retries: int = 3  # extra seeds tried per clip far from its waypoint
    tolerance: float = 0.6  # largest accepted valence-arousal distance clip <-> waypoint
    sample_rate: int = 44100
    max_gap_s: float = 1.5  # a clip silent this long at its start or end is retried ...
    gap_penalty: float = 0.5  # ... and ranks as if this much farther from its waypoint

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("model", "adapter", "soundfont"):
            if d[k] is not None:
                d[k] = str(d[k])
        return d

    def validate(self) -> "BuildSettings":
        """Check every setting cheaply (names, numbers, that given files exist); raises
        :class:`EmomusicError` before any model is loaded."""
        if self.backend not in self.backends:
            raise EmomusicError(f"unknown backend {self.backend!r}; use one of {', '.join(self.backends)}")
        r = self.max_retries
        if isinstance(r, bool) or not isinstance(r, (int, float)) or int(r) != r or r < 0:
            raise EmomusicError(f"max retries must be a whole number >= 0, got {r}")
        for nm, v in (("tolerance", self.tolerance), ("max gap seconds", self.max_gap_s),
                      ("gap penalty", self.gap_penalty)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise EmomusicError(f"{nm} must be a number >= 0, got {v}")
        sr = self.sample_rate
        if isinstance(sr, bool) or not isinstance(sr, (int, float)) or int(sr) != sr or not 8000 <= sr <= 192000:
            raise EmomusicError(f"sample rate must be 8000..192000 Hz, got {sr}")
        if self.backend == "musicgen" and self.model is None:
            raise EmomusicError("the musicgen backend needs --model PATH (a local MusicGen checkpoint folder)")
        for what, value, folder in (("model", self.model, None), ("LoRA adapter folder", self.adapter, True),
                                    ("SoundFont", self.soundfont, False)):
            if isinstance(value, (str, os.PathLike)):
                p = Path(value)
                if not p.exists():
                    raise EmomusicError(f"{what} not found: {p}")
                if folder is True and not p.is_dir():
                    raise EmomusicError(f"{what} must be a folder: {p}")
                if folder is False and not p.is_file():
                    raise EmomusicError(f"{what} must be a file: {p}")
        return self

    def settled(self) -> "BuildSettings":
        """Validated, with whole numbers as int (as recorded in session.json)."""
        self.validate()
        return replace(self, max_retries=int(self.max_retries), sample_rate=int(self.sample_rate),
                       tolerance=float(self.tolerance))


__all__ = ["BuildSettings", "PlanSettings"]
