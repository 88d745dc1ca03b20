"""Networks of the latent diffusion-GAN (plain ``nn.Module``s; the process is in diffgan.py).

* :class:`Generator` ``G(x_t, z, t, cond, cond_mask) -> x_0``: a transformer over the sequence
  of segment latents. Each position gets its own (valence, arousal) condition, so emotion can
  move inside a piece; ``cond_mask`` False means "no condition" (a learned null embedding),
  which is what classifier-free guidance needs. ``z`` is the GAN noise (Xiao et al. 2022),
  injected into every position.
* :class:`Discriminator` ``D(x_prev, x_t, t, cond, cond_mask) -> logit`` per sequence.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import DiffGANConfig


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (float) timesteps ``t`` (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / max(1, half))
    args = t.float()[:, None] * 10.0 * freqs[None]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    return emb if dim % 2 == 0 else torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)


class CondEmbedding(nn.Module):
    """(B, L, 2) valence-arousal + (B, L) mask -> (B, L, d); masked positions get a learned null vector."""

    def __init__(self, d: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2, d), nn.SiLU(), nn.Linear(d, d))
        self.null = nn.Parameter(torch.zeros(d))

    def forward(self, cond, mask):
        e = self.mlp(cond)
        return torch.where(mask[..., None], e, self.null.expand_as(e))


class _Encoder(nn.Module):
    def __init__(self, d, n_layers, n_heads, seq_len):
        super().__init__()
        layer = nn.TransformerEncoderLayer(d, n_heads, 4 * d, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.layers = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.pos = nn.Parameter(torch.randn(seq_len, d) * 0.02)
        self.norm = nn.LayerNorm(d)

    def forward(self, h):
        return self.norm(self.layers(h + self.pos[: h.shape[1]]))


class Generator(nn.Module):
    def __init__(self, cfg: DiffGANConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.inp = nn.Linear(cfg.latent_dim, d)
        self.t_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.z_mlp = nn.Sequential(nn.Linear(cfg.z_dim, d), nn.SiLU(), nn.Linear(d, d))
        self.cond = CondEmbedding(d)
        self.body = _Encoder(d, cfg.n_layers, cfg.n_heads, cfg.seq_len)
        self.out = nn.Linear(d, cfg.latent_dim)

    def forward(self, x_t, z, t, cond, cond_mask):
        d = self.cfg.d_model
        glob = self.t_mlp(timestep_embedding(t, d)) + self.z_mlp(z)  # (B, d)
        h = self.inp(x_t) + glob[:, None] + self.cond(cond, cond_mask)
        return self.out(self.body(h))


class Discriminator(nn.Module):
    def __init__(self, cfg: DiffGANConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model_disc
        self.inp = nn.Linear(2 * cfg.latent_dim, d)
        self.t_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.cond = CondEmbedding(d)
        self.body = _Encoder(d, cfg.n_layers_disc, cfg.n_heads, cfg.seq_len)
        self.head = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, 1))
        self.proj = nn.Linear(d, d, bias=False)  # projection-discriminator term for the condition

    def forward(self, x_prev, x_t, t, cond, cond_mask):
        c = self.cond(cond, cond_mask)
        h = self.inp(torch.cat([x_prev, x_t], dim=-1)) + self.t_mlp(timestep_embedding(t, self.cfg.d_model_disc))[:, None]
        h = self.body(h + c)
        pooled = h.mean(1)
        return self.head(pooled).squeeze(-1) + (self.proj(pooled) * c.mean(1)).sum(-1) / math.sqrt(h.shape[-1])
