"""The step rule on its own, and through plans: one limit, used by the planner, the filler
of edited plans and validate alike."""

from __future__ import annotations

import math

import pytest

from emomusic.session import TEMPO_STEP, PlanError, PlanSettings, SessionPlan, StepRule, plan_session
from emomusic.session.schedule import LOUDNESS_STEP


def test_step_rule_measures_clamps_and_names_violations():
    rule = StepRule("tempo", limit=0.10, relative=True, max_limit=0.25)
    assert rule.step(100, 110) == pytest.approx(0.10)
    assert rule.step(110, 100) == pytest.approx(1 / 11)
    assert rule.clamp(130, 100) == pytest.approx(110) and rule.clamp(80, 100) == pytest.approx(100 / 1.1)
    assert rule.clamp(105, 100) == 105
    assert rule.violation(100, 109, "clip 2") is None
    msg = rule.violation(100, 112, "clip 2")
    assert msg.startswith("clip 2: tempo 100.0 -> 112.0 BPM is a 12.0% step") and "10%" in msg
    loud = StepRule("loudness", limit=1.5, relative=False, max_limit=6, unit=" dB")
    assert loud.clamp(-10, -20) == -18.5 and loud.step(-20, -18) == 2
    assert "2.0 dB jump" in loud.violation(-20, -18, "c")
    assert loud.meeting_point(-20, -18) == -19 and rule.meeting_point(100, 121) == pytest.approx(110)


def test_follow_keeps_each_step_and_reaches_the_target_in_time():
    rule = StepRule("tempo", limit=0.10, relative=True, max_limit=0.25, planning_cap=0.08)
    desired = [60.0] * 3 + [120.0] * 12
    out = rule.follow(desired, fixed=3)
    assert all(rule.step(a, b) <= rule.plan_step + 1e-12 for a, b in zip(out, out[1:]))
    assert out[:3] == [60.0] * 3  # the matching phase stays where it is
    assert out[-1] == pytest.approx(120.0)  # the change started early enough


def test_fill_moves_only_free_positions_within_the_rule():
    rule = StepRule("loudness", limit=1.0, relative=False, max_limit=6)
    values = [-20.0, -10.0, -20.0, -21.0]
    out = rule.fill(values, [False, True, False, False])
    assert out[0] == -20.0 and out[2:] == [-20.0, -21.0]
    assert abs(out[1] - out[0]) <= rule.fill_step + 1e-12 and abs(out[2] - out[1]) <= rule.fill_step + 1e-12


def test_limit_range_is_checked():
    with pytest.raises(PlanError, match="max_tempo_step must be in"):
        TEMPO_STEP.with_limit(0.3).check_limit()
    with pytest.raises(PlanError, match="max_loudness_step"):
        plan_session("anxious", "calm", max_loudness_step=0)


@pytest.mark.parametrize("limit", [0.10, 0.04])
def test_changing_the_limit_is_one_setting(limit):
    """The same journey planned with two tempo-step limits: every step keeps its own limit,
    the tighter one gives smaller steps, and validate judges an edit by the plan's limit."""
    plan = plan_session("-0.8,0.9", "0.6,-0.8", PlanSettings(minutes=5, clip_seconds=15, max_tempo_step=limit))
    steps = plan.tempo_steps()
    assert max(steps) <= limit + 1e-9 and plan.max_tempo_step == limit
    assert max(steps) > 0.5 * min(limit, TEMPO_STEP.planning_cap)  # the journey does use the room
    d = _with_step(plan.to_dict(), 6, 1.07)  # a 7 % edit
    if limit < 0.07:
        with pytest.raises(PlanError, match="plan clip 7: tempo"):
            SessionPlan.from_dict(d)
    else:
        SessionPlan.from_dict(d)


def _with_step(d: dict, k: int, factor: float) -> dict:
    """The plan dict with the tempo step into clip ``k`` (0-based) set to ``factor``; the
    clips after it move along, so every other step stays as planned."""
    ratio = d["clips"][k - 1]["tempo"] * factor / d["clips"][k]["tempo"]
    for c in d["clips"][k:]:
        c["tempo"] *= ratio
    return d


def _edit_tempo(factor: float) -> dict:
    return _with_step(plan_session("anxious", "calm", minutes=5, clip_seconds=30).to_dict(), 5, factor)


@pytest.mark.parametrize("factor", [1.12, 1.15, 1 / 1.12, 1 / 1.15])
def test_tempo_edits_beyond_the_default_limit_are_refused(factor):
    with pytest.raises(PlanError, match=r"plan clip 6: tempo .* step \(at most 10% between clips\)") as err:
        SessionPlan.from_dict(_edit_tempo(factor))
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("factor", [1.09, 1 / 1.09])
def test_tempo_edit_within_the_default_limit_is_accepted(factor):
    plan = SessionPlan.from_dict(_edit_tempo(factor))
    assert plan.clips[5].tempo == pytest.approx(plan.clips[4].tempo * factor, rel=1e-3)
    assert max(plan.tempo_steps()) <= TEMPO_STEP.limit + 1e-9


def test_default_rules_are_what_plans_carry():
    plan = plan_session("anxious", "calm", minutes=2, clip_seconds=20)
    assert plan.max_tempo_step == TEMPO_STEP.limit == PlanSettings().max_tempo_step
    assert plan.max_loudness_step == LOUDNESS_STEP.limit == PlanSettings().max_loudness_step
    assert math.isclose(TEMPO_STEP.plan_step, 0.08) and math.isclose(LOUDNESS_STEP.plan_step, 1.2)


