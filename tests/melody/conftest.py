"""Fixtures for the melody tests: a debug-size model with random weights, built in code."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def debug_checkpoint(tmp_path_factory):
    import torch

    from emomusic.melody.model import MelodyLM, MelodyLMConfig, save_checkpoint
    from emomusic.melody.tokenizer import Tokenizer

    torch.manual_seed(0)
    tok = Tokenizer()
    model = MelodyLM(MelodyLMConfig.preset("debug", len(tok)))
    path = tmp_path_factory.mktemp("melody_ckpt") / "debug"
    save_checkpoint(model, path, {"tokens": tok.vocab, "preset": "debug"})
    return path


@pytest.fixture
def sampled_specs(monkeypatch):
    """The tune specs ``decode.sample_tunes`` gets (filled as tunes are sampled; sampling unchanged)."""
    import emomusic.melody.decode as dec

    seen = []
    real = dec.sample_tunes

    def spy(model, tok, specs, sampling=None):
        seen.extend(specs)
        return real(model, tok, specs, sampling)

    monkeypatch.setattr(dec, "sample_tunes", spy)
    return seen


TINY_CORPUS = """\
% a tiny multi-tune file built for the tests
X: 1
T:Test Jig
M:6/8
L:1/8
K:G
|:"G"GAB "D"AGF|"G"G2B d2B|"C"cBA "G"BAG|"D"A3 D3|
"G"GAB "D"AGF|"G"G2B d2g|"C"ecA "D"FGA|"G"G3 G3:|

X: 2
T:Test Air
% comment line
M:3/4
L:1/4
Q:1/4=60
K:Ador
w: some lyrics
A B c|e2 d|c B A|G2 E|A B c|e2 g|e d B|A3|

X: 3
T:Test Reel
M:4/4
L:1/8
K:Dmix
P:A
"D"d2fd AdFA|"C"=c2ec GcEG|"D"d2fd Adfa|"C"gec=c "D"d4|
"D"d2fd AdFA|"C"=c2ec GcEG|"D"d2fd Adfa|"C"gec=c "D"d4|

X: 4
T:Sad Song
M:4/4
L:1/4
K:Em
E F G A|B2 A2|G F E D|E4|G A B c|B2 A2|G F D F|E4|
"""
