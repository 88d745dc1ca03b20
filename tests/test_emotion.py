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
    assert mean_emotion([Emotion(1, 0), Emotion(0, 1)]).as_tuple() == (0.5, 0.5)
    for q in QUADRANTS:
        assert Emotion.from_quadrant(q).quadrant == q
