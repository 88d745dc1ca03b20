"""Planner properties: durations, step bounds, keys, phases, paths, heart rate, JSON, errors."""

from __future__ import annotations

import json
import math

import pytest

from emomusic.emotion import Emotion, parse_emotion
from emomusic.errors import EmomusicError
from emomusic.piece import KeySignature
from emomusic.session.planner import (
    PlanError,
    SessionPlan,
    clip_durations,
    keys_related,
    plan_session,
    relative_key,
    replace_clip,
)

PAIRS = [
    ("anxious", "calm"),
    ("sad", "cheerful"),
    ("tired", "energetic"),
    ("angry", "calm"),
    ("calm", "excited"),
    ("0.9,0.9", "-0.9,-0.9"),
    ("-1,1", "1,-1"),
]


def _check_rules(plan: SessionPlan) -> None:
    assert math.isclose(sum(c.duration_s for c in plan.clips), plan.minutes * 60, abs_tol=1e-6)
    for a, b in zip(plan.clips, plan.clips[1:]):
        assert abs(b.tempo / a.tempo - 1) <= 0.10 + 1e-9, (a.index, a.tempo, b.tempo)
        assert keys_related(a.key, b.key), (a.index, a.key, b.key)
        assert abs(b.loudness_db - a.loudness_db) <= plan.max_loudness_step + 1e-9
        assert math.isclose(b.start_s, a.start_s + a.duration_s, abs_tol=1e-6)


@pytest.mark.parametrize("start,target", PAIRS)
@pytest.mark.parametrize("path", ["eased", "linear", "arousal-first", "valence-first"])
def test_step_bounds_and_end_points(start, target, path):
    plan = plan_session(start, target, path=path)
    _check_rules(plan)
    assert len(plan.clips) == 30
    s, t = parse_emotion(start), parse_emotion(target)
    assert plan.clips[0].emotion.distance(s) < 1e-9
    assert plan.clips[-1].emotion.distance(t) < 1e-9


@pytest.mark.parametrize(
    "minutes,clip,expected",
    [(15, 30, [30.0] * 30), (1, 10, [10.0] * 6), (1, 7, [7.0] * 8 + [4.0]), (1, 25, [25.0, 25.0, 10.0]), (1, 27, [27.0, 33.0]), (0.5, 30, [30.0])],
)
def test_durations_sum_exactly(minutes, clip, expected):
    assert clip_durations(minutes * 60, clip) == expected
    plan = plan_session("anxious", "calm", minutes=minutes, clip_seconds=clip)
    assert [c.duration_s for c in plan.clips] == expected
    assert math.isclose(sum(expected), minutes * 60)


def test_odd_lengths_sum_exactly():
    for minutes in (0.37, 2.5, 7.3, 13.9):
        for clip in (6, 11.5, 30):
            if clip > minutes * 60:
                continue
            plan = plan_session("sad", "happy", minutes=minutes, clip_seconds=clip)
            assert abs(sum(c.duration_s for c in plan.clips) - minutes * 60) < 1e-6
            assert min(c.duration_s for c in plan.clips) >= 0.25 * clip - 1e-9


