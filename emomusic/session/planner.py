"""The iso-principle session planner: one waypoint emotion per clip, with tempo, key and loudness.

A plan is data. :func:`plan_session` computes one; :class:`SessionPlan` round-trips through
JSON (``to_json`` / ``from_json``) so a therapist can edit it (move a waypoint, change a
tempo) and build the edited plan. Loading validates every rule below and names the first
clip that breaks one.

Shape of a plan (``strategy="iso"``, the default)::

    matching phase   ~match_minutes at the start emotion ("meet the listener")
    transition       the path from start to target (eased straight line by default)
    settling phase   ~settle_minutes at the target emotion

``strategy="compensatory"`` plays music of the target mood from the first clip (the RCT in
docs/session.md found both strategies alike); tempo and loudness still move in small steps.

Continuity rules between consecutive clips (checked by :meth:`SessionPlan.validate`):

* tempo changes by at most ``max_tempo_step`` (10 %, heart-rate entrainment studies);
* keys are related: the same key, the relative major/minor, or a fifth up/down in the same mode;
* loudness targets change by at most ``max_loudness_step`` dB.

Durations: ``n = ceil(minutes*60 / clip_seconds)`` clips of ``clip_seconds``; when the
session is not a multiple of ``clip_seconds`` the last clip is shorter, and a remainder
under a quarter of a clip is merged into the clip before it (which becomes longer) so no
clip is a fragment. The durations always sum exactly to ``minutes * 60`` seconds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Sequence

from emomusic.emotion import Emotion, parse_emotion
from emomusic.errors import EmomusicError
from emomusic.piece import PITCH_CLASS_NAMES, KeySignature

PLAN_VERSION = 1
PATHS = ("eased", "linear", "arousal-first", "valence-first")
STRATEGIES = ("iso", "compensatory")
PHASES = ("matching", "transition", "settling")

DEFAULT_MAX_TEMPO_STEP = 0.10  # fraction of the previous clip's tempo
DEFAULT_TEMPO_STEP_MARGIN = 0.08  # what the planner itself uses (below the 10 % rule)
DEFAULT_MAX_LOUDNESS_STEP = 1.5  # dB between consecutive clips
REFERENCE_LOUDNESS_DB = -20.0  # session loudness at the template's centre velocity
REFERENCE_VELOCITY = 72.0
LOUDNESS_RANGE_DB = (-30.0, -14.0)
TEMPO_RANGE = (40.0, 200.0)
MIN_LAST_CLIP_FRACTION = 0.25
SECONDS_EPS = 1e-6


class PlanError(EmomusicError, ValueError):
    """A session plan (arguments or edited JSON) that breaks a rule; one line."""


# --------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------


def key_to_dict(key: KeySignature) -> dict:
    return {"tonic": PITCH_CLASS_NAMES[key.tonic % 12], "mode": key.mode}


_TONIC_NAMES = {
    "C": 0, "B#": 0, "C#": 1, "DB": 1, "D": 2, "D#": 3, "EB": 3, "E": 4, "FB": 4, "F": 5, "E#": 5,
    "F#": 6, "GB": 6, "G": 7, "G#": 8, "AB": 8, "A": 9, "A#": 10, "BB": 10, "B": 11, "CB": 11,
}


def parse_tonic(value: object) -> int:
    """A tonic given as a pitch class 0..11 or a name (``"D"``, ``"F#"``, ``"Bb"``)."""
    if isinstance(value, bool):
        raise PlanError(f"key tonic must be a note name or 0..11, got {value!r}")
    if isinstance(value, int):
        if 0 <= value <= 11:
            return value
        raise PlanError(f"key tonic must be 0..11, got {value}")
    if isinstance(value, str):
        s = value.strip()
        k = s[:1].upper() + s[1:].upper().replace("♭", "B").replace("♯", "#")
        if k in _TONIC_NAMES:
            return _TONIC_NAMES[k]
    raise PlanError(f"key tonic must be a note name like C, F# or Bb (or 0..11), got {value!r}")


def key_from_dict(d: object) -> KeySignature:
    if isinstance(d, str):  # "A minor", "C major"
        parts = d.split()
        if len(parts) == 2:
            d = {"tonic": parts[0], "mode": parts[1]}
    if not isinstance(d, dict) or "tonic" not in d or "mode" not in d:
        raise PlanError(f"a key needs 'tonic' and 'mode' (e.g. {{\"tonic\": \"A\", \"mode\": \"minor\"}}), got {d!r}")
    mode = str(d["mode"]).lower()
    if mode not in ("major", "minor"):
        raise PlanError(f"key mode must be 'major' or 'minor', got {d['mode']!r}")
    return KeySignature(parse_tonic(d["tonic"]), mode)


def relative_key(key: KeySignature) -> KeySignature:
    """The relative minor of a major key and the relative major of a minor key."""
    if key.mode == "major":
        return KeySignature((key.tonic + 9) % 12, "minor")
    return KeySignature((key.tonic + 3) % 12, "major")


def keys_related(a: KeySignature, b: KeySignature) -> bool:
    """Same key, relative major/minor, or a neighbour on the circle of fifths (same mode)."""
    ta, tb = a.tonic % 12, b.tonic % 12
    if a.mode == b.mode:
        return ta == tb or (tb - ta) % 12 in (5, 7)
    rel = relative_key(a)
    return rel.tonic == tb and rel.mode == b.mode


def _same_key(a: KeySignature, b: KeySignature) -> bool:
    return a.tonic % 12 == b.tonic % 12 and a.mode == b.mode


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


@dataclass
class Waypoint:
    """One clip of the session: when, which emotion, and the music's tempo, key and level."""

    index: int  # 1-based clip number
    phase: str  # matching | transition | settling
    start_s: float
    duration_s: float
    emotion: Emotion
    tempo: float  # BPM
    key: KeySignature
    loudness_db: float  # target loudness of the clip in dB (session reference -20 dB)
    seed: int
    title: str = ""

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s

    @property
    def key_name(self) -> str:
        return f"{PITCH_CLASS_NAMES[self.key.tonic % 12]} {self.key.mode}"

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "phase": self.phase,
            "start_s": round(self.start_s, 6),
            "duration_s": round(self.duration_s, 6),
            "emotion": self.emotion.to_dict(),
            "tempo": round(self.tempo, 3),
            "key": key_to_dict(self.key),
            "loudness_db": round(self.loudness_db, 3),
            "seed": self.seed,
            "title": self.title,
        }


