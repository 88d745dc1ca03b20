"""Autoregressive baseline: a small decoder-only transformer over miditok REMI tokens.

The approach of EMOPIA (Hung et al. 2021) and midi-emotion (Sulun et al. 2022): an emotion
condition is prepended to a token sequence and a causal transformer predicts the next
token. Here the condition is the same one the diffusion model gets: continuous (valence,
arousal) embedded by a small MLP into one vector that sits at position 0, with condition
dropout (a learned "no emotion" vector) so classifier-free guidance works.

The public entry: :func:`load_baseline` (cached) and :func:`generate`; every name of the
three parts is importable from here too:

* ``baseline_tokens`` - the REMI tokenizer, :class:`TokenGrammar`, Piece <-> ids and
  :func:`load_emopia_tokens` (EMOPIA *train* clips, never val, as token arrays + (v, a)).
* ``baseline_model`` - :class:`BaselineConfig` (``debug`` / ``default`` presets, JSON round trip),
  the ARTransformer network (pre-LN GPT blocks, KV cache) and :class:`Baseline`: network +
  tokenizer, ``generate(emotion, bars, n, seed) -> list[Piece]``, ``save(dir)`` /
  ``Baseline.load(dir)`` (config.json + model.safetensors + tokenizer.json).
* ``baseline_train`` - :func:`train_baseline` (resumable, progress bar, CSV loss log),
  :func:`evaluate_loss`, :func:`write_model_card`.

Sampling is constrained by the REMI grammar (Pitch -> Velocity -> Duration; a note follows a
Position), so every output decodes into a valid piece.
"""

from __future__ import annotations

import os
from pathlib import Path

from emomusic.compose.baseline_model import Baseline, BaselineConfig, build_network
from emomusic.compose.baseline_tokens import (
    PIANO_TOP,
    REMI_SETTINGS,
    TOKENIZER_FILE,
    TokenGrammar,
    decode_ids,
    emopia_clip_emotion,
    encode_piece,
    encode_score,
    load_emopia_tokens,
    make_tokenizer,
    piece_to_score,
    score_to_notes,
    write_tokenizer_config,
)
from emomusic.compose.baseline_train import TrainResult, evaluate_loss, train_baseline, write_model_card
from emomusic.emotion import Emotion
from emomusic.paths import checkpoint_path
from emomusic.piece import Piece

_CACHE: dict[str, Baseline] = {}


def load_baseline(checkpoint: str | os.PathLike | None = None, device: str = "cpu") -> Baseline:
    """Load (and cache) a baseline checkpoint; default the shipped ``emomusic/checkpoints/baseline``."""
    path = str(Path(checkpoint) if checkpoint else checkpoint_path("baseline"))
    key = f"{path}@{device}"
    if key not in _CACHE:
        _CACHE[key] = Baseline.load(path, device=device)
    return _CACHE[key]


def generate(emotion: Emotion, bars: int = 16, n: int = 1, seed: int = 0, checkpoint: str | os.PathLike | None = None,
             guidance: float = 1.0) -> list[Piece]:
    """Generate with the shipped (or given) baseline checkpoint."""
    return load_baseline(checkpoint).generate(emotion, bars=bars, n=n, seed=seed, guidance=guidance)


__all__ = ["PIANO_TOP", "REMI_SETTINGS", "TOKENIZER_FILE", "Baseline", "BaselineConfig", "TokenGrammar", "TrainResult",
           "build_network", "decode_ids", "emopia_clip_emotion", "encode_piece", "encode_score", "evaluate_loss", "generate",
           "load_baseline", "load_emopia_tokens", "make_tokenizer", "piece_to_score", "score_to_notes", "train_baseline",
           "write_model_card", "write_tokenizer_config"]