def test_phases_present_and_ordered():
    plan = plan_session("anxious", "calm", minutes=15, clip_seconds=30, match_minutes=2, settle_minutes=3)
    phases = [c.phase for c in plan.clips]
    assert phases == ["matching"] * 4 + ["transition"] * 20 + ["settling"] * 6
    start, target = parse_emotion("anxious"), parse_emotion("calm")
    assert all(c.emotion.distance(start) < 1e-9 for c in plan.clips[:4])
    assert all(c.emotion.distance(target) < 1e-9 for c in plan.clips[-6:])
    # the transition moves monotonically toward the target
    d = [c.emotion.distance(target) for c in plan.clips]
    assert all(b <= a + 1e-9 for a, b in zip(d, d[1:]))
    # eased: small steps near the ends, bigger in the middle
    steps = [a.emotion.distance(b.emotion) for a, b in zip(plan.clips[3:24], plan.clips[4:25])]
    assert steps[0] < steps[len(steps) // 2] and steps[-1] < steps[len(steps) // 2]


def test_short_session_keeps_all_phases():
    plan = plan_session("anxious", "calm", minutes=1, clip_seconds=10)
    counts = plan.phase_counts()
    assert counts["matching"] >= 1 and counts["settling"] >= 1 and counts["transition"] >= 3


def test_arousal_first_differs_from_eased():
    eased = plan_session("angry", "calm")
    af = plan_session("angry", "calm", path="arousal-first")
    assert any(a.emotion.distance(b.emotion) > 0.1 for a, b in zip(eased.clips, af.clips))
    trans = [c for c in af.clips if c.phase == "transition"]
    first = trans[: len(trans) // 2]
    v0 = af.start.valence
    # first half: arousal moves a lot, valence hardly at all
    assert max(abs(c.emotion.valence - v0) for c in first) < 0.05
    assert abs(first[-1].emotion.arousal - af.start.arousal) > 0.5
    _check_rules(af)


def test_keys_follow_valence_and_stay_related():
    plan = plan_session("sad", "cheerful")
    assert plan.clips[0].key.mode == "minor" and plan.clips[-1].key.mode == "major"
    modes = [c.key.mode for c in plan.clips]
    assert sum(1 for a, b in zip(modes, modes[1:]) if a != b) == 1  # one switch, at the crossing
    assert relative_key(plan.clips[0].key) == plan.clips[-1].key
    fixed = plan_session("sad", "cheerful", tonic="D")
    assert fixed.clips[-1].key == KeySignature(2, "major") and fixed.clips[0].key == KeySignature(11, "minor")


def test_keys_related_rules():
    c, g, f, d = (KeySignature(t, "major") for t in (0, 7, 5, 2))
    am = KeySignature(9, "minor")
    assert keys_related(c, c) and keys_related(c, g) and keys_related(c, f) and keys_related(c, am)
    assert not keys_related(c, d)
    assert not keys_related(c, KeySignature(0, "minor"))


def test_heart_rate_sets_opening_tempo_and_drifts():
    plan = plan_session("anxious", "calm", heart_rate=92)
    assert plan.clips[0].tempo == pytest.approx(92)
    assert all(c.tempo == pytest.approx(92) for c in plan.clips if c.phase == "matching")
    assert plan.clips[-1].tempo < 80
    _check_rules(plan)
    # a fast heart rate far above the mood tempo still only changes in <= 10 % steps
    fast = plan_session("calm", "calm", heart_rate=150)
    _check_rules(fast)
    assert fast.clips[0].tempo == pytest.approx(150) and fast.clips[-1].tempo < 100


def test_start_equal_target_is_steady():
    plan = plan_session("calm", "calm", minutes=5, clip_seconds=20)
    e = parse_emotion("calm")
    assert all(c.emotion.distance(e) < 1e-9 for c in plan.clips)
    assert len({c.tempo for c in plan.clips}) == 1
    assert len({(c.key.tonic, c.key.mode) for c in plan.clips}) == 1


def test_compensatory_plays_target_mood_from_the_start():
    plan = plan_session("anxious", "calm", strategy="compensatory", heart_rate=100)
    t = parse_emotion("calm")
    assert all(c.emotion.distance(t) < 1e-9 for c in plan.clips)
    assert "matching" not in {c.phase for c in plan.clips}
    assert plan.clips[0].tempo == pytest.approx(100)
    _check_rules(plan)


def test_via_point_is_visited():
    via = Emotion(0.6, -0.75)
    plan = plan_session(Emotion(0.3, 0.3), Emotion(0.45, 0.05), minutes=20, via=[via])
    assert min(c.emotion.distance(via) for c in plan.clips) < 1e-6
    _check_rules(plan)


def test_json_round_trip():
    plan = plan_session("anxious", "calm", heart_rate=88, path="arousal-first", seed=5, name="x")
    text = plan.to_json()
    again = SessionPlan.from_json(text)
    assert again.to_dict() == plan.to_dict()
    assert json.loads(text)["clips"][0]["tempo"] == 88


def test_edited_plan_rebuilds_and_fills_derived_fields():
    plan = plan_session("anxious", "calm", minutes=3, clip_seconds=30)
    d = plan.to_dict()
    # move clip 4 and let the planner derive its tempo/key/loudness again
    d["clips"][3]["emotion"] = {"valence": 0.2, "arousal": -0.3}
    for k in ("tempo", "key", "loudness_db"):
        d["clips"][3].pop(k)
    edited = SessionPlan.from_dict(d)
    assert edited.clips[3].emotion.as_tuple() == (0.2, -0.3)
    assert edited.clips[3].key.mode == "major"
    assert not math.isnan(edited.clips[3].tempo)
    _check_rules(edited)
    changed = replace_clip(plan, 2, tempo=plan.clips[1].tempo * 1.01)
    assert changed.clips[1].tempo == pytest.approx(plan.clips[1].tempo * 1.01, rel=1e-3)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda d: d["clips"][5].update(tempo=d["clips"][4]["tempo"] * 1.3), "plan clip 6: tempo"),
        (lambda d: d["clips"][5].update(key={"tonic": "F#", "mode": "major"}), "plan clip 6: key"),
        (lambda d: d["clips"][5].update(loudness_db=d["clips"][4]["loudness_db"] + 5), "plan clip 6: loudness"),
        (lambda d: d["clips"][5].update(duration_s=40), "sum to"),
        (lambda d: d["clips"][2].update(phase="settling"), "phase"),
        (lambda d: d["clips"][2].update(emotion={"valence": 3, "arousal": 0}), "plan clip 3"),
        (lambda d: d.update(strategy="random"), "strategy"),
        (lambda d: d.pop("clips"), "lacks 'clips'"),
        (lambda d: d["clips"][0].update(seed="x"), "plan clip 1 seed"),
        (lambda d: d.update(minutes="long"), "minutes must be a number"),
    ],
)
def test_invalid_edits_are_named(edit, message):
    d = plan_session("anxious", "calm", minutes=5, clip_seconds=30).to_dict()
    edit(d)
    with pytest.raises(PlanError, match=message.replace("(", r"\(")) as err:
        SessionPlan.from_dict(d)
    assert "\n" not in str(err.value)


