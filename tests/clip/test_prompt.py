"""Emotion -> text prompt."""

import re

import pytest

from emomusic.emotion import Emotion, parse_emotion
from emomusic.errors import EmomusicError


def test_prompt_has_nearest_mood_words_and_template_tempo():
    from emomusic.attributes import template
    from emomusic.clip.prompt import build_prompt
    from emomusic.moods import nearest_moods

    for v, a in [(0.7, 0.7), (-0.7, 0.7), (-0.7, -0.7), (0.7, -0.7), (0.0, 0.0)]:
        e = Emotion(v, a)
        text = build_prompt(e)
        for m in nearest_moods(e, 3):
            assert m.word in text
        bpm = int(re.search(r"(\d+) bpm", text).group(1))
        assert bpm == round(template(e).tempo_bpm)
        assert f"{template(e).mode} key" in text


def test_prompt_moves_with_arousal_and_valence():
    from emomusic.clip.prompt import build_prompt

    calm = build_prompt(Emotion(0.6, -0.8))
    excited = build_prompt(Emotion(0.6, 0.8))
    sad = build_prompt(Emotion(-0.7, -0.6))
    bpm = lambda t: int(re.search(r"(\d+) bpm", t).group(1))  # noqa: E731
    assert bpm(calm) < bpm(excited)
    assert "soft" in calm and "loud" in excited
    assert "drums" in excited and "drums" not in calm
    assert "minor key" in sad and "major key" in calm


def test_mood_label_and_user_prompt():
    from emomusic.clip.prompt import build_prompt

    text = build_prompt(parse_emotion("calm"), "  lo-fi   piano \n")
    assert text.startswith("calm")
    assert text.endswith(", lo-fi piano")
    assert build_prompt(Emotion(0.1, 0.1), "") == build_prompt(Emotion(0.1, 0.1))


def test_prompt_errors():
    from emomusic.clip.prompt import build_prompt

    with pytest.raises(EmomusicError, match="too long"):
        build_prompt(Emotion(0, 0), "x" * 1000)
    with pytest.raises(EmomusicError):
        build_prompt((0.5, 0.5))


def test_tags_prompt_puts_track_tags_first():
    from emomusic.clip.prompt import tags_prompt

    text = tags_prompt(Emotion(0.5, -0.5), ["mood/theme---calm", "genre---ambient", "mood/theme---calm"])
    assert text.startswith("calm, ambient, ")
    assert text.count("calm,") >= 1