@dataclass
class SessionPlan:
    start: Emotion
    target: Emotion
    minutes: float
    clip_seconds: float
    clips: list[Waypoint]
    strategy: str = "iso"
    path: str = "eased"
    via: list[Emotion] = field(default_factory=list)
    heart_rate: float | None = None
    seed: int = 0
    crossfade_s: float = 2.0
    max_tempo_step: float = DEFAULT_MAX_TEMPO_STEP
    max_loudness_step: float = DEFAULT_MAX_LOUDNESS_STEP
    name: str = ""
    description: str = ""

    # -- views -------------------------------------------------------------------------
    @property
    def total_seconds(self) -> float:
        return round(float(self.minutes) * 60.0, 6)

    def __len__(self) -> int:
        return len(self.clips)

    def phase_counts(self) -> dict[str, int]:
        out = {p: 0 for p in PHASES}
        for c in self.clips:
            out[c.phase] += 1
        return out

    def tempo_steps(self) -> list[float]:
        """Relative tempo change between consecutive clips (|t2/t1 - 1|)."""
        return [abs(b.tempo / a.tempo - 1.0) for a, b in zip(self.clips, self.clips[1:])]

    def loudness_steps(self) -> list[float]:
        return [abs(b.loudness_db - a.loudness_db) for a, b in zip(self.clips, self.clips[1:])]

    # -- JSON ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "emomusic_session_plan": PLAN_VERSION,
            "name": self.name,
            "description": self.description,
            "start": self.start.to_dict(),
            "target": self.target.to_dict(),
            "via": [e.to_dict() for e in self.via],
            "minutes": self.minutes,
            "clip_seconds": self.clip_seconds,
            "strategy": self.strategy,
            "path": self.path,
            "heart_rate": self.heart_rate,
            "seed": self.seed,
            "crossfade_s": self.crossfade_s,
            "max_tempo_step": self.max_tempo_step,
            "max_loudness_step": self.max_loudness_step,
            "clips": [c.to_dict() for c in self.clips],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict, validate: bool = True) -> "SessionPlan":
        """Rebuild a plan from its dict. In each clip, ``tempo``, ``key`` and ``loudness_db``
        may be left out (or null) after an edit: they are derived again from the clip's
        emotion, smoothed like a fresh plan. ``start_s`` is recomputed from the durations."""
        if not isinstance(d, dict):
            raise PlanError(f"a session plan is a JSON object, got {type(d).__name__}")
        version = d.get("emomusic_session_plan", PLAN_VERSION)
        if version != PLAN_VERSION:
            raise PlanError(f"session plan version {version!r} is not supported (this emomusic reads version {PLAN_VERSION})")
        for k in ("start", "target", "minutes", "clip_seconds", "clips"):
            if k not in d:
                raise PlanError(f"session plan lacks {k!r}")
        raw_clips = d["clips"]
        if not isinstance(raw_clips, list) or not raw_clips:
            raise PlanError("session plan 'clips' must be a non-empty list")
        minutes = _number(d["minutes"], "minutes")
        clip_seconds = _number(d["clip_seconds"], "clip_seconds")
        seed = _int(d.get("seed", 0), "plan seed")
        clips: list[Waypoint] = []
        needs_fill: list[tuple[bool, bool, bool]] = []
        t = 0.0
        for i, c in enumerate(raw_clips, start=1):
            where = f"plan clip {i}"
            if not isinstance(c, dict):
                raise PlanError(f"{where}: must be a JSON object")
            if "emotion" not in c:
                raise PlanError(f"{where}: lacks 'emotion'")
            emo = _emotion_field(c["emotion"], where)
            phase = c.get("phase", "transition")
            if phase not in PHASES:
                raise PlanError(f"{where}: phase must be one of {', '.join(PHASES)}, got {phase!r}")
            dur = _number(c.get("duration_s", clip_seconds), f"{where} duration_s")
            if dur <= 0:
                raise PlanError(f"{where}: duration_s must be > 0, got {dur:g}")
            tempo = c.get("tempo")
            key = c.get("key")
            loud = c.get("loudness_db")
            needs_fill.append((tempo is None, key is None, loud is None))
            clips.append(
                Waypoint(
                    index=i,
                    phase=phase,
                    start_s=t,
                    duration_s=dur,
                    emotion=emo,
                    tempo=_number(tempo, f"{where} tempo") if tempo is not None else float("nan"),
                    key=key_from_dict(key) if key is not None else KeySignature(0, "major"),
                    loudness_db=_number(loud, f"{where} loudness_db") if loud is not None else float("nan"),
                    seed=_int(c.get("seed", _clip_seed(seed, i)), f"{where} seed"),
                    title=str(c.get("title", "")),
                )
            )
            t += dur
        plan = cls(
            start=_emotion_field(d["start"], "plan start"),
            target=_emotion_field(d["target"], "plan target"),
            via=[_emotion_field(v, "plan via") for v in d.get("via") or []],
            minutes=minutes,
            clip_seconds=clip_seconds,
            clips=clips,
            strategy=str(d.get("strategy", "iso")),
            path=str(d.get("path", "eased")),
            heart_rate=None if d.get("heart_rate") is None else _number(d["heart_rate"], "heart_rate"),
            seed=seed,
            crossfade_s=_number(d.get("crossfade_s", 2.0), "crossfade_s"),
            max_tempo_step=_number(d.get("max_tempo_step", DEFAULT_MAX_TEMPO_STEP), "max_tempo_step"),
            max_loudness_step=_number(d.get("max_loudness_step", DEFAULT_MAX_LOUDNESS_STEP), "max_loudness_step"),
            name=str(d.get("name", "")),
            description=str(d.get("description", "")),
        )
        if any(any(f) for f in needs_fill):
            _fill_attributes(plan, needs_fill)
        for c in plan.clips:
            if not c.title:
                c.title = clip_title(c)
        if validate:
            plan.validate()
        return plan

    @classmethod
    def from_json(cls, text: str, validate: bool = True) -> "SessionPlan":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PlanError(f"the session plan is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
        return cls.from_dict(d, validate=validate)

    @classmethod
    def load(cls, path) -> "SessionPlan":
        from pathlib import Path

        p = Path(path)
        if not p.is_file():
            raise PlanError(f"no such plan file: {p}")
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PlanError(f"cannot read plan {p}: {exc}") from None
        return cls.from_json(text)

    # -- validation --------------------------------------------------------------------
    def validate(self) -> "SessionPlan":
        """Check every rule; raise :class:`PlanError` naming the first clip that breaks one."""
        if self.strategy not in STRATEGIES:
            raise PlanError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.path not in PATHS:
            raise PlanError(f"path must be one of {', '.join(PATHS)}, got {self.path!r}")
        _check_session_size(self.minutes, self.clip_seconds)
        if not (0 < self.max_tempo_step <= 0.25):
            raise PlanError(f"max_tempo_step must be in (0, 0.25], got {self.max_tempo_step:g}")
        if not (0 < self.max_loudness_step <= 6):
            raise PlanError(f"max_loudness_step must be in (0, 6] dB, got {self.max_loudness_step:g}")
        if self.crossfade_s < 0:
            raise PlanError(f"crossfade_s must be >= 0, got {self.crossfade_s:g}")
        total = sum(c.duration_s for c in self.clips)
        if abs(total - self.total_seconds) > 1e-3:
            raise PlanError(
                f"clip durations sum to {total:.3f} s but the session lasts {self.total_seconds:.3f} s "
                f"({self.minutes:g} min); fix 'duration_s' or 'minutes'"
            )
        shortest = min(c.duration_s for c in self.clips)
        if len(self.clips) > 1 and self.crossfade_s > shortest / 2:
            raise PlanError(f"crossfade_s {self.crossfade_s:g} is longer than half the shortest clip ({shortest:g} s)")
        order = {p: i for i, p in enumerate(PHASES)}
        last_phase = 0
        for i, c in enumerate(self.clips):
            where = f"plan clip {c.index}"
            if c.index != i + 1:
                raise PlanError(f"plan clip {i + 1}: index is {c.index}, expected {i + 1}")
            if order[c.phase] < last_phase:
                raise PlanError(f"{where}: phase {c.phase!r} comes after a later phase (order: {', '.join(PHASES)})")
            last_phase = order[c.phase]
            if not (TEMPO_RANGE[0] <= c.tempo <= TEMPO_RANGE[1]) or math.isnan(c.tempo):
                raise PlanError(f"{where}: tempo {c.tempo:g} BPM outside {TEMPO_RANGE[0]:g}..{TEMPO_RANGE[1]:g}")
            if not (LOUDNESS_RANGE_DB[0] <= c.loudness_db <= LOUDNESS_RANGE_DB[1]) or math.isnan(c.loudness_db):
                raise PlanError(
                    f"{where}: loudness {c.loudness_db:g} dB outside {LOUDNESS_RANGE_DB[0]:g}..{LOUDNESS_RANGE_DB[1]:g}"
                )
            if i == 0:
                continue
            p = self.clips[i - 1]
            step = abs(c.tempo / p.tempo - 1.0)
            if step > self.max_tempo_step + 1e-9:
                raise PlanError(
                    f"{where}: tempo {p.tempo:.1f} -> {c.tempo:.1f} BPM is a {100 * step:.1f}% step "
                    f"(at most {100 * self.max_tempo_step:g}% between clips)"
                )
            if not keys_related(p.key, c.key):
                raise PlanError(
                    f"{where}: key {p.key_name} -> {c.key_name} is not a related key "
                    "(use the same key, the relative major/minor, or a fifth up or down)"
                )
            ls = abs(c.loudness_db - p.loudness_db)
            if ls > self.max_loudness_step + 1e-9:
                raise PlanError(
                    f"{where}: loudness {p.loudness_db:.1f} -> {c.loudness_db:.1f} dB is a {ls:.1f} dB jump "
                    f"(at most {self.max_loudness_step:g} dB between clips)"
                )
        return self

    def summary_rows(self) -> list[str]:
        rows = []
        for c in self.clips:
            rows.append(
                f"{c.index:3d}  {_mmss(c.start_s)}  {c.phase:<10s} v {c.emotion.valence:+.2f} a {c.emotion.arousal:+.2f}  "
                f"{c.tempo:6.1f} BPM  {c.key_name:<9s} {c.loudness_db:6.1f} dB"
            )
        return rows


# --------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or value is None:
        raise PlanError(f"{name} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise PlanError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(x) or math.isinf(x):
        raise PlanError(f"{name} must be a finite number, got {value!r}")
    return x


def _int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise PlanError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _emotion_field(value: object, where: str) -> Emotion:
    try:
        if isinstance(value, dict):
            return Emotion.from_dict(value)
        if isinstance(value, (str, Emotion)):
            return parse_emotion(value)
    except EmomusicError as exc:
        raise PlanError(f"{where}: {exc}") from None
    raise PlanError(f"{where}: an emotion is {{\"valence\": V, \"arousal\": A}} or a mood word, got {value!r}")


def _check_session_size(minutes: float, clip_seconds: float) -> None:
    if minutes is None or not isinstance(minutes, (int, float)) or math.isnan(minutes) or minutes <= 0:
        raise PlanError(f"minutes must be > 0, got {minutes}")
    if minutes > 180:
        raise PlanError(f"minutes must be at most 180 (3 hours), got {minutes:g}")
    if clip_seconds is None or math.isnan(clip_seconds) or clip_seconds <= 0:
        raise PlanError(f"clip seconds must be > 0, got {clip_seconds}")
    if clip_seconds > minutes * 60 + SECONDS_EPS:
        raise PlanError(f"clips of {clip_seconds:g} s are longer than the {minutes * 60:g} s session; use shorter clips or more minutes")
    if clip_seconds < 2:
        raise PlanError(f"clip seconds must be at least 2, got {clip_seconds:g}")


def _clip_seed(seed: int, index: int) -> int:
    return int(seed) * 1000 + index


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


def _phase_counts(n: int, clip_seconds: float, match_minutes: float, settle_minutes: float, strategy: str) -> tuple[int, int, int]:
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


def _smoothstep(t: float) -> float:
    return t * t * (3.0 - 2.0 * t)


def _leg_point(a: Emotion, b: Emotion, t: float, path: str) -> Emotion:
    """Position ``t`` in [0, 1] along one leg a -> b of the path."""
    t = min(1.0, max(0.0, t))
    if path == "linear":
        return a.lerp(b, t)
    if path == "eased":
        return a.lerp(b, _smoothstep(t))
    # axis-first paths: first half moves one axis (eased), second half the other
    s1 = _smoothstep(min(1.0, 2.0 * t))
    s2 = _smoothstep(max(0.0, 2.0 * t - 1.0))
    if path == "arousal-first":
        return Emotion(a.valence + (b.valence - a.valence) * s2, a.arousal + (b.arousal - a.arousal) * s1)
    return Emotion(a.valence + (b.valence - a.valence) * s1, a.arousal + (b.arousal - a.arousal) * s2)


def _transition_points(points: Sequence[Emotion], m: int, path: str) -> list[tuple[Emotion, float]]:
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
            out.append((_leg_point(a, b, t, path), (done + j + 1) / (m + 1)))
        done += k
    return out


def emotion_tempo(emotion: Emotion) -> float:
    from emomusic.attributes import template

    return float(min(TEMPO_RANGE[1], max(TEMPO_RANGE[0], template(emotion).tempo_bpm)))


def emotion_loudness(emotion: Emotion) -> float:
    """Target loudness in dB: the template velocity as a level relative to -20 dB at velocity 72."""
    from emomusic.attributes import template

    vel = max(1.0, template(emotion).velocity)
    db = REFERENCE_LOUDNESS_DB + 20.0 * math.log10(vel / REFERENCE_VELOCITY)
    return float(min(LOUDNESS_RANGE_DB[1], max(LOUDNESS_RANGE_DB[0], db)))


def _limit_steps(values: list[float], step: float, ratio: bool, fixed: int = 1) -> list[float]:
    """Follow ``values`` closely while each step stays within ``step`` (a ratio for tempo,
    an absolute amount for loudness). A forward pass from the first value; then a backward
    pass over the clips after the first ``fixed`` ones lets a change that is too big for the
    bound start earlier, so the target is reached in time; a last forward pass restores the
    bound. The first ``fixed`` values (the matching phase) are kept as they are when possible."""

    def clamp(v: float, ref: float) -> float:
        lo, hi = (ref / (1.0 + step), ref * (1.0 + step)) if ratio else (ref - step, ref + step)
        return min(hi, max(lo, v))

    out = [values[0]]
    for v in values[1:]:
        out.append(clamp(v, out[-1]))
    for i in range(len(out) - 2, max(0, fixed) - 1, -1):
        out[i] = clamp(out[i], out[i + 1])
    for i in range(1, len(out)):
        out[i] = clamp(out[i], out[i - 1])
    return out


def _plan_keys(emotions: Sequence[Emotion], tonic: int | None) -> list[KeySignature]:
    """One home key pair (a major key and its relative minor); the mode follows valence.

    The mode switches only where valence changes sign (with a small dead band so a path
    hovering at 0 does not flip back and forth); the two keys share one key signature."""
    from emomusic.attributes import template

    major_tonic = template(Emotion(0.5, 0.0)).key_tonic if tonic is None else tonic
    major = KeySignature(major_tonic % 12, "major")
    minor = relative_key(major)
    keys = []
    mode = "major" if emotions[0].valence >= 0 else "minor"
    for e in emotions:
        if mode == "major" and e.valence < -0.05:
            mode = "minor"
        elif mode == "minor" and e.valence > 0.05:
            mode = "major"
        keys.append(major if mode == "major" else minor)
    return keys


def clip_title(c: Waypoint) -> str:
    try:
        from emomusic.moods import nearest_moods

        word = nearest_moods(c.emotion, 1)[0].word
    except Exception:  # the mood table is optional for titles
        word = c.emotion.quadrant
    return f"{c.index:02d} {c.phase} - {word} ({c.tempo:.0f} BPM, {c.key_name})"


def _fill_steps(values: list[float], fill: list[bool], step: float, ratio: bool) -> list[float]:
    """Values of the ``fill`` positions moved (as little as possible) so each step to the
    previous and the next clip stays within ``step``; fixed positions are kept."""
    out = list(values)

    def clamp(v: float, ref: float) -> float:
        lo, hi = (ref / (1.0 + step), ref * (1.0 + step)) if ratio else (ref - step, ref + step)
        return min(hi, max(lo, v))

    for _ in range(len(out) + 1):
        before = list(out)
        for i in range(1, len(out)):
            if fill[i]:
                out[i] = clamp(out[i], out[i - 1])
        for i in range(len(out) - 2, -1, -1):
            if fill[i]:
                out[i] = clamp(out[i], out[i + 1])
        if out == before:
            break
    return out


def _fill_attributes(plan: SessionPlan, needs: list[tuple[bool, bool, bool]]) -> None:
    """Derive missing tempo / key / loudness of an edited plan from its clips' emotions."""
    emos = [c.emotion for c in plan.clips]
    if any(n[0] for n in needs):
        desired = [emotion_tempo(e) if n[0] else c.tempo for e, n, c in zip(emos, needs, plan.clips)]
        tempos = _fill_steps(desired, [n[0] for n in needs], plan.max_tempo_step * 0.999, ratio=True)
        for c, n, t in zip(plan.clips, needs, tempos):
            if n[0]:
                c.tempo = t
    if any(n[1] for n in needs):
        given = [c.key for c, n in zip(plan.clips, needs) if not n[1]]
        home = given[0] if given else None
        tonic = None if home is None else (home.tonic if home.mode == "major" else relative_key(home).tonic)
        keys = _plan_keys(emos, tonic)
        for c, n, k in zip(plan.clips, needs, keys):
            if n[1]:
                c.key = k
    if any(n[2] for n in needs):
        desired = [emotion_loudness(e) if n[2] else c.loudness_db for e, n, c in zip(emos, needs, plan.clips)]
        louds = _fill_steps(desired, [n[2] for n in needs], plan.max_loudness_step * 0.999, ratio=False)
        for c, n, v in zip(plan.clips, needs, louds):
            if n[2]:
                c.loudness_db = v


def plan_session(
    start: Emotion | str,
    target: Emotion | str,
    minutes: float = 15,
    clip_seconds: float = 30,
    match_minutes: float = 2.0,
    settle_minutes: float = 2.0,
    path: str = "eased",
    strategy: str = "iso",
    heart_rate: float | None = None,
    seed: int = 0,
    via: Sequence[Emotion | str] = (),
    tonic: int | str | None = None,
    crossfade_s: float | None = None,
    max_tempo_step: float = DEFAULT_MAX_TEMPO_STEP,
    max_loudness_step: float = DEFAULT_MAX_LOUDNESS_STEP,
    name: str = "",
    description: str = "",
) -> SessionPlan:
    """Plan a session from ``start`` to ``target`` (see the module doc for the rules).

    ``heart_rate`` (BPM) sets the opening tempo (meet the listener's pulse); the offset from
    the mood's own tempo then fades out along the journey, in steps of at most 8 %.
    ``via``: intermediate emotions the path passes through (e.g. a MUSIC CARE U-sequence).
    ``tonic``: the home major key (the relative minor is used for negative valence).
    ``crossfade_s``: seconds each join overlaps (default min(2, clip/5)).
    """
    start_e = _emotion_field(start, "start")
    target_e = _emotion_field(target, "target")
    via_e = [_emotion_field(v, "via") for v in via]
    if path not in PATHS:
        raise PlanError(f"path must be one of {', '.join(PATHS)}, got {path!r}")
    if strategy not in STRATEGIES:
        raise PlanError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    minutes = _number(minutes, "minutes")
    clip_seconds = _number(clip_seconds, "clip seconds")
    _check_session_size(minutes, clip_seconds)
    for nm, val in (("match minutes", match_minutes), ("settle minutes", settle_minutes)):
        if _number(val, nm) < 0:
            raise PlanError(f"{nm} must be >= 0, got {val}")
    if heart_rate is not None:
        heart_rate = _number(heart_rate, "heart rate")
        if not (TEMPO_RANGE[0] <= heart_rate <= TEMPO_RANGE[1]):
            raise PlanError(f"heart rate must be {TEMPO_RANGE[0]:g}..{TEMPO_RANGE[1]:g} BPM, got {heart_rate:g}")
    home_tonic = None if tonic is None else parse_tonic(tonic)

    total = round(minutes * 60.0, 6)
    durs = clip_durations(total, clip_seconds)
    n = len(durs)
    if crossfade_s is None:
        crossfade_s = min(2.0, clip_seconds / 5.0) if n > 1 else 0.0
    crossfade_s = _number(crossfade_s, "crossfade seconds")
    if crossfade_s < 0 or (n > 1 and crossfade_s > min(durs) / 2):
        raise PlanError(f"crossfade must be between 0 and half the shortest clip ({min(durs) / 2:g} s), got {crossfade_s:g}")

    # -- emotions and phases ------------------------------------------------------------
    if strategy == "compensatory":
        # Target-mood music from the start; no matching phase. The last clips are "settling".
        s = min(n - 1, int(round(settle_minutes * 60 / clip_seconds))) if n > 1 else 0
        phases = ["transition"] * (n - s) + ["settling"] * s
        emotions = [target_e] * n
        progress = [min(1.0, (i + 1) / max(1, n - s)) for i in range(n)]
    else:
        m, t, s = _phase_counts(n, clip_seconds, match_minutes, settle_minutes, strategy)
        if start_e.distance(target_e) < 1e-9 and not via_e:
            pts = [(start_e, (j + 1) / (t + 1)) for j in range(t)]
        else:
            pts = _transition_points([start_e, *via_e, target_e], t, path)
        phases = ["matching"] * m + ["transition"] * t + ["settling"] * s
        emotions = [start_e] * m + [p for p, _ in pts] + [target_e] * s
        progress = [0.0] * m + [q for _, q in pts] + [1.0] * s
    # keep the user's labels on the end points
    emotions = [
        e if (e.label or not (e.distance(start_e) < 1e-9 or e.distance(target_e) < 1e-9))
        else (start_e if e.distance(start_e) < 1e-9 else target_e)
        for e in emotions
    ]

    # -- tempo: the mood's tempo, offset toward the heart rate at the start ---------------
    own = [emotion_tempo(e) for e in emotions]
    if heart_rate is not None:
        offset = math.log(heart_rate / own[0])
        desired = [tp * math.exp(offset * (1.0 - _smoothstep(p))) for tp, p in zip(own, progress)]
        desired[0] = heart_rate
    else:
        desired = own
    step = min(DEFAULT_TEMPO_STEP_MARGIN, max_tempo_step)
    fixed = max(1, phases.count("matching"))
    tempos = _limit_steps(desired, step, ratio=True, fixed=fixed)
    tempos = [round(x, 2) for x in tempos]
    # rounding must not break the bound
    for i in range(1, n):
        lo, hi = tempos[i - 1] / (1 + max_tempo_step), tempos[i - 1] * (1 + max_tempo_step)
        tempos[i] = min(hi, max(lo, tempos[i]))

    # -- loudness and keys --------------------------------------------------------------
    louds = _limit_steps([emotion_loudness(e) for e in emotions], 0.8 * max_loudness_step, ratio=False, fixed=fixed)
    keys = _plan_keys(emotions, home_tonic)

    clips: list[Waypoint] = []
    t0 = 0.0
    for i in range(n):
        w = Waypoint(
            index=i + 1,
            phase=phases[i],
            start_s=round(t0, 6),
            duration_s=durs[i],
            emotion=emotions[i],
            tempo=float(tempos[i]),
            key=keys[i],
            loudness_db=round(louds[i], 3),
            seed=_clip_seed(seed, i + 1),
        )
        w.title = clip_title(w)
        clips.append(w)
        t0 += durs[i]
    plan = SessionPlan(
        start=start_e,
        target=target_e,
        via=via_e,
        minutes=minutes,
        clip_seconds=clip_seconds,
        clips=clips,
        strategy=strategy,
        path=path,
        heart_rate=heart_rate,
        seed=int(seed),
        crossfade_s=float(crossfade_s),
        max_tempo_step=float(max_tempo_step),
        max_loudness_step=float(max_loudness_step),
        name=name,
        description=description,
    )
    return plan.validate()


def _mmss(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60:02d}:{s % 60:02d}"


def mmss(seconds: float) -> str:
    return _mmss(seconds)


def replace_clip(plan: SessionPlan, index: int, **changes) -> SessionPlan:
    """A copy of ``plan`` with clip ``index`` (1-based) changed, validated."""
    d = plan.to_dict()
    c = d["clips"][index - 1]
    for k, v in changes.items():
        if k == "emotion" and isinstance(v, Emotion):
            v = v.to_dict()
        if k == "key" and isinstance(v, KeySignature):
            v = key_to_dict(v)
        c[k] = v
    return SessionPlan.from_dict(d)


__all__ = [
    "PATHS",
    "PHASES",
    "STRATEGIES",
    "PlanError",
    "SessionPlan",
    "Waypoint",
    "clip_durations",
    "keys_related",
    "plan_session",
    "relative_key",
    "replace_clip",
]