def test_not_json():
    with pytest.raises(PlanError, match="not valid JSON"):
        SessionPlan.from_json("{nope")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(start="anxous"), "unknown mood"),
        (dict(minutes=0), "minutes must be > 0"),
        (dict(minutes=-3), "minutes must be > 0"),
        (dict(clip_seconds=0), "clip seconds must be > 0"),
        (dict(minutes=1, clip_seconds=61), "longer than"),
        (dict(path="zigzag"), "path"),
        (dict(strategy="x"), "strategy"),
        (dict(heart_rate=20), "heart rate"),
        (dict(minutes=float("nan")), "minutes"),
    ],
)
def test_bad_input(kwargs, message):
    args = dict(start="anxious", target="calm")
    args.update(kwargs)
    with pytest.raises(EmomusicError, match=message) as err:
        plan_session(args.pop("start"), args.pop("target"), **args)
    assert "\n" not in str(err.value)


def test_seeds_deterministic_and_distinct():
    a = plan_session("anxious", "calm", seed=3)
    b = plan_session("anxious", "calm", seed=3)
    assert a.to_dict() == b.to_dict()
    seeds = [c.seed for c in a.clips]
    assert len(set(seeds)) == len(seeds)
    assert plan_session("anxious", "calm", seed=4).clips[0].seed != seeds[0]
