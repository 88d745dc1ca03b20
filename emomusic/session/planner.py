"""The iso-principle session planner: one waypoint emotion per clip, with tempo, key and loudness.

:func:`plan_session` joins the planner's parts, each with one job:

* :mod:`~emomusic.session.path` - phases and waypoint emotions along the journey;
* :mod:`~emomusic.session.schedule` - clip lengths, tempi, loudness and the step rule;
* :mod:`~emomusic.session.keys` - the home key pair and related keys;
* :mod:`~emomusic.session.plan` - the plan as data, its JSON and its validation;
* :mod:`~emomusic.session.settings` - :class:`PlanSettings`, every default in one place.

``strategy="compensatory"`` plays music of the target mood from the first clip (the RCT in
docs/session.md found both strategies alike); tempo and loudness still move in small steps.
The names below are re-exported for callers of the former single-module planner.
"""

from __future__ import annotations

from emomusic.emotion import Emotion
from emomusic.session.checks import PlanError, emotion_field
from emomusic.session.keys import key_from_dict, key_to_dict, keys_related, parse_tonic, plan_keys, relative_key
from emomusic.session.path import PATHS, PHASES, STRATEGIES, journey
from emomusic.session.plan import SessionPlan, Waypoint, clip_title, mmss, replace_clip
from emomusic.session.schedule import (
    LOUDNESS_STEP,
    TEMPO_STEP,
    StepRule,
    clip_durations,
    clip_seed,
    emotion_loudness,
    emotion_tempo,
    plan_loudness,
    plan_tempos,
)
from emomusic.session.settings import PlanSettings


def plan_session(start: Emotion | str, target: Emotion | str, settings: PlanSettings | None = None,
                 **overrides) -> SessionPlan:
    """Plan a session from ``start`` to ``target``.

    ``settings`` (default :class:`PlanSettings`) with ``overrides`` applied (keywords named
    like its fields: ``plan_session("anxious", "calm", minutes=15, seed=3)``). ``heart_rate``
    (BPM) sets the opening tempo (meet the listener's pulse); the offset from the mood's own
    tempo then fades out along the journey. ``via``: emotions the path passes through (e.g.
    a MUSIC CARE U-sequence). ``tonic``: the home major key (the relative minor serves
    negative valence). ``crossfade_s``: seconds each join overlaps (default min(2, clip/5)).
    """
    s = (settings if settings is not None else PlanSettings()).replace(**overrides)
    start_e = emotion_field(start, "start")
    target_e = emotion_field(target, "target")
    s.validate()
    via_e = s.via_emotions()
    minutes, clip_seconds = float(s.minutes), float(s.clip_seconds)
    heart_rate = None if s.heart_rate is None else float(s.heart_rate)
    durs = s.durations()
    n = len(durs)
    tempo_rule = TEMPO_STEP.with_limit(s.max_tempo_step)
    loud_rule = LOUDNESS_STEP.with_limit(s.max_loudness_step)

    path = journey(start_e, target_e, via_e, n, clip_seconds, float(s.match_minutes), float(s.settle_minutes),
                   s.path, s.strategy)
    fixed = max(1, path.matching)
    tempos = plan_tempos(path.emotions, path.progress, heart_rate, tempo_rule, fixed)
    louds = plan_loudness(path.emotions, loud_rule, fixed)
    keys = plan_keys(path.emotions, None if s.tonic is None else parse_tonic(s.tonic))
    clips: list[Waypoint] = []
    t0 = 0.0
    for i in range(n):
        w = Waypoint(index=i + 1, phase=path.phases[i], start_s=round(t0, 6), duration_s=durs[i],
                     emotion=path.emotions[i], tempo=tempos[i], key=keys[i], loudness_db=louds[i],
                     seed=clip_seed(s.seed, i + 1))
        w.title = clip_title(w)
        clips.append(w)
        t0 += durs[i]
    plan = SessionPlan(
        start=start_e, target=target_e, via=via_e, minutes=minutes, clip_seconds=clip_seconds, clips=clips,
        strategy=s.strategy, path=s.path, heart_rate=heart_rate, seed=int(s.seed), crossfade_s=s.crossfade(),
        max_tempo_step=tempo_rule.limit, max_loudness_step=loud_rule.limit, name=s.name, description=s.description,
    )
    return plan.validate()


__all__ = [
    "LOUDNESS_STEP",
    "PATHS",
    "PHASES",
    "STRATEGIES",
    "TEMPO_STEP",
    "PlanError",
    "PlanSettings",
    "SessionPlan",
    "StepRule",
    "Waypoint",
    "clip_durations",
    "emotion_loudness",
    "emotion_tempo",
    "key_from_dict",
    "key_to_dict",
    "keys_related",
    "mmss",
    "plan_session",
    "relative_key",
    "replace_clip",
]
