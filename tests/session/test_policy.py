"""The acceptance policy on its own: scores, acceptance, the pick, the seeds."""

from __future__ import annotations

import math

import pytest

from emomusic.emotion import Emotion
from emomusic.piece import Note, Piece, Tempo, Track
from emomusic.session import BuildSettings
from emomusic.session.policy import RETRY_SEED_STEP, AcceptancePolicy, Attempt, silent_gap


def _attempt(policy, distance=None, empty=False, gap=0.0, seed=1):
    a = Attempt(seed=seed, measured=None if distance is None else Emotion(0.0, 0.0), empty=empty, gap_s=gap)
    if distance is not None:
        a.distance = distance
    a.score = policy.score(a)
    return a


def test_thresholds_come_from_the_build_settings():
    p = AcceptancePolicy.from_settings(BuildSettings(tolerance=0.3, max_retries=5, max_gap_s=2.0, gap_penalty=0.7))
    assert (p.tolerance, p.max_retries, p.max_gap_s, p.gap_penalty) == (0.3, 5, 2.0, 0.7)
    assert list(p.seeds(12)) == [12 + k * RETRY_SEED_STEP for k in range(6)]
    assert AcceptancePolicy.from_settings(BuildSettings()) == AcceptancePolicy()


def test_score():
    p = AcceptancePolicy(gap_penalty=0.5, max_gap_s=1.5)
    assert _attempt(p, 0.4).score == pytest.approx(0.4)
    assert _attempt(p, 0.4, gap=2.0).score == pytest.approx(0.9)
    assert _attempt(p, 0.4, gap=1.5).score == pytest.approx(0.4)  # at the limit: no hole
    assert _attempt(p, None).score == 0.0  # not measured (no closed loop): gaps only
    assert _attempt(p, None, empty=True).score == math.inf


def test_accept():
    p = AcceptancePolicy(tolerance=0.6)
    assert p.accept(_attempt(p, 0.6)) and not p.accept(_attempt(p, 0.61))
    assert p.accept(_attempt(p, None))  # nothing to measure: the first take stands
    assert not p.accept(_attempt(p, None, empty=True))
    assert not p.accept(_attempt(p, 0.1, gap=3.0))
    assert p.within(0.6) is True and p.within(0.7) is False and p.within(None) is None


def test_pick_prefers_the_lowest_score_and_any_notes_over_empty():
    p = AcceptancePolicy()
    takes = [_attempt(p, 0.9, seed=1), _attempt(p, 0.5, seed=2), _attempt(p, 0.5, seed=3), _attempt(p, 0.7, seed=4)]
    assert p.pick(takes).seed == 2  # ties keep the earlier take
    # a hole costs gap_penalty: 0.3 + 0.5 loses to 0.7 without a hole, beats 0.9
    assert p.pick([_attempt(p, 0.3, gap=2.0, seed=1), _attempt(p, 0.7, seed=2)]).seed == 2
    assert p.pick([_attempt(p, 0.3, gap=2.0, seed=1), _attempt(p, 0.9, seed=2)]).seed == 1
    empty, unmeasured = _attempt(p, None, empty=True, seed=1), _attempt(p, None, seed=2)
    assert p.pick([empty, unmeasured]).seed == 2
    with pytest.raises(ValueError):
        p.pick([])


def test_silent_gap():
    notes = [Note(60, float(b), 1.0, 80) for b in range(2, 8)]  # plays beats 2..8 at 60 BPM
    piece = Piece(tracks=[Track("t", 0, False, notes)], tempos=[Tempo(60.0)])
    assert silent_gap(piece, 10.0) == pytest.approx(2.0)  # 2 s rest at the start and at the end
    assert silent_gap(Piece(tracks=[Track("t", 0, False, [])], tempos=[Tempo(60.0)]), 5.0) == 5.0
