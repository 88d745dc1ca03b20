"""Clips as small complete pieces: whole phrases, the final cadence just before the join."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emomusic.emotion import Emotion
from emomusic.io import read_piece
from emomusic.piece import KeySignature
from emomusic.session.builder import build_session
from emomusic.session.engines import RulesEngine, rules_piece
from emomusic.session.keys import parse_tonic
from emomusic.session.phrasing import (CADENCE_MARGIN_S, CADENCE_WINDOW_S, MAX_NUDGE, fit_phrases, hold_final,
                                       tempo_map, with_form, with_plain_settings)
from emomusic.session.planner import plan_session

JOURNEYS = [
    ("anxious", "calm", {}),
    ("tired", "energetic", {}),
    ("angry", "calm", {"path": "arousal-first"}),
    ("relaxed", "0.35,-0.95", {"minutes": 10}),
    ("anxious", "calm", {"minutes": 1, "clip_seconds": 10}),
    ("anxious", "calm", {"minutes": 2, "clip_seconds": 20, "heart_rate": 150}),
]


@pytest.mark.parametrize("start,target,kw", JOURNEYS)
def test_fit_ends_each_clip_on_its_cadence_just_before_the_join(start, target, kw):
    plan = plan_session(start, target, **kw)
    fits = fit_phrases(plan)
    tempi = [f.tempo for f in fits]
    in_window = 0
    for i, (f, w) in enumerate(zip(fits, plan.clips)):
        tm = tempo_map(plan, i, tempi)
        bar_s = tm.beat_to_seconds(f.bars * f.bar_beats) - tm.beat_to_seconds((f.bars - 1) * f.bar_beats)
        assert f.form.bars == f.bars >= 2
        assert f.cadence_s == pytest.approx(tm.beat_to_seconds((f.bars - 1) * f.bar_beats))
        # the join never starts before the final cadence ...
        assert f.cadence_s <= f.join_s - CADENCE_MARGIN_S + 1e-6
        # ... and it begins in the last CADENCE_WINDOW_S before the join, or else one bar more would not fit
        assert f.in_window or f.end_s > f.join_s - CADENCE_MARGIN_S - 1e-6
        assert f.join_s - f.cadence_s <= max(CADENCE_WINDOW_S, bar_s) + 1.0
        in_window += f.in_window
        # no phrase starts after the join begins: the only boundary there is the piece's end
        bounds = f.phrase_bounds_s(tm)
        assert all(b < f.join_s for b in bounds[:-1])
        assert abs(f.nudge - 1) <= MAX_NUDGE + 1e-9
        assert f.tempo == pytest.approx(w.tempo * f.nudge)
    assert in_window >= 0.6 * len(fits)  # the others end earlier (the step rule stops the nudge), never later
    # the played tempi keep the plan's step rule (and the planner's aim where the plan kept it)
    rule = plan.tempo_rule
    for a, b, wa, wb in zip(tempi, tempi[1:], plan.clips, plan.clips[1:]):
        assert rule.violation(a, b, "x") is None
        assert rule.step(a, b) <= max(rule.plan_step, rule.step(wa.tempo, wb.tempo)) + 1e-6


def test_fit_is_deterministic_and_prefers_four_bar_phrases():
    plan = plan_session("anxious", "calm")
    a, b = fit_phrases(plan), fit_phrases(plan)
    assert [f.to_dict() for f in a] == [f.to_dict() for f in b]
    assert sum(f.bars % 4 == 0 for f in a) >= len(a) // 3


def test_with_form_only_for_engines_that_take_it():
    def old(emotion, *, bars=16, seed=0):
        return bars

    def new(emotion, *, bars=16, seed=0, form=None):
        return form

    kw: dict = {}
    assert not with_form(old, kw, "AABA") and "form" not in kw
    assert with_form(new, kw, "AABA") and kw["form"] == "AABA"
    kw2: dict = {}
    assert not with_form(new, kw2, None) and kw2 == {}


def test_sessions_ask_engines_for_their_plain_settings(monkeypatch):
    """A session is one player: engines that take ``diversity`` get 0 (compose's player style and
    melody's per-tune settings stay the emotion's own from clip to clip); others are left alone."""
    def old(emotion, *, bars=16):
        return bars

    def new(emotion, *, bars=16, diversity=1.0):
        return diversity

    kw: dict = {}
    assert not with_plain_settings(old, kw) and kw == {}
    assert with_plain_settings(new, kw) and kw == {"diversity": 0.0}
    import emomusic.compose.api as C  # (emomusic.compose resolves compose lazily from its api module)
    import emomusic.melody as M
    from emomusic.emotion import Emotion
    from emomusic.piece import KeySignature
    from emomusic.session.clip_engine import ClipRequest
    from emomusic.session.model_engines import SymbolicEngine, _melody_piece

    seen = {}

    def fake_compose(emotion, *, bars=16, n=1, seed=0, tempo=None, key=None, form=None, diversity=1.0):
        raise AssertionError("not called")

    def fake_melodies(emotion, *, bars=16, n=1, seed=0, tempo=None, meter=None, key=None, form=None, diversity=1.0):
        seen["melody"] = dict(diversity=diversity, bars=bars)
        raise ZeroDivisionError

    monkeypatch.setattr(C, "compose", fake_compose)
    monkeypatch.setattr(M, "generate_melodies", fake_melodies)
    req = ClipRequest(index=1, emotion=Emotion(0.5, 0.5), seconds=10.0, tempo=90.0, key=KeySignature(0, "major"), seed=3)
    kwargs, _ = SymbolicEngine()._call(req)
    assert kwargs["diversity"] == 0.0
    try:
        _melody_piece(Emotion(0.5, 0.5), req)
    except ZeroDivisionError:
        pass
    assert seen["melody"]["diversity"] == 0.0


def test_rules_piece_follows_the_form():
    from emomusic.form import resolve_form

    emotion = Emotion(0.5, -0.2)
    form = resolve_form("AABA", 8)
    key = KeySignature(0, "major")
    piece = rules_piece(emotion, 8, 90.0, key, 3, form=form)
    chords = [n for n in piece.tracks[1].notes]
    melody = piece.tracks[0].notes

    def roots(bar):
        return sorted({n.pitch % 12 for n in chords if bar * 4 <= n.start < bar * 4 + 4})

    for last_bar, cadence in form.cadences():
        assert roots(last_bar) == ([2, 7, 11] if cadence == "half" else [0, 4, 7])
    # the final bar: tonic chord and tonic melody note, held for the whole bar
    final = [n for n in chords + melody if n.start >= 28]
    assert {n.pitch % 12 for n in final} <= {0, 4, 7} and all(n.duration == 4.0 for n in final)
    assert [n.pitch % 12 for n in melody if n.start >= 28] == [0]


def test_hold_final_extends_only_the_last_chord():
    piece = rules_piece(Emotion(0.2, 0.0), 4, 100.0, KeySignature(0, "major"), 1, form=None)
    held = hold_final(piece, 16.0, 20.0)
    for t0, t1 in zip(piece.tracks, held.tracks):
        for a, b in zip(t0.notes, t1.notes):
            if a.end >= 15.75:
                assert b.end == pytest.approx(20.0)
            else:
                assert b == a
    assert hold_final(piece, 16.0, 15.0) is piece


def test_session_clips_are_phrased_pieces(tmp_path):
    plan = plan_session("anxious", "calm", minutes=1, clip_seconds=15)
    sr = 16000
    summary = build_session(plan, tmp_path / "s", engine=RulesEngine(synth="builtin"), sample_rate=sr,
                            estimator=lambda p: Emotion(0.0, 0.0), tolerance=3.0)
    on_disk = json.loads((tmp_path / "s" / "session.json").read_text())
    assert on_disk["clips"] == summary["clips"]
    played = []
    for i, (c, w) in enumerate(zip(summary["clips"], plan.clips)):
        ph = c["phrasing"]
        assert ph["form_followed"] is True
        assert ph["form"]["bars"] == ph["bars"] and sum(s["bars"] for s in ph["form"]["sections"]) == ph["bars"]
        assert ph["form"]["sections"][-1]["cadence"] == "authentic"
        join = w.duration_s if i < len(plan.clips) - 1 else ph["join_s"]
        assert ph["join_s"] == pytest.approx(join)
        assert join - CADENCE_WINDOW_S - 1.0 <= ph["cadence_s"] <= join - CADENCE_MARGIN_S + 1e-3
        played.append(ph["tempo"])
        # the clip's MIDI: its last notes begin at the cadence, the final chord sounds to the clip end
        piece = read_piece(tmp_path / "s" / c["files"]["midi"])
        starts = sorted({round(piece.beat_to_seconds(n.start), 2) for n in piece.notes})
        assert starts[-1] == pytest.approx(ph["cadence_s"], abs=0.02)
        last = [n for n in piece.notes if piece.beat_to_seconds(n.start) >= ph["cadence_s"] - 0.01]
        t = parse_tonic(c["key"]["tonic"])
        triad = {t % 12, (t + (4 if c["key"]["mode"] == "major" else 3)) % 12, (t + 7) % 12}
        assert {n.pitch % 12 for n in last} <= triad  # the clip's tonic chord
        assert piece.beat_to_seconds(max(n.end for n in last)) == pytest.approx(w.duration_s, abs=0.02)
    for a, b in zip(played, played[1:]):
        assert plan.tempo_rule.violation(a, b, "x") is None
    readme = (tmp_path / "s" / "README.md").read_text()
    assert "whole phrases" in readme and "-16 LUFS" in readme and "-1 dBTP" in readme
    # the session.wav joins are reported in short-term LUFS
    assert [j["clip"] for j in summary["joins"]] == [w.index for w in plan.clips[1:]]
    assert all(np.isfinite(j["closing_lufs"]) and np.isfinite(j["opening_lufs"]) for j in summary["joins"])
