"""emomusic.nnutil: the shared GPT-style initialisation."""

from __future__ import annotations

import torch
from torch import nn

from emomusic.nnutil import gpt_init


def test_gpt_init_sets_weights_and_biases():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Embedding(500, 64), nn.Linear(64, 400), nn.LayerNorm(400), nn.Linear(400, 300, bias=False))
    ln_before = m[2].weight.clone()
    m.apply(gpt_init)
    for layer in (m[0], m[1], m[3]):
        w = layer.weight.detach()
        assert abs(float(w.std()) - 0.02) < 0.002 and abs(float(w.mean())) < 0.002
    assert torch.count_nonzero(m[1].bias) == 0
    assert torch.equal(m[2].weight, ln_before)  # other layers keep their own initialisation
