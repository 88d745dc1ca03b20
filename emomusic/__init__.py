"""emomusic: turn an emotion into music.

The top-level package is light: importing it (or running ``emomusic --help``) does not
import torch. Neural engines live in subpackages that import torch when used.

Not a medical device: sessions and clips are for listening, research and creative use,
not a treatment.
"""

from emomusic.emotion import Emotion, parse_emotion
from emomusic.errors import EmomusicError

__version__ = "0.1.0"

__all__ = ["Emotion", "EmomusicError", "parse_emotion", "__version__"]
