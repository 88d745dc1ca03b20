"""The form plan shared by the engines (emomusic.form)."""

import json

import pytest

from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError
from emomusic.form import (
    FormError,
    FormPlan,
    Section,
    bar_slice,
    contrast,
    default_form,
    form_from_markers,
    is_section_label,
    parse_form,
    resolve_form,
    section_similarities,
    similarity,
    through_composed,
)
from emomusic.piece import Marker, Note


@pytest.mark.parametrize("text, bars, labels, phrase", [
    ("AABA", 16, ["A", "A", "B", "A"], 4),
    ("AA'BA", 16, ["A", "A'", "B", "A"], 4),
    ("a a b b", 32, ["A", "A", "B", "B"], 8),
    ("A,B,A,B", 8, ["A", "B", "A", "B"], 2),
    ("A\u2019", 8, None, None),  # a typographic prime is a prime, but a lone varied first section is refused below
    ("AB''A", 12, ["A", "B''", "A"], 4),
])
def test_parse_form_labels_and_phrases(text, bars, labels, phrase):
    if labels is None:
        with pytest.raises(FormError, match="first section"):
            parse_form(text, bars)
        return
    plan = parse_form(text, bars)
    assert plan.labels == labels
    assert plan.phrase_bars == phrase
    assert plan.bars == bars
    assert [s.start_bar for s in plan.sections] == [i * phrase for i in range(len(labels))]
    assert plan.sections[-1].cadence == "authentic"


def test_cadences_pair_as_question_and_answer():
    plan = parse_form("AABA", 16)
    assert [s.cadence for s in plan.sections] == ["half", "authentic", "half", "authentic"]
    assert plan.cadences() == [(3, "half"), (7, "authentic"), (11, "half"), (15, "authentic")]
    assert [s.cadence for s in parse_form("ABA", 12).sections] == ["half", "authentic", "authentic"]


def test_roles_of_sections():
    plan = parse_form("AA'BAB'", 10)
    assert [plan.role(i) for i in range(5)] == ["new", "variation", "new", "repeat", "variation"]
    assert [plan.first_statement(i) for i in range(5)] == [None, 0, None, 0, 2]
    assert plan.section_at_bar(0) == 0 and plan.section_at_bar(5) == 2 and plan.section_at_bar(99) == 4


@pytest.mark.parametrize("text, bars, match", [
    ("AXB?", 16, "unknown symbol '\\?'"),
    ("A1BA", 16, "unknown symbol '1'"),
    ("'AB", 16, "prime must follow"),
    ("AABA", 18, "do not divide 18"),
    ("AABBAABBAABB", 12, "too long for 12 bars"),
    ("AB", 64, "too short for 64 bars"),
    ("", 16, "empty"),
    ("  ", 16, "empty"),
])
def test_bad_forms_are_one_line_errors(text, bars, match):
    with pytest.raises(FormError, match=match) as e:
        parse_form(text, bars)
    assert isinstance(e.value, EmomusicError)
    assert "\n" not in str(e.value)


def test_bad_arguments():
    with pytest.raises(FormError, match="bars"):
        parse_form("AABA", 0)
    with pytest.raises(FormError, match="bars"):
        parse_form("AABA", True)
    with pytest.raises(FormError, match="text"):
        parse_form(4, 16)
    with pytest.raises(FormError, match="too long"):
        parse_form("A" * 10_000, 16)
    with pytest.raises(FormError, match="kind"):
        default_form(16, kind="sonata")


def test_none_is_through_composed():
    plan = parse_form("None", 16)
    assert plan.through_composed and plan.text == "none"
    assert len(plan) == 1 and plan.sections[0].bars == 16 and plan.sections[0].cadence == "none"
    assert plan.markers() == [] and plan.cadences() == []
    assert through_composed(16) == plan
    assert FormPlan.from_dict(plan.to_dict()) == plan


@pytest.mark.parametrize("bars, piece, tune, phrase", [
    (16, "AA'BA'", "AA'BB'", 4),
    (32, "AA'BA'", "AABB", 8),
    (8, "AA'", "AA'", 4),
    (12, "ABA'", "AA'B", 4),
    (24, "AA'BA'CA'", "AA'BB'CC'", 4),
    (64, "AA'BA'CA'DA'", "AABBCCDD", 8),
    (6, "ABA'", "AA'B", 2),
    (3, "A", "A", 3),
])
def test_default_forms_by_length(bars, piece, tune, phrase):
    p = default_form(bars)
    assert p.text == piece and p.phrase_bars == phrase and p.bars == bars
    assert default_form(bars, kind="tune").text == tune
    assert p.sections[-1].cadence == "authentic"


def test_default_form_depends_on_arousal():
    assert default_form(16, Emotion(0.5, 0.8)).text == "ABA'B'"
    assert default_form(16, Emotion(0.5, -0.8)).text == "AA'BA'"
    assert default_form(16, Emotion(0.5, 0.3)).text == "AA'BA'"  # the threshold is exclusive


def test_seeded_default_forms_are_drawn_from_the_song_forms():
    from emomusic.form import SONG_FORMS

    drawn = [default_form(16, Emotion(0.5, 0.8), seed=s) for s in range(40)]
    assert all(p.text in SONG_FORMS and p.phrase_bars == 4 for p in drawn)
    assert {p.text for p in drawn} == set(SONG_FORMS)  # every one of them occurs
    assert [p.text for p in drawn] == [default_form(16, seed=s).text for s in range(40)]  # the seed decides, not the emotion
    assert [c.cadence for c in drawn[0].sections] == ["half", "authentic", "half", "authentic"]
    assert {default_form(32, seed=s).text for s in range(40)} == set(SONG_FORMS)  # 8-bar phrases
    assert default_form(32, seed=3).phrase_bars == 8
    # other lengths keep their one default whatever the seed
    for s in range(5):
        assert default_form(8, seed=s).text == "AA'" and default_form(12, seed=s).text == "ABA'"
        assert default_form(24, seed=s).text == default_form(24).text
        assert default_form(32, kind="tune", seed=s).text == default_form(32, kind="tune").text == "AABB"
        assert default_form(8, kind="tune", seed=s).text == "AA'"


