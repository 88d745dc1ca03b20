"""Request models. Bounds come from the library's limits, tightened for a shared server
(see :mod:`emomusic.web.config`); the emotion itself is validated by :mod:`emomusic.emotion`."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from emomusic.emotion import Emotion, emotion_from_options, parse_emotion
from emomusic.errors import EmotionError
from emomusic.melody.notation import METERS
from emomusic.session.path import PATHS, STRATEGIES

from .config import MAX_BARS, MAX_CLIP_SECONDS, MAX_SEED, MAX_SESSION_MINUTES, MAX_VIA, MIN_CLIP_SECONDS
from .sessions import web_backends

Unit = Annotated[float, Field(ge=-1.0, le=1.0, allow_inf_nan=False)]
# A musical form: section letters A-Z, each optionally primed (a varied repeat), or "none".
FORM_PATTERN = r"^(none|([A-Z]'?){1,16})$"
Form = Annotated[str, Field(pattern=FORM_PATTERN, max_length=32, description="Section letters such as AABA or ABA'B, or 'none'.")]
Key = Annotated[str, Field(min_length=1, max_length=8, pattern=r"^[A-Ga-g][#b]?[A-Za-z]{0,4}$")]
Tempo = Annotated[float, Field(ge=20.0, le=300.0, allow_inf_nan=False, description="Tempo in BPM.")]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Bars = Annotated[int, Field(ge=1, le=MAX_BARS)]
MoodText = Annotated[str, Field(min_length=1, max_length=40)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Point(_Strict):
    valence: Unit
    arousal: Unit

    def emotion(self) -> Emotion:
        return Emotion(self.valence, self.arousal)


PointOrMood = Union[Point, MoodText]


def to_emotion(p: PointOrMood | None) -> Emotion | None:
    if p is None:
        return None
    return p.emotion() if isinstance(p, Point) else parse_emotion(p)


class _EmotionRequest(_Strict):
    valence: Unit | None = None
    arousal: Unit | None = None
    mood: MoodText | None = Field(None, description="A mood word (GET /api/moods) instead of valence/arousal.")

    def emotion(self) -> Emotion:
        if self.mood is None and (self.valence is None or self.arousal is None):
            raise EmotionError("give an emotion: both valence and arousal, or a mood word")
        if self.mood is not None and (self.valence is not None or self.arousal is not None):
            raise EmotionError("give either valence and arousal or a mood word, not both")
        return emotion_from_options(self.valence, self.arousal, self.mood)


class ComposeRequest(_EmotionRequest):
    bars: Bars = 8
    seed: Seed = 0
    tempo: Tempo | None = None
    key: Key | None = Field(None, description="Transpose to this key, e.g. G or Em.")
    form: Form | None = None

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"valence": 0.6, "arousal": -0.4, "bars": 8, "seed": 0}]})


class MelodyRequest(_EmotionRequest):
    bars: Bars = 8
    seed: Seed = 0
    chords: bool = False
    meter: Literal[tuple(METERS)] | None = None  # type: ignore[valid-type]
    key: Key | None = Field(None, description="Key and mode, e.g. G, Dm, F#m, Ador, Gmix.")
    tempo: Tempo | None = None
    form: Form | None = None

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"mood": "melancholic", "bars": 8, "chords": True}]})


class SessionRequest(_Strict):
    start: PointOrMood | None = Field(None, description="Where the listener is now ({valence, arousal} or a mood word).")
    target: PointOrMood | None = Field(None, description="Where the session should lead.")
    via: list[PointOrMood] | None = Field(None, max_length=MAX_VIA)
    preset: Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.-]*$")] | None = None
    minutes: Annotated[float, Field(gt=0, le=MAX_SESSION_MINUTES, allow_inf_nan=False)] | None = None
    clip_seconds: Annotated[float, Field(ge=MIN_CLIP_SECONDS, le=MAX_CLIP_SECONDS, allow_inf_nan=False)] | None = None
    backend: Literal[web_backends()] = "symbolic"  # type: ignore[valid-type]  # the session registry's, no musicgen
    seed: Seed | None = None
    path: Literal[PATHS] | None = None  # type: ignore[valid-type]
    strategy: Literal[STRATEGIES] | None = None  # type: ignore[valid-type]

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"start": "anxious", "target": {"valence": 0.6, "arousal": -0.5}, "minutes": 2, "clip_seconds": 30, "backend": "symbolic"}]})

    def plan_options(self) -> dict:
        return {"minutes": self.minutes, "clip_seconds": self.clip_seconds, "seed": self.seed, "path": self.path,
                "strategy": self.strategy}


# -- answers (documented at /docs) -------------------------------------------------------------
class EmotionOut(BaseModel):
    valence: float
    arousal: float
    quadrant: str
    label: str | None = None


class Measured(BaseModel):
    """What emomusic.estimator says about a piece, and its measured attributes."""

    valence: float
    arousal: float
    quadrant: str
    quadrant_probs: dict[str, float]
    nearest_moods: list[str]
    attributes: dict
    notes: int
    tracks: list[str]
    seconds: float


class Roll(BaseModel):
    """The notes for a picture: ``[start_beat, duration_beats, pitch, velocity, track]``."""

    tracks: list[str]
    beats: float
    beats_per_bar: float
    notes: list[list[int | float]]


class PieceAnswer(BaseModel):
    id: str
    kind: str
    emotion: EmotionOut
    files: dict[str, str] = Field(description="format -> URL on this server (midi, wav, musicxml; abc, svg for melodies)")
    measured: Measured
    roll: Roll
    options: dict
    abc: str | None = None
    template: dict | None = None


class AnalyzeAnswer(Measured):
    file: str
    format: str
    roll: Roll


class PlannedClip(BaseModel):
    index: int
    start_s: float
    duration_s: float
    target: EmotionOut
    phase: str


class SessionStarted(BaseModel):
    id: str
    state: str
    url: str = Field(description="poll this for progress: GET /api/jobs/{id}")
    clips: int
    minutes: float
    plan: list[PlannedClip]


class JobState(BaseModel):
    id: str
    kind: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    progress: float
    message: str
    result: dict | None = Field(None, description="when done: clips (planned and measured), files, adherence")
    error: str | None = None


class ErrorAnswer(BaseModel):
    detail: str
