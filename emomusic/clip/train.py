"""LoRA fine-tuning of MusicGen on mood-tagged audio (the music-medicine recipe).

Only the LoRA matrices on the decoder's attention projections train; the T5 text encoder,
EnCodec and the base decoder stay frozen. Each step: a batch of (text, codes) examples, labels
in the delay pattern (:func:`emomusic.clip.data.delay_labels`, shape (batch, time, codebooks)),
loss = MusicGen's per-codebook cross-entropy from ``model(input_ids, attention_mask, labels)``.
The text condition is dropped for ``cond_dropout`` of the examples (attention mask zeroed, as
MusicGen's unconditional input) so classifier-free guidance keeps working after fine-tuning.

Runs through ``accelerate.Accelerator``: one process on ``--device cpu|cuda``, or several GPUs
under ``accelerate launch -m emomusic.cli train musicgen-lora ...``. Saves are atomic (the
adapter folder is replaced whole), every ``save_every`` steps and at the end; ``resume=True``
continues from the adapter already in the output folder (its LoRA weights and step count; the
optimizer restarts).
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from pathlib import Path

from emomusic.errors import EmomusicError


def _check_args(steps, rank, lr, batch_size, clip_seconds, device) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise EmomusicError(f"--steps must be >= 1, got {steps}")
    if not isinstance(rank, int) or not 1 <= rank <= 256:
        raise EmomusicError(f"--rank must be between 1 and 256, got {rank}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise EmomusicError(f"--lr must be > 0, got {lr}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise EmomusicError(f"--batch-size must be >= 1, got {batch_size}")
    if not (isinstance(clip_seconds, (int, float)) and math.isfinite(clip_seconds) and clip_seconds > 0):
        raise EmomusicError(f"--clip-seconds must be > 0, got {clip_seconds}")
    if device not in ("cpu", "cuda"):
        raise EmomusicError(f"--device must be cpu or cuda, got {device!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise EmomusicError("--device cuda: no CUDA GPU is available here (use --device cpu)")


def _batch(loaded, examples, cond_dropout: float, rng: random.Random, device):
    import torch

    from emomusic.clip.data import delay_labels

    tok = loaded.tokenizer(
        [e.text for e in examples], return_tensors="pt", padding=True, truncation=True, max_length=128
    )
    mask = tok["attention_mask"].clone()
    for i in range(len(examples)):
        if cond_dropout > 0 and rng.random() < cond_dropout:
            mask[i] = 0
    codes = torch.stack([e.codes for e in examples])
    base = loaded.model.get_base_model() if hasattr(loaded.model, "get_base_model") else loaded.model
    channels = int(base.config.decoder.audio_channels)
    labels = delay_labels(codes, base.config.decoder.pad_token_id, channels)
    return {"input_ids": tok["input_ids"].to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def evaluate_loss(loaded, examples, batch_size: int = 8, device=None) -> float:
    """Mean training loss over ``examples`` (no condition dropout, no grad)."""
    import torch

    net = loaded.model
    dev = device or next(net.parameters()).device
    was = net.training
    net.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            chunk = examples[i : i + batch_size]
            out = net(**_batch(loaded, chunk, 0.0, random.Random(0), dev))
            total += float(out.loss) * len(chunk)
            n += len(chunk)
    net.train(was)
    return total / max(1, n)


def train_lora(*args, **kwargs) -> dict:
    """Train a LoRA adapter for the MusicGen checkpoint ``base``; returns metrics.

    Arguments as :func:`_train_lora`. Runs inside ``torch.random.fork_rng`` so the caller's
    random state is left as it was."""
    import torch

    devices = list(range(torch.cuda.device_count())) if kwargs.get("device") == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        return _train_lora(*args, **kwargs)


def _train_lora(
    base: str | os.PathLike,
    data: str | os.PathLike,
    audio_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    steps: int = 500,
    rank: int = 8,
    alpha: float | None = None,
    lr: float = 1e-4,
    batch_size: int = 4,
    clip_seconds: float = 10.0,
    max_clips: int = 3,
    max_tracks: int | None = None,
    cond_dropout: float = 0.1,
    device: str = "cpu",
    seed: int = 0,
    save_every: int | None = None,
    resume: bool = False,
    allow_download: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> dict:
    """``base``: checkpoint folder (or hub id with ``allow_download``); ``data``: MTG-Jamendo TSV;
    ``audio_dir``: folder its PATH column is relative to; ``out``: adapter folder."""
    _check_args(steps, rank, lr, batch_size, clip_seconds, device)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EmomusicError(f"-o must be a folder, but {out} is a file")
    if resume and not (out / "adapter_config.json").is_file():
        raise EmomusicError(f"--resume: {out} holds no adapter to resume from")
    if not resume and out.exists() and any(out.iterdir()) and not (out / "adapter_config.json").is_file():
        raise EmomusicError(f"{out} exists and is not an adapter folder; choose a new -o")
    import torch
    from accelerate import Accelerator
    from tqdm.auto import tqdm

    from emomusic.atomic import atomic_dir
    from emomusic.clip.data import build_examples
    from emomusic.clip.loading import load_model
    from emomusic.clip.lora import adapter_metadata, add_lora, load_adapter, read_adapter_meta, save_adapter

    accelerator = Accelerator(cpu=(device == "cpu"))
    torch.manual_seed(seed)
    loaded = load_model(base, device=str(accelerator.device), allow_download=allow_download)
    start_step = 0
    if resume:
        meta = read_adapter_meta(out)
        start_step = int(meta.get("steps", 0))
        load_adapter(loaded, out, trainable=True)
        prev_losses = list(meta.get("loss_history", []))
    else:
        add_lora(loaded, rank=rank, alpha=alpha)
        prev_losses = []
    net = loaded.model
    n_trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    if n_trainable == 0:
        raise EmomusicError("the LoRA adapter has no trainable parameters (no decoder attention layers found)")
    examples, stats = build_examples(
        loaded, data, audio_dir, clip_seconds=clip_seconds, max_clips=max_clips, max_tracks=max_tracks,
        progress=progress and accelerator.is_main_process,
    )
    eval_set = examples[: min(len(examples), 32)]
    loss_before = evaluate_loss(loaded, eval_set, device=accelerator.device)

    params = [p for p in net.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    warmup = max(1, min(50, steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))
    )
    net, optim, sched = accelerator.prepare(net, optim, sched)
    rng = random.Random(seed + accelerator.process_index)
    order: list[int] = []
    losses: list[float] = []
    history = prev_losses
    t0 = time.time()
    bar = tqdm(total=steps, desc="musicgen-lora", unit="step", disable=not (progress and accelerator.is_main_process), file=sys.stderr)

    def save(step_done: int, final: bool, loss_after: float | None = None) -> None:
        accelerator.wait_for_everyone()
        if not accelerator.is_main_process:
            return
        unwrapped = accelerator.unwrap_model(net)
        loaded.model = unwrapped
        meta = adapter_metadata(
            loaded,
            steps=start_step + step_done,
            rank=int(unwrapped.peft_config["default"].r),
            lora_alpha=float(unwrapped.peft_config["default"].lora_alpha),
            lr=lr,
            batch_size=batch_size,
            clip_seconds=float(clip_seconds),
            cond_dropout=cond_dropout,
            seed=seed,
            data=str(data),
            audio_dir=str(audio_dir),
            data_stats=stats,
            loss_before=round(loss_before, 5),
            loss_recent=round(sum(losses[-20:]) / max(1, len(losses[-20:])), 5) if losses else None,
            loss_history=history,
            trainable_parameters=n_trainable,
            processes=accelerator.num_processes,
            device=str(accelerator.device),
            seconds=round(time.time() - t0, 1),
            command=command,
            complete=final,
        )
        if loss_after is not None:
            meta["loss_after"] = round(loss_after, 5)
        with atomic_dir(out) as tmp:
            save_adapter(loaded, tmp, meta)
            if final:
                (tmp / "MODEL_CARD.md").write_text(_card(meta), encoding="utf-8")

    net.train()
    for step in range(steps):
        if len(order) < batch_size:
            extra = list(range(len(examples)))
            rng.shuffle(extra)
            order += extra
        idx, order = order[:batch_size], order[batch_size:]
        batch = _batch(loaded, [examples[i] for i in idx], cond_dropout, rng, accelerator.device)
        loss = net(**batch).loss
        if not torch.isfinite(loss):
            raise EmomusicError(f"training diverged at step {start_step + step + 1} (loss {float(loss)}); lower --lr")
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(params, 1.0)
        optim.step()
        sched.step()
        optim.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if (step + 1) % max(1, steps // 50) == 0 or step + 1 == steps:
            history.append([start_step + step + 1, round(sum(losses[-10:]) / len(losses[-10:]), 5)])
        bar.update(1)
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if save_every and (step + 1) % save_every == 0 and step + 1 < steps:
            save(step + 1, final=False)
    bar.close()
    unwrapped = accelerator.unwrap_model(net)
    loaded.model = unwrapped
    loss_after = evaluate_loss(loaded, eval_set, device=accelerator.device)
    elapsed = time.time() - t0
    save(steps, final=True, loss_after=loss_after)
    return {
        "adapter": str(out),
        "base": str(base),
        "steps": start_step + steps,
        "loss_before": loss_before,
        "loss_after": loss_after,
        "clips": len(examples),
        "tracks": stats["tracks"],
        "trainable_parameters": n_trainable,
        "seconds": round(elapsed, 2),
        "steps_per_second": round(steps / elapsed, 3) if elapsed > 0 else None,
    }


def _card(meta: dict) -> str:
    return f"""# MusicGen LoRA adapter (emomusic)

- Base model: `{meta['base_model']}` ({meta['base_model_type']}, architecture fingerprint `{meta['base_fingerprint']}`)
- Command: `{meta.get('command') or 'emomusic.clip.train.train_lora(...)'}`
- Data: `{meta['data']}` (audio `{meta['audio_dir']}`): {meta['data_stats']}
- Steps: {meta['steps']}, rank {meta['rank']}, alpha {meta['lora_alpha']}, lr {meta['lr']}, batch {meta['batch_size']},
  clips of {meta['clip_seconds']} s, condition dropout {meta['cond_dropout']}, seed {meta['seed']}
- Loss (mean per-codebook cross-entropy on up to 32 training clips): before {meta['loss_before']}, after {meta.get('loss_after')}
- Training time: {meta['seconds']} s on {meta['device']} x {meta['processes']}

Licence: this adapter is a derivative of its base model and of its training audio; it inherits
their terms (facebook/musicgen-* weights are CC-BY-NC 4.0; MTG-Jamendo audio is under Creative
Commons licences, mostly non-commercial, per track).
"""
