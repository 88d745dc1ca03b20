"""Segment VAE: a 1-D convolutional encoder/decoder over piano-roll segments.

The roll (3 channels x T steps x P pitches) is read as a sequence over time whose features
are the 3 x P (channel, pitch) cells; two stride-2 convolutions reduce 32 steps to 8, and a
linear layer gives the posterior's mean and log-variance. The decoder mirrors it. Output
channel 0 holds onset logits, 1 and 2 durations and velocities (sigmoid) read at onsets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import VAEConfig


class ResBlock1d(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.net = nn.Sequential(nn.GroupNorm(8 if ch % 8 == 0 else 1, ch), nn.GELU(), nn.Conv1d(ch, ch, 3, padding=1),
                                 nn.GroupNorm(8 if ch % 8 == 0 else 1, ch), nn.GELU(), nn.Conv1d(ch, ch, 3, padding=1))

    def forward(self, x):
        return x + self.net(x)


class SegmentVAE(nn.Module):
    """Plain network: ``encode(x) -> (mu, logvar)``, ``decode(z) -> raw outputs (B, 3, T, P)``."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        c_in, h, T = 3 * cfg.n_pitches, cfg.hidden, cfg.n_steps
        self.t_lat = T // 4
        self.enc = nn.Sequential(
            nn.Conv1d(c_in, h, 3, padding=1), ResBlock1d(h),
            nn.Conv1d(h, h, 4, stride=2, padding=1), ResBlock1d(h),
            nn.Conv1d(h, h, 4, stride=2, padding=1), ResBlock1d(h), nn.GELU(),
        )
        self.to_stats = nn.Linear(h * self.t_lat, 2 * cfg.latent_dim)
        self.from_z = nn.Linear(cfg.latent_dim, h * self.t_lat)
        self.dec = nn.Sequential(
            ResBlock1d(h),
            nn.ConvTranspose1d(h, h, 4, stride=2, padding=1), ResBlock1d(h),
            nn.ConvTranspose1d(h, h, 4, stride=2, padding=1), ResBlock1d(h), nn.GELU(),
            nn.Conv1d(h, c_in, 3, padding=1),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = x.shape[0]
        h = self.enc(x.permute(0, 1, 3, 2).reshape(b, -1, self.cfg.n_steps))  # (B, 3P, T)
        mu, logvar = self.to_stats(h.flatten(1)).chunk(2, dim=-1)
        return mu, logvar.clamp(-12, 6)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        b = z.shape[0]
        h = self.from_z(z).view(b, self.cfg.hidden, self.t_lat)
        out = self.dec(h)  # (B, 3P, T)
        return out.view(b, 3, self.cfg.n_pitches, self.cfg.n_steps).permute(0, 1, 3, 2)


def decode_probs(raw: torch.Tensor) -> torch.Tensor:
    """Raw decoder output -> (onset probability, duration, velocity) in [0, 1]."""
    return torch.sigmoid(raw)


def vae_loss(net: SegmentVAE, x: torch.Tensor, step: int, generator: torch.Generator | None = None) -> dict:
    """Losses of one batch: onset BCE + masked duration/velocity MSE + annealed, free-bits KL."""
    cfg = net.cfg
    mu, logvar = net.encode(x)
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    z = mu + torch.exp(0.5 * logvar) * eps
    raw = net.decode(z)
    onset = x[:, 0]
    pos_w = torch.tensor(cfg.onset_pos_weight, device=x.device)
    bce = F.binary_cross_entropy_with_logits(raw[:, 0], onset, pos_weight=pos_w, reduction="none").sum((1, 2)).mean()
    mask = onset
    n_on = mask.sum().clamp_min(1.0)
    dur_se = ((torch.sigmoid(raw[:, 1]) - x[:, 1]) ** 2 * mask).sum()
    vel_se = ((torch.sigmoid(raw[:, 2]) - x[:, 2]) ** 2 * mask).sum()
    dur, vel = dur_se / n_on, vel_se / n_on  # per-onset errors (logged)
    kl_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean(0)  # (D,)
    kl = torch.clamp(kl_dim, min=cfg.free_bits).sum()
    beta = cfg.kl_weight * min(1.0, (step + 1) / max(1, cfg.kl_anneal_steps))
    # duration / velocity: squared errors summed over a segment's onsets (like the BCE, which is
    # summed over cells), weighted by attr_weight; velocity carries much of a piece's arousal
    b = x.shape[0]
    loss = bce + cfg.attr_weight * (dur_se + vel_se) / b + beta * kl
    return {"loss": loss, "bce": bce.detach(), "dur": dur.detach(), "vel": vel.detach(), "kl": kl_dim.sum().detach()}


@torch.no_grad()
def onset_scores(net: SegmentVAE, x: torch.Tensor, threshold: float = 0.5) -> dict:
    """Reconstruction from the posterior mean: onset precision / recall / F1 (exact step and pitch)."""
    mu, _ = net.encode(x)
    pred = torch.sigmoid(net.decode(mu)[:, 0]) >= threshold
    true = x[:, 0] > 0.5
    tp = (pred & true).sum().item()
    fp = (pred & ~true).sum().item()
    fn = (~pred & true).sum().item()
    p = tp / max(1, tp + fp)
    r = tp / max(1, tp + fn)
    return {"precision": p, "recall": r, "f1": 2 * p * r / max(1e-9, p + r), "n_onsets": int(tp + fn)}
