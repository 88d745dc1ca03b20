"""The shipped checkpoint (emomusic/checkpoints/melody) loads, matches the saved tokenizer and writes
a tune both parsers accept; `emomusic melody --mood melancholic -o tune.abc` works as is."""

from __future__ import annotations

import json
import shutil

import pytest

from emomusic.paths import checkpoint_path

SHIPPED = checkpoint_path("melody")  # shipped with the package: missing or broken fails, never skips


def test_card_config_and_tokenizer():
    from emomusic.melody.tokenizer import Tokenizer, default_tokenizer_path

    cfg = json.loads((SHIPPED / "config.json").read_text())
    assert cfg["tokens"] == Tokenizer.load(default_tokenizer_path()).vocab
    assert cfg["corpus"]["tunes"] > 1000 and set(cfg["corpus"]["quadrants"]) == {"Q1", "Q2", "Q3", "Q4"}
    card = (SHIPPED / "MODEL_CARD.md").read_text()
    assert "GPL" in card and "emomusic train melody" in card
    assert (SHIPPED / "model.safetensors").stat().st_size < 10_000_000
    assert not (SHIPPED / "optimizer.safetensors").exists()


def test_shipped_contour_prior():
    """The shipped config holds the training tunes' contour transitions and the decoder's fitted
    bonus table (scripts/melody_contour.py), and the fit brought the decoder closer to the corpus."""
    from emomusic.melody.contour import N_CLASSES, N_STATES, ContourPrior

    entry = json.loads((SHIPPED / "config.json").read_text())["contour"]
    assert entry["tunes"] > 1000 and sum(map(sum, entry["counts"])) > 100_000
    assert len(entry["bonus"]) == N_STATES and {len(r) for r in entry["bonus"]} == {N_CLASSES}
    dist = entry["fit"]["distance"]
    assert dist[-1] < dist[0] / 2
    assert ContourPrior.from_config({"contour": entry}) is not None


@pytest.mark.skipif(shutil.which("abc2midi") is None, reason="abc2midi (Debian package abcmidi) is not installed")
def test_done_when(tmp_path):
    from emomusic.cli import main
    from emomusic.melody.validate import check_abc

    out = tmp_path / "tune.abc"
    try:
        main(["melody", "--mood", "melancholic", "-o", str(out)])
    except SystemExit as e:  # main() exits only on errors
        assert e.code in (0, None)
    text = out.read_text()
    assert check_abc(text, n_bars=16, expand=True, missing_ok=False) is None  # the repeats played: 16 bars
    assert "K:" in text and "Q:1/4=" in text
