"""Small torch helpers shared by the engines' networks (imports torch: neural code only)."""

from __future__ import annotations

from torch import nn


def gpt_init(module: nn.Module) -> None:
    """GPT-2 style initialisation, for ``model.apply(gpt_init)``: N(0, 0.02) weights of linear and
    embedding layers, zero biases (a tied output head shares its embedding's weights)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
