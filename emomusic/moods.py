"""The mood-word table: words with valence-arousal coordinates from published norms.

The table (``emomusic/data/moods.json``) is built by ``scripts/build_moods.py`` from the
NRC-VAD v1 lexicon and Warriner et al. (2013) norms, rescaled to [-1, 1]; each row records
its source. Unknown words raise an error that suggests the closest known ones.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from emomusic.emotion import Emotion
from emomusic.errors import EmotionError


@dataclass(frozen=True)
class Mood:
    word: str
    valence: float
    arousal: float
    source: str
    group: str

    @property
    def emotion(self) -> Emotion:
        return Emotion(self.valence, self.arousal, self.word)

    def to_dict(self) -> dict:
        return {
            "word": self.word,
            "valence": self.valence,
            "arousal": self.arousal,
            "quadrant": self.emotion.quadrant,
            "source": self.source,
            "group": self.group,
        }


@lru_cache(maxsize=1)
def mood_table() -> dict[str, Mood]:
    """All mood words, keyed by lower-case word, in table order."""
    text = resources.files("emomusic").joinpath("data/moods.json").read_text(encoding="utf-8")
    rows = json.loads(text)["moods"]
    return {r["word"]: Mood(r["word"], r["valence"], r["arousal"], r["source"], r["group"]) for r in rows}


def suggest(word: str, n: int = 3) -> list[str]:
    return difflib.get_close_matches(word.lower(), list(mood_table()), n=n, cutoff=0.5)


def mood_emotion(word: str) -> Emotion:
    """The emotion of a mood word; unknown words raise with suggestions."""
    key = word.strip().lower()
    if key.startswith("mood/theme---"):
        key = key[len("mood/theme---"):]
    table = mood_table()
    if key in table:
        return table[key].emotion
    hints = suggest(key)
    hint = f"; did you mean {', '.join(hints)}?" if hints else "; run 'emomusic emotions' for the list"
    raise EmotionError(f"unknown mood word {word!r}{hint}")


def nearest_moods(emotion: Emotion, n: int = 3) -> list[Mood]:
    """The ``n`` mood words closest to ``emotion`` in the valence-arousal plane."""
    return sorted(mood_table().values(), key=lambda m: emotion.distance(m.emotion))[:n]
