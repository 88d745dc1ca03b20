"""Emotion -> text prompt."""

import re

import pytest

from emomusic.emotion import Emotion, parse_emotion
from emomusic.errors import EmomusicError


def _mood_table_by_distance(v: float, a: float) -> list[str]:
    """Mood words sorted by Euclidean distance, read from the shipped JSON table here."""
    import json
    import math

    from emomusic.paths import PACKAGE_DIR

    table = json.loads((PACKAGE_DIR / "data" / "moods.json").read_text())
    rows = table["moods"] if isinstance(table, dict) and "moods" in table else table
    items = rows.items() if isinstance(rows, dict) else [(r["word"], r) for r in rows]
    return [w for w, r in sorted(items, key=lambda wr: math.hypot(wr[1]["valence"] - v, wr[1]["arousal"] - a))]


def test_prompt_has_nearest_mood_words_and_template_tempo():
    from emomusic.attributes import template
    from emomusic.clip.prompt import build_prompt

    for v, a in [(0.7, 0.7), (-0.7, 0.7), (-0.7, -0.7), (0.7, -0.7), (0.0, 0.0), (0.3, -0.9)]:
        e = Emotion(v, a)
        text = build_prompt(e)
        # the prompt opens with the three nearest mood words, nearest first
        words = text.split(" instrumental music")[0].split(", ")
        assert words == _mood_table_by_distance(v, a)[:3], (v, a)
        bpm = int(re.search(r"(\d+) bpm", text).group(1))
        assert bpm == round(template(e).tempo_bpm)
        assert f"{template(e).mode} key" in text
    assert build_prompt(Emotion(0.7, 0.7), n_moods=5).split(" instrumental music")[0].split(", ") == \
        _mood_table_by_distance(0.7, 0.7)[:5]


def test_label_is_added_once_and_first():
    from emomusic.clip.prompt import build_prompt

    far = _mood_table_by_distance(0.9, 0.9)[-1]  # a word far from the point: named first
    text = build_prompt(Emotion(0.9, 0.9, far.capitalize()))
    assert text.split(" instrumental music")[0].split(", ") == [far] + _mood_table_by_distance(0.9, 0.9)[:3]
    near = _mood_table_by_distance(0.9, 0.9)[0]  # already among the nearest: not repeated
    text = build_prompt(Emotion(0.9, 0.9, near))
    assert text.split(" instrumental music")[0].split(", ") == _mood_table_by_distance(0.9, 0.9)[:3]


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
    from emomusic.clip.prompt import build_prompt, tags_prompt

    e = Emotion(0.5, -0.5)
    text = tags_prompt(e, ["mood/theme---calm", "genre---ambient", "mood/theme---Calm", "instrument---piano", "genre---ambient"])
    # each tag word once, in first-seen order, lower case, then the emotion prompt unchanged
    assert text == "calm, ambient, piano, " + build_prompt(e)
    assert tags_prompt(e, []) == build_prompt(e) and tags_prompt(e, ["genre---", "  "]) == build_prompt(e)
    assert tags_prompt(e, ["plain"]) == "plain, " + build_prompt(e)  # a tag without a category
