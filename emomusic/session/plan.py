"""A session plan as data: :class:`Waypoint` per clip, :class:`SessionPlan`, and their JSON.

A plan round-trips through JSON (``to_json`` / ``from_json``) so a therapist can edit it
(move a waypoint, change a tempo) and build the edited plan. Loading validates every rule
(:meth:`SessionPlan.validate`) and names the first clip that breaks one:

* tempo and loudness change by at most the plan's step rules (:mod:`emomusic.session.schedule`);
* keys are related: the same key, the relative major/minor, or a fifth up/down in the same mode;
* phases come in order, durations sum to the session length, values are in range.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from emomusic.emotion import Emotion
from emomusic.piece import KeySignature
from emomusic.session.checks import PlanError, emotion_field, number, seed_value
from emomusic.session.keys import home_tonic, key_from_dict, key_name, key_to_dict, keys_related, plan_keys
from emomusic.session.path import PATHS, PHASES, STRATEGIES
from emomusic.session.schedule import (
    LOUDNESS_RANGE_DB,
    LOUDNESS_STEP,
    TEMPO_RANGE,
    TEMPO_STEP,
    StepRule,
    check_size,
    clip_seed,
    emotion_loudness,
    emotion_tempo,
)

PLAN_VERSION = 1


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
        return key_name(self.key)

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

    @classmethod
    def from_dict(cls, c: object, i: int, start_s: float, clip_seconds: float, plan_seed: int) -> "Waypoint":
        """Clip ``i`` of an (edited) plan; a missing tempo / loudness is NaN and a missing key
        C major until :func:`fill_missing` derives them."""
        where = f"plan clip {i}"
        if not isinstance(c, dict):
            raise PlanError(f"{where}: must be a JSON object")
        if "emotion" not in c:
            raise PlanError(f"{where}: lacks 'emotion'")
        emo = emotion_field(c["emotion"], where)
        phase = c.get("phase", "transition")
        if phase not in PHASES:
            raise PlanError(f"{where}: phase must be one of {', '.join(PHASES)}, got {phase!r}")
        dur = number(c.get("duration_s", clip_seconds), f"{where} duration_s")
        if dur <= 0:
            raise PlanError(f"{where}: duration_s must be > 0, got {dur:g}")
        tempo, key, loud = c.get("tempo"), c.get("key"), c.get("loudness_db")
        return cls(
            index=i,
            phase=phase,
            start_s=start_s,
            duration_s=dur,
            emotion=emo,
            tempo=number(tempo, f"{where} tempo") if tempo is not None else float("nan"),
            key=key_from_dict(key) if key is not None else KeySignature(0, "major"),
            loudness_db=number(loud, f"{where} loudness_db") if loud is not None else float("nan"),
            seed=seed_value(c.get("seed", clip_seed(plan_seed, i)), f"{where} seed"),
            title=str(c.get("title", "")),
        )


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
    max_tempo_step: float = TEMPO_STEP.limit
    max_loudness_step: float = LOUDNESS_STEP.limit
    name: str = ""
    description: str = ""

    # -- views -------------------------------------------------------------------------
    @property
    def total_seconds(self) -> float:
        return round(float(self.minutes) * 60.0, 6)

    @property
    def tempo_rule(self) -> StepRule:
        return TEMPO_STEP.with_limit(self.max_tempo_step)

    @property
    def loudness_rule(self) -> StepRule:
        return LOUDNESS_STEP.with_limit(self.max_loudness_step)

    def __len__(self) -> int:
        return len(self.clips)

    def phase_counts(self) -> dict[str, int]:
        out = {p: 0 for p in PHASES}
        for c in self.clips:
            out[c.phase] += 1
        return out

    def tempo_steps(self) -> list[float]:
        """Relative tempo change between consecutive clips (|t2/t1 - 1|)."""
        return [self.tempo_rule.step(a.tempo, b.tempo) for a, b in zip(self.clips, self.clips[1:])]

    def loudness_steps(self) -> list[float]:
        return [self.loudness_rule.step(a.loudness_db, b.loudness_db) for a, b in zip(self.clips, self.clips[1:])]

    def summary_rows(self) -> list[str]:
        return [
            f"{c.index:3d}  {mmss(c.start_s)}  {c.phase:<10s} v {c.emotion.valence:+.2f} a {c.emotion.arousal:+.2f}  "
            f"{c.tempo:6.1f} BPM  {c.key_name:<9s} {c.loudness_db:6.1f} dB"
            for c in self.clips
        ]

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
        minutes = number(d["minutes"], "minutes")
        clip_seconds = number(d["clip_seconds"], "clip_seconds")
        seed = seed_value(d.get("seed", 0), "plan seed")
        clips: list[Waypoint] = []
        t = 0.0
        for i, c in enumerate(raw_clips, start=1):
            clips.append(Waypoint.from_dict(c, i, t, clip_seconds, seed))
            t += clips[-1].duration_s
        plan = cls(
            start=emotion_field(d["start"], "plan start"),
            target=emotion_field(d["target"], "plan target"),
            via=[emotion_field(v, "plan via") for v in d.get("via") or []],
            minutes=minutes,
            clip_seconds=clip_seconds,
            clips=clips,
            strategy=str(d.get("strategy", "iso")),
            path=str(d.get("path", "eased")),
            heart_rate=None if d.get("heart_rate") is None else number(d["heart_rate"], "heart_rate"),
            seed=seed,
            crossfade_s=number(d.get("crossfade_s", 2.0), "crossfade_s"),
            max_tempo_step=number(d.get("max_tempo_step", TEMPO_STEP.limit), "max_tempo_step"),
            max_loudness_step=number(d.get("max_loudness_step", LOUDNESS_STEP.limit), "max_loudness_step"),
            name=str(d.get("name", "")),
            description=str(d.get("description", "")),
        )
        fill_missing(plan, [(c.get("tempo") is None, c.get("key") is None, c.get("loudness_db") is None)
                            for c in raw_clips])
        for c in plan.clips:
            if not c.title:
                c.title = clip_title(c)
        return plan.validate() if validate else plan

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
        self._validate_session()
        order = {p: i for i, p in enumerate(PHASES)}
        tempo, loud = self.tempo_rule, self.loudness_rule
        last_phase = 0
        for i, c in enumerate(self.clips):
            where = f"plan clip {c.index}"
            if c.index != i + 1:
                raise PlanError(f"plan clip {i + 1}: index is {c.index}, expected {i + 1}")
            if order[c.phase] < last_phase:
                raise PlanError(f"{where}: phase {c.phase!r} comes after a later phase (order: {', '.join(PHASES)})")
            last_phase = order[c.phase]
            _check_ranges(c, where)
            if i == 0:
                continue
            p = self.clips[i - 1]
            problem = tempo.violation(p.tempo, c.tempo, where)
            if problem is None and not keys_related(p.key, c.key):
                problem = (f"{where}: key {p.key_name} -> {c.key_name} is not a related key "
                           "(use the same key, the relative major/minor, or a fifth up or down)")
            problem = problem or loud.violation(p.loudness_db, c.loudness_db, where)
            if problem:
                raise PlanError(problem)
        return self

    def _validate_session(self) -> None:
        if self.strategy not in STRATEGIES:
            raise PlanError(f"strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.path not in PATHS:
            raise PlanError(f"path must be one of {', '.join(PATHS)}, got {self.path!r}")
        check_size(self.minutes, self.clip_seconds)
        self.tempo_rule.check_limit()
        self.loudness_rule.check_limit()
        seed_value(self.seed, "plan seed")
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


def _check_ranges(c: Waypoint, where: str) -> None:
    if not (TEMPO_RANGE[0] <= c.tempo <= TEMPO_RANGE[1]) or math.isnan(c.tempo):
        raise PlanError(f"{where}: tempo {c.tempo:g} BPM outside {TEMPO_RANGE[0]:g}..{TEMPO_RANGE[1]:g}")
    if not (LOUDNESS_RANGE_DB[0] <= c.loudness_db <= LOUDNESS_RANGE_DB[1]) or math.isnan(c.loudness_db):
        raise PlanError(f"{where}: loudness {c.loudness_db:g} dB outside {LOUDNESS_RANGE_DB[0]:g}..{LOUDNESS_RANGE_DB[1]:g}")
    seed_value(c.seed, f"{where} seed")


def fill_missing(plan: SessionPlan, needs: list[tuple[bool, bool, bool]]) -> None:
    """Derive missing tempo / key / loudness (flags per clip) of an edited plan from its
    clips' emotions, within the plan's step rules."""
    emos = [c.emotion for c in plan.clips]
    if any(n[0] for n in needs):
        desired = [emotion_tempo(e) if n[0] else c.tempo for e, n, c in zip(emos, needs, plan.clips)]
        for c, n, t in zip(plan.clips, needs, plan.tempo_rule.fill(desired, [n[0] for n in needs])):
            if n[0]:
                c.tempo = t
    if any(n[1] for n in needs):
        given = [c.key for c, n in zip(plan.clips, needs) if not n[1]]
        keys = plan_keys(emos, home_tonic(given[0]) if given else None)
        for c, n, k in zip(plan.clips, needs, keys):
            if n[1]:
                c.key = k
    if any(n[2] for n in needs):
        desired = [emotion_loudness(e) if n[2] else c.loudness_db for e, n, c in zip(emos, needs, plan.clips)]
        for c, n, v in zip(plan.clips, needs, plan.loudness_rule.fill(desired, [n[2] for n in needs])):
            if n[2]:
                c.loudness_db = v


def clip_title(c: Waypoint) -> str:
    try:
        from emomusic.moods import nearest_moods

        word = nearest_moods(c.emotion, 1)[0].word
    except Exception:  # the mood table is optional for titles
        word = c.emotion.quadrant
    return f"{c.index:02d} {c.phase} - {word} ({c.tempo:.0f} BPM, {c.key_name})"


def mmss(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60:02d}:{s % 60:02d}"


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
