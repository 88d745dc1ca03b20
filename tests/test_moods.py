import json
from importlib import resources

import pytest

from emomusic.emotion import Emotion
from emomusic.errors import EmotionError
from emomusic.moods import mood_emotion, mood_table, nearest_moods, suggest

MTG_MOODS = ["calm", "relaxing", "happy", "sad", "energetic", "dark", "epic", "romantic", "melancholic", "uplifting"]
THERAPY = ["anxious", "stressed", "tense", "angry", "peaceful", "hopeful", "content", "bored", "tired", "excited"]


def test_table_size_and_required_words():
    table = mood_table()
    assert len(table) >= 40
    for w in MTG_MOODS + THERAPY:
        assert w in table, w


def test_every_row_is_valid_and_sourced():
    for m in mood_table().values():
        e = m.emotion
        assert -1 <= e.valence <= 1 and -1 <= e.arousal <= 1
        assert "NRC-VAD" in m.source or "Warriner" in m.source
        assert m.group in ("mtg-jamendo", "therapy")


@pytest.mark.parametrize(
    "word,quadrant", [("happy", "Q1"), ("excited", "Q1"), ("angry", "Q2"), ("anxious", "Q2"), ("sad", "Q3"), ("depressed", "Q3"), ("calm", "Q4"), ("peaceful", "Q4")]
)
def test_prototypical_words_land_in_their_quadrant(word, quadrant):
    assert mood_emotion(word).quadrant == quadrant


def test_lookup_is_case_insensitive_and_accepts_jamendo_tags():
    assert mood_emotion("CALM") == mood_emotion("mood/theme---calm")


def test_unknown_word_suggests_close_ones():
    with pytest.raises(EmotionError) as exc:
        mood_emotion("relaxng")
    assert "relax" in str(exc.value)
    assert "did you mean" in str(exc.value)
    assert suggest("hapy")[0] == "happy"
    with pytest.raises(EmotionError) as exc:
        mood_emotion("zzzzqqq")
    assert "emomusic emotions" in str(exc.value)


def test_nearest_moods():
    near = nearest_moods(Emotion(0.61, -0.816), 1)
    assert near[0].word == "calm"


def test_table_file_is_numbers_only():
    doc = json.loads(resources.files("emomusic").joinpath("data/moods.json").read_text())
    assert set(doc["moods"][0]) == {"word", "valence", "arousal", "source", "group"}
