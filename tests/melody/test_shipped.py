"""The shipped checkpoint (emomusic/checkpoints/melody) loads, matches the saved tokenizer and writes
a tune both parsers accept; `emomusic melody --mood melancholic -o tune.abc` works as is."""

from __future__ import annotations

import json

import pytest

from emomusic.paths import checkpoint_path

SHIPPED = checkpoint_path("melody")
pytestmark = pytest.mark.skipif(not (SHIPPED / "model.safetensors").exists(), reason="no shipped melody checkpoint")


def test_card_config_and_tokenizer():
    from emomusic.melody.tokenizer import Tokenizer, default_tokenizer_path

    cfg = json.loads((SHIPPED / "config.json").read_text())
    assert cfg["tokens"] == Tokenizer.load(default_tokenizer_path()).vocab
    assert cfg["corpus"]["tunes"] > 1000 and set(cfg["corpus"]["quadrants"]) == {"Q1", "Q2", "Q3", "Q4"}
    card = (SHIPPED / "MODEL_CARD.md").read_text()
    assert "GPL" in card and "emomusic train melody" in card
    assert (SHIPPED / "model.safetensors").stat().st_size < 10_000_000
    assert not (SHIPPED / "optimizer.safetensors").exists()


def test_done_when(tmp_path):
    from emomusic.cli import main
    from emomusic.melody.validate import check_abc

    out = tmp_path / "tune.abc"
    try:
        main(["melody", "--mood", "melancholic", "-o", str(out)])
    except SystemExit as e:  # main() exits only on errors
        assert e.code in (0, None)
    text = out.read_text()
    assert check_abc(text, n_bars=16, expand=True) is None  # the repeats played: 16 bars
    assert "K:" in text and "Q:1/4=" in text