def test_ramp_inside_a_clip_stays_within_the_rule():
    """The builder's tempo ramp meets each neighbour half-way: no step, inside a clip or at a
    join, is larger than the planned step between the clips."""
    from emomusic.piece import Note, Piece, Tempo, Track
    from emomusic.session.clips import ramp_tempo

    plan = plan_session("-0.8,0.9", "0.6,-0.8", minutes=3, clip_seconds=10)
    piece = Piece(tracks=[Track("t", 0, False, [Note(60, 0.0, 1.0, 80)])], tempos=[Tempo(100.0)])
    ends = []
    for i, w in enumerate(plan.clips):
        before = plan.clips[i - 1].tempo if i else None
        after = plan.clips[i + 1].tempo if i < len(plan.clips) - 1 else None
        tempos = [t.bpm for t in ramp_tempo(piece, w.tempo, before, after, w.duration_s, plan).tempos]
        assert min(tempos) >= min(w.tempo, before or w.tempo, after or w.tempo) / (1 + 1e-3)
        assert max(tempos) <= max(w.tempo, before or w.tempo, after or w.tempo) * (1 + 1e-3)
        ends.append((tempos[0], tempos[-1]))
    for (_, out_a), (in_b, _) in zip(ends, ends[1:]):
        assert in_b == pytest.approx(out_a, rel=1e-3)  # neighbours meet at the same tempo


# -- hand-computed values (mutation testing found these rules unchecked) ----------------------------

def test_follow_fill_and_enforce_by_hand():
    from emomusic.session.schedule import LOUDNESS_STEP, TEMPO_STEP

    loud = LOUDNESS_STEP  # absolute steps; plan step min(1.5 * 0.8, inf) = 1.2 dB
    assert loud.plan_step == pytest.approx(1.2) and loud.fill_step == pytest.approx(1.5 * 0.999)
    # forward from the first value in steps of at most 1.2 dB; values already within reach stay
    assert loud.follow([0.0, 3.0, 3.0], fixed=1) == pytest.approx([0.0, 1.2, 2.4])
    assert loud.follow([-16.0, -16.5, -17.0], fixed=1) == pytest.approx([-16.0, -16.5, -17.0])
    assert loud.enforce([0.0, 5.0, 5.0, -5.0]) == pytest.approx([0.0, 1.5, 3.0, 1.5])
    # fill moves only the free values, as little as possible, within 1.4985 dB of both neighbours
    filled = loud.fill([0.0, 9.0, 2.0], [False, True, False])
    assert filled[0] == 0.0 and filled[2] == 2.0 and filled[1] == pytest.approx(1.4985)
    tempo = TEMPO_STEP  # relative; plan step min(0.10, 0.08) = 8 %
    assert tempo.plan_step == pytest.approx(0.08)
    assert tempo.follow([100.0, 200.0], fixed=0) == pytest.approx([100.0, 108.0])
    assert tempo.clamp(50.0, 100.0) == pytest.approx(100 / 1.1) and tempo.clamp(104.0, 100.0) == 104.0
    assert tempo.violation(100.0, 110.0, "x") is None
    assert tempo.violation(100.0, 111.0, "clip 2") == "clip 2: tempo 100.0 -> 111.0 BPM is a 11.0% step (at most 10% between clips)"
    assert loud.violation(-20.0, -18.0, "clip 3") == "clip 3: loudness -20.0 -> -18.0 dB is a 2.0 dB jump (at most 1.5 dB between clips)"
    with pytest.raises(PlanError, match=r"max_tempo_step must be in \(0, 0.25\], got 0.3"):
        tempo.with_limit(0.3).check_limit()
    tempo.with_limit(0.25).check_limit()  # the largest allowed limit is allowed


def test_check_size_boundaries_and_durations_by_hand():
    from emomusic.session.schedule import MAX_MINUTES, check_size, clip_durations, default_crossfade

    check_size(MAX_MINUTES, 30)  # at most 3 hours: exactly 3 hours is fine
    with pytest.raises(PlanError, match="at most 180 \\(3 hours\\), got 180.5"):
        check_size(MAX_MINUTES + 0.5, 30)
    check_size(1, 60)  # a clip as long as the session
    with pytest.raises(PlanError, match="longer than the 60 s session"):
        check_size(1, 60.5)
    check_size(1, 2.0)  # the shortest clip
    with pytest.raises(PlanError, match="at least 2, got 1.5"):
        check_size(1, 1.5)
    for bad in (0, -1, float("nan"), None):
        with pytest.raises(PlanError, match="minutes must be > 0"):
            check_size(bad, 30)
    with pytest.raises(PlanError, match="clip seconds must be > 0"):
        check_size(1, 0)
    # 100 s in clips of 30: 30, 30, 30 and a 10 s rest (10 >= 0.25 * 30: kept)
    assert clip_durations(100, 30) == [30, 30, 30, 10]
    # 95 s: the 5 s rest is under a quarter of a clip, so it joins the last clip
    assert clip_durations(95, 30) == [30, 30, 35]
    assert clip_durations(90, 30) == [30, 30, 30] and clip_durations(20, 30) == [20]
    assert sum(clip_durations(900.0, 7.0)) == pytest.approx(900.0)
    assert default_crossfade(30, 5) == 2.0 and default_crossfade(5, 5) == 1.0 and default_crossfade(30, 1) == 0.0
