import json
import math

import pytest

from emomusic.emotion import (
    QUADRANTS,
    Emotion,
    emotion_from_options,
    interpolate,
    mean_emotion,
    parse_emotion,
)
from emomusic.errors import EmomusicError, EmotionError


@pytest.mark.parametrize(
    "v,a,q", [(0.5, 0.5, "Q1"), (-0.5, 0.5, "Q2"), (-0.5, -0.5, "Q3"), (0.5, -0.5, "Q4"), (0, 0, "Q1"), (0, -0.1, "Q4"), (-0.1, 0, "Q2")]
)
def test_quadrants(v, a, q):
    assert Emotion(v, a).quadrant == q


@pytest.mark.parametrize("bad", [1.01, -1.5, float("nan"), float("inf"), -float("inf"), "x", None, True])
def test_rejects_bad_components(bad):
    with pytest.raises(EmotionError):
        Emotion(bad, 0.0)
    with pytest.raises(EmotionError):
        Emotion(0.0, bad)


def test_error_message_is_one_line_and_names_the_axis():
    with pytest.raises(EmotionError) as exc:
        Emotion(0.0, 2.0)
    assert "arousal" in str(exc.value) and "\n" not in str(exc.value)
    assert isinstance(exc.value, EmomusicError)


def test_accepts_bounds_and_numeric_strings():
    assert Emotion(-1, 1).as_tuple() == (-1.0, 1.0)
    assert Emotion("0.25", "-0.5").as_tuple() == (0.25, -0.5)


def test_distance_and_lerp():
    a, b = Emotion(-1, -1), Emotion(1, 1)
    assert a.distance(b) == pytest.approx(2 * math.sqrt(2))
    mid = a.lerp(b, 0.5)
    assert mid.as_tuple() == pytest.approx((0.0, 0.0))
    assert a.lerp(b, 0).as_tuple() == a.as_tuple() and a.lerp(b, 1).as_tuple() == b.as_tuple()
    with pytest.raises(EmotionError):
        a.lerp(b, 1.5)


def test_interpolate_endpoints_and_even_steps():
    pts = interpolate(Emotion(-0.6, 0.6), Emotion(0.6, -0.6), 5)
    assert len(pts) == 5
    assert pts[0].as_tuple() == (-0.6, 0.6) and pts[-1].as_tuple() == pytest.approx((0.6, -0.6))
    steps = [pts[i].distance(pts[i + 1]) for i in range(4)]
    assert max(steps) - min(steps) < 1e-9
    assert interpolate(Emotion(0.1, 0.1), Emotion(0.2, 0.2), 1) == [Emotion(0.1, 0.1)]


def test_dict_round_trip_and_marker():
    e = Emotion(0.6, -0.4, "calm")
    d = json.loads(json.dumps(e.to_dict()))
    assert d["quadrant"] == "Q4"
    assert Emotion.from_dict(d) == e
    assert e.marker_text() == "emotion v=0.60 a=-0.40 Q4"
    with pytest.raises(EmotionError):
        Emotion.from_dict({"valence": 0.1})


@pytest.mark.parametrize("text,expected", [("0.6,-0.4", (0.6, -0.4)), (" -1 , 1 ", (-1.0, 1.0)), ("(0.1, 0.2)", (0.1, 0.2)), ("0.5 0.5", (0.5, 0.5))])
def test_parse_pairs(text, expected):
    assert parse_emotion(text).as_tuple() == pytest.approx(expected)


def test_parse_quadrant_and_mood():
    assert parse_emotion("q2").quadrant == "Q2"
    calm = parse_emotion("Calm")
    assert calm.label == "calm" and calm.quadrant == "Q4"


@pytest.mark.parametrize("text", ["2,0", "nan,0", "0.1,", "", "   ", "1,2,3"])
def test_parse_rejects(text):
    with pytest.raises(EmotionError):
        parse_emotion(text)


def test_options_resolution():
    assert emotion_from_options(0.1, 0.2, None).as_tuple() == (0.1, 0.2)
    assert emotion_from_options(None, None, "sad").quadrant == "Q3"
    with pytest.raises(EmotionError):
        emotion_from_options(0.1, None, None)
    with pytest.raises(EmotionError):
        emotion_from_options(0.1, 0.1, "sad")


