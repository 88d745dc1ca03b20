"""Tiny data and debug checkpoints built in code for the engine's tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

QUADRANT_VA = [(0.6, 0.6), (-0.6, 0.6), (-0.6, -0.6), (0.6, -0.6)]


def tiny_items(n_files: int = 8, bars: int = 12, seed: int = 0):
    """(name, (v, a), notes (N, 4)) triples: arpeggios + bass, one quadrant label per file."""
    rng = np.random.default_rng(seed)
    items = []
    for f in range(n_files):
        root = 48 + int(rng.integers(0, 12))
        minor = f % 2
        third = 3 if minor else 4
        rows = []
        for b in range(bars):
            chord = [root, root + third, root + 7, root + 12]
            for i in range(8):  # eighth-note arpeggio
                rows.append((chord[i % 4] + 12, b * 4 + i * 0.5, 0.5, 60 + 10 * (f % 3)))
            rows.append((root - 12 + (b % 2) * 7, b * 4, 2.0, 70))
        items.append((f"Q{f % 4 + 1}_tiny{f}_1.mid", QUADRANT_VA[f % 4], np.array(rows, np.float32)))
    return items


def tiny_store(n_files: int = 8, bars: int = 12):
    from emomusic.compose.config import VAEConfig
    from emomusic.compose.data import store_from_notes

    cfg = VAEConfig.preset("debug")
    return store_from_notes(tiny_items(n_files, bars), cfg.segment_beats, cfg.steps_per_beat)


def make_debug_checkpoint(root: Path, vae_steps: int = 2, dg_steps: int = 2) -> Path:
    """Train the debug VAE and diffgan for a couple of steps into ``root/vae`` and ``root/diffgan``."""
    import torch

    from emomusic.compose.config import DiffGANConfig, VAEConfig
    from emomusic.compose.train import train_diffgan, train_vae

    torch.set_num_threads(1)
    store = tiny_store()
    vcfg = VAEConfig.preset("debug")
    train_vae(store, root / "vae", vcfg, steps=vae_steps, progress=False, held_share=0.25)
    dcfg = DiffGANConfig.preset("debug")
    dcfg.latent_dim = vcfg.latent_dim
    train_diffgan(store, root / "vae", root / "diffgan", dcfg, steps=dg_steps, progress=False, transposes=(0, 1))
    return root
