"""MODEL_CARD.md writers for the engine's checkpoints."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from emomusic.atomic import atomic_path

LICENCE = (
    "Training data licences: EMOPIA (Hung et al. 2021) is distributed for research and is "
    "**non-commercial**; POP909 (Wang et al. 2020) is for research use; VGMIDI (Ferreira & Whitehead "
    "2019) unlabelled pieces are fan arrangements of game music. These weights are therefore for "
    "research / non-commercial use only."
)


def _write(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _hardware(device: str) -> str:
    """Where training ran, for the card."""
    if device == "cuda":
        try:
            import torch

            return f"GPU: {torch.cuda.get_device_name(0)}"
        except Exception:
            return "GPU"
    try:
        import torch

        return f"CPU, {torch.get_num_threads()} thread(s)"
    except Exception:
        return "CPU"


def write_vae_card(out_dir, res, *, command: str, data: list[str], n_files: int, n_segments: int,
                   device: str = "cpu") -> None:
    out_dir = Path(out_dir)
    cfg = json.loads((out_dir / "config.json").read_text())
    m = res.metrics
    text = f"""# Segment VAE (emomusic symbolic engine, stage 1)

Encodes a {cfg['bars_per_segment']}-bar piano-roll segment (16th-note grid, pitches {cfg['pitch_low']}-{cfg['pitch_high']},
onset / duration / velocity channels) into a {cfg['latent_dim']}-d latent. 1-D conv encoder/decoder
(hidden {cfg['hidden']}), KL annealing to beta={cfg['kl_weight']} with {cfg['free_bits']} free nats per dimension.

- Trained: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, {res.steps} steps of batch {cfg['batch_size']}
  in {res.seconds / 60:.1f} min ({_hardware(device)})
- Command: `{command}`
- Data: {', '.join(data)} ({n_files} files, {n_segments} segments with >= 4 notes; EMOPIA through its
  train split only; 3% of files held out for the numbers below). Random transposition +-{cfg['transpose']}.
- Final training loss: {res.final.get('loss', float('nan')):.2f} (onset BCE {res.final.get('bce', float('nan')):.2f}, KL {res.final.get('kl', float('nan')):.1f} nats){_vae_warm(cfg.get('meta', {}))}

## Reconstruction on held-out segments (posterior mean, onset threshold 0.5, exact step + pitch)

| segments | onset precision | onset recall | onset F1 |
|---|---|---|---|
| {m.get('val_segments', 0)} | {m.get('val_precision', float('nan')):.3f} | {m.get('val_recall', float('nan')):.3f} | {m.get('val_f1', float('nan')):.3f} |

{LICENCE}
"""
    _write(out_dir / "MODEL_CARD.md", text)


def _vae_warm(meta: dict) -> str:
    w = meta.get("init_from")
    if not w:
        return ""
    what = ("the decoder only: the encoder, and so the latent space, is that checkpoint's (encoder sha1 "
            f"`{w.get('encoder_sha1')}`)" if w.get("decoder_only") else "encoder and decoder")
    return (f"\n- Warm start: continues `{w.get('path')}` (weights sha1 `{w.get('sha1')}`, trained {w.get('steps')} "
            f"steps before) with a fresh optimiser; trained {what}")


def write_diffgan_card(out_dir, res, *, command: str, n_files: int, extra: str = "", device: str = "cpu") -> None:
    out_dir = Path(out_dir)
    cfg = json.loads((out_dir / "config.json").read_text())
    meta = cfg.get("meta", {})
    text = f"""# Latent diffusion-GAN (emomusic symbolic engine, stage 2)

Denoising diffusion-GAN (Xiao et al. 2022) over sequences of {cfg['seq_len']} segment latents
(= {cfg['seq_len'] * 2} bars), T={cfg['timesteps']} steps (VP schedule beta {cfg['beta_min']}..{cfg['beta_max']}).
Generator: {cfg['n_layers']}-layer transformer (d={cfg['d_model']}) predicting x0 from (x_t, z, t, per-segment
valence/arousal); discriminator: {cfg['n_layers_disc']}-layer transformer on (x_(t-1), x_t, t, condition),
non-saturating loss + lazy R1 (gamma {cfg['r1_gamma']}, every {cfg.get('r1_every', 1)} steps); the generator also
gets {cfg.get('recon_weight', 0)} x MSE(x0_pred, x0). Condition dropout {cfg['cond_dropout']} for
classifier-free guidance (default guidance {cfg['guidance']}). Shipped weights: EMA ({cfg['ema']}) of the generator.

- Trained: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, {res.steps} steps of batch {cfg['batch_size']}
  in {res.seconds / 60:.1f} min ({_hardware(device)})
- Command: `{command}`{_warm_start_line(meta)}
- Data: {_diffgan_data(cfg, meta, n_files)}
- Final losses: D {res.final.get('d_loss', float('nan')):.3f}, G {res.final.get('g_loss', float('nan')):.3f},
  x0 MSE (normalised latents, diagnostic only) {res.final.get('x0_mse', float('nan')):.3f}
{extra}
{LICENCE}
"""
    _write(out_dir / "MODEL_CARD.md", text)


def _warm_start_line(meta: dict) -> str:
    w = meta.get("init_from")
    if not w:
        return ""
    return (f"\n- Warm start: the generator continues `{w.get('path')}` (weights sha1 `{w.get('sha1')}`, trained "
            f"{w.get('steps')} steps before); fresh discriminator and optimisers, the first {w.get('d_only_steps')} "
            f"steps trained the discriminator only")


def _diffgan_data(cfg: dict, meta: dict, n_files: int) -> str:
    lab, soft = meta.get("labelled_windows"), meta.get("soft_labelled_windows", 0)
    total = meta.get("train_windows")
    text = (f"{n_files} files, {total} windows of {cfg['seq_len']} consecutive segments, transpositions "
            f"{meta.get('transposes')} (latents of the VAE `{meta.get('vae_sha1')}`). Labelled: {lab} windows of "
            f"EMOPIA train clips (val never used), condition = the clip's quadrant centre (+-0.6, +-0.6) + "
            f"N(0, {cfg['cond_jitter']}) jitter.")
    if soft:
        text += (f" Soft-labelled: {soft} windows of unlabelled MIDI, condition = the project's estimator "
                 f"(`emomusic.compose.softlabel`: signed confidence 2P-1 per axis) + the same jitter; each batch "
                 f"draws {cfg.get('labelled_share', 0.35):.0%} of its windows from the labelled ones.")
    rest = (total or 0) - (lab or 0) - (soft or 0)
    if rest > 0:
        text += f" {rest} unlabelled windows train the unconditional branch only."
    return text