def test_mean_and_quadrant_centres():
    # asymmetric inputs, hand-computed means: a swap of valence and arousal, a wrong divisor or a
    # dropped item all give a different point
    m = mean_emotion([Emotion(0.9, -0.3), Emotion(0.3, -0.9), Emotion(-0.6, 0.0)])
    assert m.as_tuple() == pytest.approx((0.2, -0.4))
    assert mean_emotion(iter([Emotion(0.5, -0.25)])).as_tuple() == (0.5, -0.25)  # any iterable, once
    with pytest.raises(EmotionError):
        mean_emotion([])
    expected = {"Q1": (0.6, 0.6), "Q2": (-0.6, 0.6), "Q3": (-0.6, -0.6), "Q4": (0.6, -0.6)}
    for q in QUADRANTS:
        e = Emotion.from_quadrant(q)
        assert e.quadrant == q and e.as_tuple() == expected[q] and e.label == q
        assert Emotion.from_quadrant(q.lower()) == e
    with pytest.raises(EmotionError, match="Q5"):
        Emotion.from_quadrant("Q5")


@pytest.mark.parametrize(
    "make,words",
    [
        (lambda: Emotion(True, 0.0), ["valence", "True"]),
        (lambda: Emotion(0.0, "loud"), ["arousal", "loud"]),
        (lambda: Emotion(float("nan"), 0.0), ["valence", "finite"]),
        (lambda: Emotion(0.0, float("inf")), ["arousal", "finite"]),
        (lambda: Emotion(1.5, 0.0), ["valence", "1.5"]),
        (lambda: emotion_from_options(0.1, None, None), ["--valence", "--mood"]),
        (lambda: emotion_from_options(None, 0.1, None), ["--valence", "--mood"]),
        (lambda: emotion_from_options(0.1, None, "sad"), ["not both"]),
        (lambda: emotion_from_options(None, 0.1, "sad"), ["not both"]),
        (lambda: parse_emotion("0.5,abc 1"), ["V,A"]),
        (lambda: parse_emotion(3), ["mood word"]),
        (lambda: Emotion(0, 0).lerp(Emotion(0.1, 0.1), -0.5), ["[0, 1]"]),
    ],
)
def test_errors_are_one_line_and_say_what_is_wrong(make, words):
    with pytest.raises(EmotionError) as exc:
        make()
    text = str(exc.value)
    assert "\n" not in text
    for w in words:
        assert w in text


def test_lerp_refuses_positions_outside_0_1_even_when_the_result_is_in_range():
    a, b = Emotion(0.0, 0.0), Emotion(0.2, -0.2)
    for t in (1.5, 2.0, -0.5, float("nan")):
        with pytest.raises(EmotionError):
            a.lerp(b, t)
    assert a.lerp(b, 0.25).as_tuple() == pytest.approx((0.05, -0.05))


@pytest.mark.parametrize("bad", [None, ["valence", "arousal"], "valence arousal", {"arousal": 0.1}])
def test_from_dict_rejects_non_dicts_and_missing_keys(bad):
    with pytest.raises(EmotionError):
        Emotion.from_dict(bad)


def test_dict_keeps_four_decimals_and_str_shows_the_label():
    d = Emotion(0.123456, -0.654321).to_dict()
    assert d == {"valence": 0.1235, "arousal": -0.6543, "quadrant": "Q4"}
    assert str(Emotion(0.5, -0.25)) == "valence +0.50, arousal -0.25 (Q4)"
    assert str(Emotion(0.5, -0.25, "calm")) == "calm: valence +0.50, arousal -0.25 (Q4)"
    assert Emotion(-0.3, 0.8).intensity == pytest.approx(math.hypot(0.3, 0.8))
    assert Emotion(1, 1).intensity == 1.0
    assert Emotion(0, 1).angle == pytest.approx(90.0) and Emotion(0, -1).angle == pytest.approx(270.0)


@pytest.mark.parametrize("text", ["Q3", "q4", " Q1 "])
def test_parse_quadrant_either_case(text):
    e = parse_emotion(text)
    assert e.quadrant == text.strip().upper() and e.label == text.strip().upper()


def test_parse_mood_words_with_commas_or_digits_alone_reach_the_mood_table():
    # a comma without digits, or a digit without a comma, is not a malformed 'V,A' pair: it is
    # looked up as a mood word (and fails there with the mood table's own message)
    for text in ("calm, happy", "mood 7"):
        with pytest.raises(EmotionError) as exc:
            parse_emotion(text)
        assert "V,A" not in str(exc.value)
    with pytest.raises(EmotionError, match="V,A"):
        parse_emotion("0.5,abc")
