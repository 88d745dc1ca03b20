"""MusicGen clip speed: decoder steps per second and real-time factor, plus LoRA training steps/s.

    python benchmarks/clip_speed.py                      # the tiny random model, built in a temp dir
    python benchmarks/clip_speed.py --model ./musicgen-small --seconds 10 --device cuda

Prints a Markdown table. Generation runs with classifier-free guidance (batch of 2 per step, as
MusicGen's default). ``--threads`` sets torch's CPU threads (default 1: the project machine is
shared). Never run as a test.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=None, help="MusicGen folder (default: build the tiny model)")
    ap.add_argument("--seconds", type=float, nargs="+", default=[5.0, 20.0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from emomusic.clip import generate_clip
    from emomusic.clip.loading import load_model
    from emomusic.clip.tiny import count_parameters, save_tiny_model, write_toy_dataset
    from emomusic.clip.train import train_lora
    from emomusic.emotion import parse_emotion

    tmp = Path(tempfile.mkdtemp(prefix="clipbench."))
    model_dir = Path(args.model) if args.model else save_tiny_model(tmp / "tiny")
    lm = load_model(model_dir, device=args.device)
    params = count_parameters(lm.model)["total"]
    print(f"model: {model_dir} ({lm.model_type}, {params / 1e6:.2f} M parameters, {lm.sample_rate} Hz, "
          f"{lm.frame_rate:g} frames/s), device {args.device}, torch threads {args.threads}\n")
    print("| clip (s) | windows | decoder steps | wall (s) | steps/s | x real time |")
    print("|---:|---:|---:|---:|---:|---:|")
    e = parse_emotion("calm")
    generate_clip(e, model=lm, seconds=1.0, seed=0)  # warm-up
    for secs in args.seconds:
        best = None
        for r in range(args.repeats):
            info = {}
            t = time.perf_counter()
            generate_clip(e, model=lm, seconds=secs, seed=r, info=info)
            dt = time.perf_counter() - t
            best = dt if best is None else min(best, dt)
        steps = info["decoder_steps"]
        print(f"| {secs:g} | {info['windows']} | {steps} | {best:.2f} | {steps / best:.0f} | {secs / best:.2f} |")
    if args.train_steps and not args.model:
        tsv = write_toy_dataset(tmp / "toy", n_tracks=8, seconds=2.0)
        m = train_lora(model_dir, tsv, tmp / "toy" / "audio", tmp / "lora", steps=args.train_steps, rank=8,
                       lr=3e-3, batch_size=4, clip_seconds=1.0, max_clips=2, device=args.device, progress=False)
        print(f"\nLoRA training (batch 4 x 1 s clips, rank 8): {m['steps_per_second']:.1f} steps/s, "
              f"loss {m['loss_before']:.3f} -> {m['loss_after']:.3f} in {m['steps']} steps")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
