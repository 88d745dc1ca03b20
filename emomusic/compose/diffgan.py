"""Denoising diffusion-GAN (Xiao et al. 2022) over sequences of segment latents.

:class:`Schedule` is the discretised variance-preserving schedule of Xiao et al. with ``T``
steps (T=4 by default): ``alpha_bar`` from ``beta_min``/``beta_max``. It has a
``set_timesteps(steps)`` / ``step(x0_pred, x_t, k, k_prev, noise)`` pair like a diffusers
scheduler.

:class:`DiffusionGAN` owns the generator, the discriminator and the schedule:

* ``forward(batch)`` - the losses of one training step: ``{"d_loss", "g_loss", ...}``
  (the train loop steps the two optimisers);
* ``sample(cond, n, generator=, steps=, guidance=, known=, known_mask=)`` - latents.

Training step (one timestep ``k`` in 1..T per sequence): real pair ``(x_{k-1}, x_k)`` from the
forward process; the generator predicts ``x_0`` from ``(x_k, z, k, c)`` and a fake
``x_{k-1}`` is drawn from the posterior ``q(x_{k-1} | x_k, x_0')``. The discriminator sees
``(x_{k-1}, x_k, k, c)``: non-saturating GAN loss, R1 penalty on real.

Sampling with fewer steps than trained uses a subset of the trained timesteps and the exact
Gaussian posterior ``q(x_j | x_k, x_0)`` between them (re-spacing); more steps than trained
is refused (the generator has never seen the extra noise levels).

Classifier-free guidance acts on the generator's ``x_0`` prediction with the same ``z``:
``x0 = x0_uncond + g * (x0_cond - x0_uncond)``; ``g = 1`` is plain conditional sampling.

Inpainting (``known``): positions where ``known_mask`` is True are replaced at every step by
``q(x_k | known)``, i.e. re-noised known latents, so the generator continues them; this is how
pieces longer than ``seq_len`` segments are made (windowed continuation).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emomusic.errors import EmomusicError

from .config import DiffGANConfig
from .denoiser import Discriminator, Generator


def randn(shape, generator=None, device=None) -> torch.Tensor:
    """``torch.randn(shape, generator=generator)``; ``generator`` may also be a list with one
    generator per batch row (``shape[0]``): row ``i`` is then what ``torch.randn((1, *shape[1:]),
    generator=generator[i])`` gives, so a row of a batch draws exactly what it would alone."""
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise EmomusicError(f"{len(generator)} generators for a batch of {shape[0]}")
        rest = tuple(shape[1:])
        return torch.cat([torch.randn((1, *rest), generator=g, device=device) for g in generator])
    return torch.randn(shape, generator=generator, device=device)


def generators(seed, device="cpu"):
    """A seeded ``torch.Generator`` for an int ``seed``; for a list of seeds, one per batch row
    (see :func:`randn`)."""
    if isinstance(seed, (list, tuple)):
        return [torch.Generator(device=device).manual_seed(int(s)) for s in seed]
    return torch.Generator(device=device).manual_seed(int(seed))


def _math_attention(enabled: bool):
    import contextlib

    if not enabled:
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.MATH])


class Schedule:
    def __init__(self, timesteps: int = 4, beta_min: float = 0.1, beta_max: float = 20.0, eps_small: float = 1e-3):
        self.T = int(timesteps)
        t = np.arange(0, self.T + 1, dtype=np.float64) / self.T
        t = t * (1.0 - eps_small) + eps_small
        log_mean = -0.25 * t**2 * (beta_max - beta_min) - 0.5 * t * beta_min
        ab = np.exp(2.0 * log_mean)  # alpha_bar at k = 0..T (k=0: almost clean)
        ab[0] = 1.0
        self.alpha_bar = torch.tensor(ab, dtype=torch.float32)
        self.timesteps = list(range(self.T, 0, -1))

    def set_timesteps(self, steps: int) -> list[int]:
        """The trained timesteps used for sampling with ``steps`` steps (descending)."""
        if not isinstance(steps, int) or steps < 1:
            raise EmomusicError(f"steps must be a whole number >= 1, got {steps!r}")
        if steps > self.T:
            raise EmomusicError(f"this model was trained with {self.T} denoising steps; use --steps 1..{self.T}")
        ks = np.unique(np.round(np.linspace(self.T, 1, steps)).astype(int))[::-1]
        self.timesteps = [int(k) for k in ks]
        return self.timesteps

    def ab(self, k, device=None):
        return self.alpha_bar.to(device)[k]

    def q_sample(self, x0, k, noise):
        """x_k ~ q(x_k | x_0); ``k`` is a LongTensor (B,)."""
        a = self.ab(k, x0.device).view(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def q_step(self, x_prev, k, noise):
        """x_k ~ q(x_k | x_{k-1})."""
        ab = self.alpha_bar.to(x_prev.device)
        alpha = (ab[k] / ab[k - 1]).view(-1, *([1] * (x_prev.dim() - 1)))
        return alpha.sqrt() * x_prev + (1 - alpha).sqrt() * noise

    def posterior(self, x0, x_k, k: torch.Tensor, j: torch.Tensor, noise):
        """x_j ~ q(x_j | x_k, x_0) for j < k (Gaussian forward process, any gap)."""
        ab = self.alpha_bar.to(x0.device)
        shape = (-1, *([1] * (x0.dim() - 1)))
        ab_k, ab_j = ab[k].view(shape), ab[j].view(shape)
        a_kj = ab_k / ab_j  # alpha from j to k
        var = (1 - a_kj) * (1 - ab_j) / (1 - ab_k)
        mean = (ab_j.sqrt() * (1 - a_kj) / (1 - ab_k)) * x0 + (a_kj.sqrt() * (1 - ab_j) / (1 - ab_k)) * x_k
        return mean + var.clamp_min(0).sqrt() * noise

    def step(self, x0_pred, x_k, k: int, k_prev: int, noise):
        """One sampling step from timestep ``k`` to ``k_prev`` (0 returns the prediction)."""
        if k_prev <= 0:
            return x0_pred
        b = x0_pred.shape[0]
        kk = torch.full((b,), k, dtype=torch.long, device=x0_pred.device)
        jj = torch.full((b,), k_prev, dtype=torch.long, device=x0_pred.device)
        return self.posterior(x0_pred, x_k, kk, jj, noise)


class DiffusionGAN(nn.Module):
    def __init__(self, cfg: DiffGANConfig, with_discriminator: bool = True):
        super().__init__()
        self.cfg = cfg
        self.G = Generator(cfg)
        self.D = Discriminator(cfg) if with_discriminator else None
        self.schedule = Schedule(cfg.timesteps, cfg.beta_min, cfg.beta_max)
        # latent normalisation (set from the training data; saved with the weights)
        self.register_buffer("latent_mean", torch.zeros(cfg.latent_dim))
        self.register_buffer("latent_std", torch.ones(cfg.latent_dim))

    # -- training ---------------------------------------------------------------------------------
    def _drop_mask(self, b, L, device, generator):
        keep = torch.rand(b, generator=generator, device=device) >= self.cfg.cond_dropout
        return keep[:, None].expand(b, L)

    def forward(self, batch: dict, generator: torch.Generator | None = None, r1: bool = True, r1_scale: float = 1.0) -> dict:
        """Losses for one step. ``batch``: ``x0`` (B, L, D) normalised latents, ``cond`` (B, L, 2),
        optional ``cond_mask`` (B, L) bool (False = unlabelled)."""
        x0, cond = batch["x0"], batch["cond"]
        b, L, _ = x0.shape
        dev = x0.device
        mask = self._drop_mask(b, L, dev, generator)
        if "cond_mask" in batch:
            mask = mask & batch["cond_mask"]
        k = torch.randint(1, self.cfg.timesteps + 1, (b,), generator=generator, device=dev)
        n1 = torch.randn(x0.shape, generator=generator, device=dev)
        n2 = torch.randn(x0.shape, generator=generator, device=dev)
        x_prev = self.schedule.q_sample(x0, k - 1, n1)
        x_k = self.schedule.q_step(x_prev, k, n2)
        # discriminator on real (+ R1)
        x_prev_r = x_prev.detach().requires_grad_(r1)
        with _math_attention(r1):  # R1 needs a double backward, which fused attention lacks
            d_real = self.D(x_prev_r, x_k, k, cond, mask)
        d_loss_real = F.softplus(-d_real).mean()
        r1_pen = torch.zeros((), device=dev)
        if r1 and self.cfg.r1_gamma > 0:
            with _math_attention(True):
                (grad,) = torch.autograd.grad(d_real.sum(), x_prev_r, create_graph=True)
            r1_pen = grad.pow(2).flatten(1).sum(1).mean()
        # fake
        z = torch.randn(b, self.cfg.z_dim, generator=generator, device=dev)
        x0_pred = self.G(x_k, z, k.float(), cond, mask)
        n3 = torch.randn(x0.shape, generator=generator, device=dev)
        x_prev_f = self.schedule.posterior(x0_pred, x_k, k, k - 1, n3)
        d_fake_for_d = self.D(x_prev_f.detach(), x_k, k, cond, mask)
        d_loss = d_loss_real + F.softplus(d_fake_for_d).mean() + 0.5 * self.cfg.r1_gamma * r1_scale * r1_pen
        d_fake_for_g = self.D(x_prev_f, x_k, k, cond, mask)
        g_loss = F.softplus(-d_fake_for_g).mean()
        rec = F.mse_loss(x0_pred, x0)
        if self.cfg.recon_weight > 0:
            g_loss = g_loss + self.cfg.recon_weight * rec
        return {"d_loss": d_loss, "g_loss": g_loss, "r1": r1_pen.detach(), "x0_mse": rec.detach()}

    # -- sampling ----------------------------------------------------------------------------------
    def _predict_x0(self, x_k, z, k: int, cond, guidance: float, valence_guidance: float = 0.0):
        b, L, _ = x_k.shape
        t = torch.full((b,), float(k), device=x_k.device)
        on = torch.ones(b, L, dtype=torch.bool, device=x_k.device)
        xs, zs, ts, cs, ms = [x_k], [z], [t], [cond], [on]
        if guidance != 1.0:
            xs.append(x_k), zs.append(z), ts.append(t), cs.append(cond), ms.append(~on)
        if valence_guidance:
            mirrored = torch.stack([-cond[..., 0], cond[..., 1]], dim=-1)
            xs.append(x_k), zs.append(z), ts.append(t), cs.append(mirrored), ms.append(on)
        out = self.G(torch.cat(xs), torch.cat(zs), torch.cat(ts), torch.cat(cs), torch.cat(ms)).chunk(len(xs))
        x_c = out[0]
        x0 = x_c if guidance == 1.0 else out[1] + guidance * (x_c - out[1])
        if valence_guidance:
            # contrastive guidance away from the mirrored valence (-v, a): amplifies what separates
            # pleasant from unpleasant at the same arousal; vanishes as v -> 0, so sweeps stay monotonic
            x0 = x0 + valence_guidance * (x_c - out[-1])
        return x0

    @torch.no_grad()
    def sample(self, cond: torch.Tensor, n: int | None = None, generator: torch.Generator | None = None,
               steps: int | None = None, guidance: float | None = None, known: torch.Tensor | None = None,
               known_mask: torch.Tensor | None = None, valence_guidance: float | None = None,
               init: torch.Tensor | None = None, start: int | None = None) -> torch.Tensor:
        """Normalised latents (B, L, D). ``cond``: (B, L, 2), (L, 2) or (2,) (broadcast to ``n``).

        ``valence_guidance`` (default: the config's) adds ``w * (x0(v, a) - x0(-v, a))``.
        ``init`` (B, L, D) with ``start`` (a trained timestep 1..T): begin from ``init`` re-noised
        to ``start`` and run only the steps from there (SDEdit: a variation of ``init`` that
        keeps more of it the lower ``start`` is)."""
        cfg = self.cfg
        steps = cfg.timesteps if steps is None else steps
        guidance = cfg.guidance if guidance is None else float(guidance)
        vg = cfg.valence_guidance if valence_guidance is None else float(valence_guidance)
        if not np.isfinite(vg) or vg < 0:
            raise EmomusicError(f"valence guidance must be a finite number >= 0, got {vg}")
        if not np.isfinite(guidance) or guidance < 0:
            raise EmomusicError(f"guidance must be a finite number >= 0, got {guidance}")
        dev = self.latent_mean.device
        cond = torch.as_tensor(cond, dtype=torch.float32, device=dev)
        if cond.dim() == 1:
            cond = cond[None, None].expand(n or 1, cfg.seq_len, 2)
        elif cond.dim() == 2:
            cond = cond[None].expand(n or 1, *cond.shape)
        b, L, _ = cond.shape
        if L > cfg.seq_len:
            raise EmomusicError(f"at most {cfg.seq_len} segments per window, got {L}")
        ks = Schedule(cfg.timesteps, cfg.beta_min, cfg.beta_max).set_timesteps(steps)
        x = randn((b, L, cfg.latent_dim), generator, dev)
        if init is not None:
            if start is None or not 1 <= int(start) <= cfg.timesteps:
                raise EmomusicError(f"start must be a timestep in 1..{cfg.timesteps}, got {start!r}")
            ks = [k for k in ks if k < int(start)]
            ks = [int(start)] + ks
            x = self.schedule.q_sample(init.to(dev), torch.full((b,), int(start), dtype=torch.long, device=dev), x)
        for i, k in enumerate(ks):
            if known is not None:
                kt = torch.full((b,), k, dtype=torch.long, device=dev)
                noisy = self.schedule.q_sample(known, kt, randn(x.shape, generator, dev))
                x = torch.where(known_mask[..., None], noisy, x)
            z = randn((b, cfg.z_dim), generator, dev)
            x0 = self._predict_x0(x, z, k, cond, guidance, vg)
            k_prev = ks[i + 1] if i + 1 < len(ks) else 0
            x = self.schedule.step(x0, x, k, k_prev, randn(x.shape, generator, dev))
        if known is not None:
            x = torch.where(known_mask[..., None], known, x)
        return x

    def normalise(self, mu):
        return (mu - self.latent_mean) / self.latent_std

    def denormalise(self, x):
        return x * self.latent_std + self.latent_mean
