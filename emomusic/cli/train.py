"""``emomusic train ...``: one subcommand per model, each in the module of its engine."""

from __future__ import annotations

import click

from emomusic.cli import LazyGroup

TRAIN_COMMANDS = {
    "vae": ("emomusic.cli.train_compose", "train_vae", "Train the segment VAE (symbolic engine, stage 1)."),
    "diffgan": ("emomusic.cli.train_compose", "train_diffgan", "Train the latent diffusion-GAN (symbolic engine, stage 2)."),
    "baseline": ("emomusic.cli.train_compose", "train_baseline", "Train the autoregressive transformer baseline."),
    "melody": ("emomusic.cli.train_melody", "train_melody", "Train the ABC melody language model."),
    "musicgen-lora": ("emomusic.cli.train_musicgen", "train_musicgen_lora", "Fine-tune MusicGen with a LoRA adapter on mood-tagged audio."),
}


@click.group(cls=LazyGroup, lazy=TRAIN_COMMANDS)
def train() -> None:
    """Train emomusic's models. Data paths are arguments; nothing is downloaded."""
