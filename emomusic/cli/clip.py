"""``emomusic clip``: an audio clip for an emotion with MusicGen (+ a LoRA adapter)."""

from __future__ import annotations

import math
import time
from pathlib import Path

import click

from emomusic.cli.common import echo_json, emotion_options, json_option, resolve_emotion, seed_option
from emomusic.errors import EmomusicError


def _looks_like_hub_id(text: str) -> bool:
    from emomusic.clip.loading import _HUB_ID

    return bool(_HUB_ID.match(str(text))) and not str(text).startswith((".", "/", "~"))


@click.command("clip")
@click.option("--model", "model", required=True,
              help="MusicGen checkpoint folder (transformers format), or a hub id with --allow-download.")
@click.option("--adapter", type=click.Path(path_type=Path), default=None, help="LoRA adapter folder (emomusic train musicgen-lora).")
@emotion_options
@click.option("--seconds", "-s", type=float, default=30.0, show_default=True,
              help="Clip length; over the model's window (30 s) uses windowed continuation.")
@click.option("--melody", type=click.Path(path_type=Path), default=None,
              help="MIDI/ABC/MusicXML tune whose chroma conditions a MusicGen-Melody model.")
@click.option("--prompt", type=str, default=None, help="Extra text appended to the emotion prompt.")
@seed_option
@click.option("--sample-rate", type=int, default=None, help="Resample the output (default: the model's rate).")
@click.option("--guidance", type=float, default=3.0, show_default=True, help="Classifier-free guidance scale (<= 1: off).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--allow-download", is_flag=True, help="Allow fetching a hub id (online machines only).")
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True, help="Output .wav file.")
@json_option
def clip(model, adapter, valence, arousal, mood, seconds, melody, prompt, seed, sample_rate, guidance, device,
         threads, allow_download, output, as_json):
    """Generate a WAV clip for an emotion with MusicGen (text prompt from the emotion).

    \b
    emomusic clip --model ./musicgen-small --mood calm --seconds 30 -o calm.wav
    emomusic clip --model ./musicgen-small --adapter ./mood-lora -v -0.5 -a 0.6 -o tense.wav
    emomusic clip --model ./musicgen-melody --melody tune.mid --mood happy -o happy.wav
    """
    emotion = resolve_emotion(valence, arousal, mood)
    if output.suffix.lower() != ".wav":
        raise EmomusicError(f"-o must be a .wav file, got {output.name}")
    if output.exists() and output.is_dir():
        raise EmomusicError(f"-o {output} is a folder; give a .wav file name")
    if not math.isfinite(seconds) or seconds <= 0:
        raise EmomusicError(f"--seconds must be > 0, got {seconds:g}")
    if threads is not None and threads < 1:
        raise EmomusicError(f"--threads must be >= 1, got {threads}")
    from emomusic.atomic import check_target, check_writable_dir
    from emomusic.clip.api import _validate
    from emomusic.clip.loading import check_model_folder
    from emomusic.clip.lora import read_adapter_meta
    from emomusic.clip.prompt import build_prompt

    _validate(emotion, seconds, sample_rate, guidance)
    build_prompt(emotion, prompt)  # prompt length
    check_writable_dir(output.parent if str(output.parent) else Path("."))
    check_target(output)
    if Path(model).exists() or not _looks_like_hub_id(model):
        check_model_folder(model)  # a hub id (e.g. from the local cache) is checked by load_model
    if adapter is not None:
        read_adapter_meta(adapter)
    piece = None
    if melody is not None:
        from emomusic.clip.melody import load_melody

        piece = load_melody(melody)

    import torch

    if threads:
        torch.set_num_threads(threads)
    if device == "cuda" and not torch.cuda.is_available():
        raise EmomusicError("--device cuda: no CUDA GPU is available here (use --device cpu)")
    from emomusic.audio import write_wav
    from emomusic.clip import generate_clip

    info: dict = {}
    t0 = time.time()
    audio, sr = generate_clip(
        emotion, model=model, adapter=adapter, seconds=seconds, melody=piece, prompt=prompt, seed=seed,
        sample_rate=sample_rate, guidance=guidance, device=device, allow_download=allow_download,
        progress=True, info=info,
    )
    elapsed = time.time() - t0
    write_wav(output, audio, sr)
    if as_json:
        echo_json({"output": str(output), "frames": int(audio.shape[0]), "channels": int(audio.shape[1]),
                   "duration": audio.shape[0] / sr, "generation_seconds": round(elapsed, 3), **info})
    else:
        click.echo(f"wrote {output} ({audio.shape[0] / sr:.2f} s at {sr} Hz, {info['windows']} window(s)); prompt: {info['prompt']}")
