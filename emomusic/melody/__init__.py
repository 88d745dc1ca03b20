"""The attribute-template melody path: emotion -> ABC melodies that always parse.

``generate_melodies(emotion, bars=16, n=1, seed=0, chords=False, meter=None, key=None,
tempo=None, checkpoint=None) -> list[Tune]``; see :mod:`emomusic.melody.api`. Importing
this package does not import torch or music21 (they load when a melody is generated).
"""

from emomusic.melody.api import Tune, generate_melodies, transpose_tune

__all__ = ["Tune", "generate_melodies", "transpose_tune"]