def test_seeded_16_bar_tunes_are_periods_or_rounded():
    from emomusic.form import TUNE_FORMS, piece_forms

    assert default_form(16, kind="tune").text == "AA'BB'"  # without a seed: two parallel periods
    drawn = [default_form(16, Emotion(-0.5, 0.5), kind="tune", seed=s).text for s in range(40)]
    assert set(drawn) == {name for name, _ in TUNE_FORMS} == {"AA'BB'", "AA'BA'", "AA'BC"}
    many = [default_form(16, kind="tune", seed=s).text for s in range(3000)]
    for name, weight in TUNE_FORMS:  # drawn with their weights
        assert abs(many.count(name) / len(many) - weight) < 0.03, name
    assert drawn == [default_form(16, kind="tune", seed=s).text for s in range(40)]  # the seed decides
    # piece_forms: each tune its own (seed + i); an asked form for all; pieces draw from SONG_FORMS
    assert [p.text for p in piece_forms(None, 16, None, 5, 10, kind="tune")] == drawn[10:15]
    assert {p.text for p in piece_forms("AABB", 16, None, 3, 10, kind="tune")} == {"AABB"}
    assert [p.text for p in piece_forms(None, 16, None, 3, 10)] == [default_form(16, seed=s).text for s in (10, 11, 12)]
    assert resolve_form(None, 16, seed=7).text == default_form(16, seed=7).text
    assert resolve_form("AABA", 16, seed=7).text == "AABA"  # an asked form is never drawn


def test_long_default_forms_stay_valid_and_end_on_a():
    for bars in (96, 128, 256, 512):
        p = default_form(bars)
        assert p.bars == bars and p.labels[-1].startswith("A")
        assert len(p) <= 128


def test_resolve_form():
    assert resolve_form(None, 16).text == "AA'BA'"
    assert resolve_form(None, 16, kind="tune").text == "AA'BB'"
    assert resolve_form("none", 16).through_composed
    assert resolve_form("ABAB", 16).text == "ABAB"
    plan = parse_form("ABAB", 16)
    assert resolve_form(plan, 16) is plan
    with pytest.raises(FormError, match="covers 16 bars"):
        resolve_form(plan, 32)


def test_json_round_trip_and_bad_dicts():
    plan = parse_form("AA'BA", 32)
    d = json.loads(json.dumps(plan.to_dict()))
    assert d["form"] == "AA'BA" and d["phrase_bars"] == 8 and d["bars"] == 32
    assert FormPlan.from_dict(d) == plan
    with pytest.raises(FormError, match="sections"):
        FormPlan.from_dict({"form": "A"})
    with pytest.raises(FormError, match="keys are"):
        FormPlan.from_dict({"sections": [{"label": "A", "start_bar": 0, "bars": 4, "evil": 1}]})
    with pytest.raises(FormError, match="lacks 'bars'"):
        FormPlan.from_dict({"sections": [{"label": "A", "start_bar": 0}]})
    with pytest.raises(FormError, match="expected 4"):
        FormPlan.from_dict({"sections": [{"label": "A", "start_bar": 0, "bars": 4}, {"label": "B", "start_bar": 5, "bars": 4}]})
    with pytest.raises(FormError, match="label"):
        FormPlan((Section("a", 0, 4),))
    with pytest.raises(FormError, match="cadence"):
        FormPlan((Section("A", 0, 4, "plagal"),))


def test_markers_and_reading_them_back():
    plan = parse_form("AA'BA", 16)
    marks = plan.markers(bar_beats=3.0)
    assert [(m.text, m.beat) for m in marks] == [("A", 0.0), ("A'", 12.0), ("B", 24.0), ("A", 36.0)]
    mixed = marks + [Marker("emotion v=0.60 a=-0.40 Q4", 0.0), Marker("emotion v=0.1 a=0.1 Q1", 24.0)]
    back = form_from_markers(mixed, 16, bar_beats=3.0)
    assert back == plan
    assert form_from_markers([Marker("emotion v=0.60 a=-0.40 Q4", 0.0)], 16) is None
    assert form_from_markers([Marker("B", 16.0)], 16) is None  # no section at bar 0
    assert is_section_label("A''") and not is_section_label("Intro") and not is_section_label("a")


def _motif(start_bar, pitches, bar_beats=4.0):
    return [Note(p, start_bar * bar_beats + i * 1.0, 1.0) for i, p in enumerate(pitches)]


def test_similarity_measures_repeats_and_contrast():
    a = [60, 62, 64, 65]
    b = [71, 69, 67, 72]
    notes = (_motif(0, a) + _motif(1, a) + _motif(2, b) + _motif(3, a[:3] + [67]))
    plan = FormPlan(tuple(Section(l, i, 1) for i, l in enumerate(["A", "A", "B", "A'"])))
    sims = section_similarities(notes, plan)
    assert sims[0] is None and sims[2] is None
    assert sims[1] == 1.0
    assert sims[3] == pytest.approx(3 / 5)  # 3 shared events of 5 distinct
    con = contrast(notes, plan)
    assert con == [None, None, 0.0, None]
    assert bar_slice(notes, 1, 1) == [(60, 0.0), (62, 1.0), (64, 2.0), (65, 3.0)]
    assert similarity([], []) == 1.0 and similarity([(60, 0.0)], []) == 0.0
