"""``emomusic train melody``: train the ABC melody language model."""

from __future__ import annotations

from pathlib import Path

import click

from emomusic.cli.common import echo_json, json_option, seed_option


@click.command("melody")
@click.option("--corpus", "corpus", multiple=True, required=True,
              help="ABC file or folder (repeatable); 'music21' adds music21's O'Neill's, Ryan's and Aird's collections.")
@click.option("--preset", type=click.Choice(["debug", "default"]), default="default", show_default=True)
@click.option("--steps", type=int, default=1600, show_default=True, help="Total optimiser steps (a resumed run continues to this).")
@click.option("--batch-size", type=int, default=12, show_default=True)
@click.option("--lr", type=float, default=None, help="Peak learning rate (default 3e-4; 1e-3 for debug).")
@click.option("--eval-every", type=int, default=250, show_default=True)
@click.option("--save-every", type=int, default=500, show_default=True)
@seed_option(help="Random seed.")
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads.")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in -o (weights, optimizer, step).")
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True, help="Checkpoint folder.")
@json_option
def train_melody(corpus, preset, steps, batch_size, lr, eval_every, save_every, seed, threads, resume, output, as_json):
    """Train the melody LM on ABC tunes (labelled Q1..Q4 by the attribute template)."""
    from emomusic.cli.common import positive

    positive("--steps", steps)
    positive("--batch-size", batch_size)
    positive("--eval-every", eval_every)
    positive("--save-every", save_every)
    positive("--threads", threads)
    if lr is not None:
        positive("--lr", lr)
    from emomusic.atomic import check_writable_dir
    from emomusic.melody.corpus import abc_files

    abc_files(corpus)  # fail early on missing paths
    check_writable_dir(output.parent if str(output.parent) else Path("."))

    import torch

    torch.set_num_threads(threads)
    from emomusic.melody.train import TrainOptions, train_melody_model

    opts = TrainOptions(preset=preset, steps=steps, batch_size=batch_size,
                        lr=lr if lr is not None else (1e-3 if preset == "debug" else 3e-4),
                        eval_every=eval_every, save_every=save_every, seed=seed)
    log = (lambda m: click.echo(m, err=True))
    result = train_melody_model(list(corpus), output, opts, resume=resume, progress=True, log=log)
    if as_json:
        echo_json(result)
    else:
        click.echo(f"wrote {output} (step {result['steps']}, loss {result['loss']})")
