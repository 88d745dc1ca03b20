"""``emomusic train musicgen-lora``: fine-tune MusicGen with a LoRA adapter on mood-tagged audio."""

from __future__ import annotations

import math
import shlex
from pathlib import Path

import click

from emomusic.cli.common import echo_json, json_option, seed_option
from emomusic.errors import EmomusicError


def _command_line(ctx: click.Context) -> str:
    """The command as run, rebuilt from the parsed options (recorded in the adapter's card)."""
    parts = ["emomusic", "train", "musicgen-lora"]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value is None or value is False or param.name == "as_json":
            continue
        if ctx.get_parameter_source(param.name) == click.core.ParameterSource.DEFAULT:
            continue
        flag = max(param.opts, key=len)
        parts += [flag] if value is True else [flag, str(value)]
    return " ".join(shlex.quote(p) for p in parts)


@click.command("musicgen-lora")
@click.option("--base", required=True, help="MusicGen checkpoint folder (or a hub id with --allow-download).")
@click.option("--data", type=click.Path(path_type=Path), required=True,
              help="TSV in the MTG-Jamendo autotagging layout (TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS...).")
@click.option("--audio-dir", type=click.Path(path_type=Path), required=True, help="Folder the TSV's PATH column is relative to.")
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True, help="Adapter folder to write.")
@click.option("--steps", type=int, default=500, show_default=True)
@click.option("--rank", type=int, default=8, show_default=True, help="LoRA rank.")
@click.option("--alpha", type=float, default=None, help="LoRA alpha (default 2 x rank).")
@click.option("--lr", type=float, default=1e-4, show_default=True)
@click.option("--batch-size", type=int, default=4, show_default=True)
@click.option("--clip-seconds", type=float, default=10.0, show_default=True, help="Training clip length (<= 30 s).")
@click.option("--max-clips", type=int, default=3, show_default=True, help="Clips per track.")
@click.option("--max-tracks", type=int, default=None, help="Use only the first N usable tracks.")
@click.option("--cond-dropout", type=float, default=0.1, show_default=True, help="Share of examples trained without text (keeps guidance working).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@seed_option(help="Random seed.")
@click.option("--save-every", type=int, default=None, help="Also save the adapter every N steps (atomic).")
@click.option("--resume", is_flag=True, help="Continue from the adapter in -o (LoRA weights and step count).")
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--allow-download", is_flag=True, help="Allow fetching a hub id for --base (online machines only).")
@json_option
def train_musicgen_lora(base, data, audio_dir, output, steps, rank, alpha, lr, batch_size, clip_seconds, max_clips,
                        max_tracks, cond_dropout, device, seed, save_every, resume, threads, allow_download, as_json):
    """Fine-tune MusicGen's decoder attention with LoRA on mood-tagged audio.

    Runs on several GPUs with: accelerate launch -m emomusic train musicgen-lora ... --device cuda
    """
    from emomusic.cli.common import positive

    positive("--steps", steps)
    positive("--rank", rank)
    positive("--lr", lr)
    positive("--batch-size", batch_size)
    positive("--clip-seconds", clip_seconds)
    positive("--max-clips", max_clips)
    positive("--max-tracks", max_tracks)
    positive("--save-every", save_every)
    positive("--threads", threads)
    if alpha is not None:
        positive("--alpha", alpha)
    if not (math.isfinite(cond_dropout) and 0 <= cond_dropout < 1):
        raise EmomusicError(f"--cond-dropout must be in [0, 1), got {cond_dropout}")
    from emomusic.atomic import check_writable_dir
    from emomusic.clip.data import read_tsv
    from emomusic.clip.loading import check_model_folder

    from emomusic.cli.clip import _looks_like_hub_id

    if Path(base).exists() or not _looks_like_hub_id(base):
        check_model_folder(base)
    read_tsv(data)
    if not audio_dir.is_dir():
        raise EmomusicError(f"audio folder not found: {audio_dir}")
    check_writable_dir(output.parent if str(output.parent) else Path("."))

    import torch

    if threads:
        torch.set_num_threads(threads)
    from emomusic.clip.train import train_lora

    command = _command_line(click.get_current_context())
    result = train_lora(
        base, data, audio_dir, output, steps=steps, rank=rank, alpha=alpha, lr=lr, batch_size=batch_size,
        clip_seconds=clip_seconds, max_clips=max_clips, max_tracks=max_tracks, cond_dropout=cond_dropout,
        device=device, seed=seed, save_every=save_every, resume=resume, allow_download=allow_download,
        progress=True, command=command,
    )
    if as_json:
        echo_json(result)
    else:
        click.echo(
            f"wrote {output} ({result['steps']} steps, loss {result['loss_before']:.4f} -> {result['loss_after']:.4f}, "
            f"{result['clips']} clips from {result['tracks']} tracks)"
        )
