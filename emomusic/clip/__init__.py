"""Audio clips with MusicGen (transformers) and LoRA adapters (peft).

``generate_clip(emotion, model=..., ...)`` is the API; ``emomusic clip`` and
``emomusic train musicgen-lora`` are the commands. torch/transformers are imported lazily.
"""

from __future__ import annotations

from emomusic.clip.api import generate_clip

__all__ = ["generate_clip"]
