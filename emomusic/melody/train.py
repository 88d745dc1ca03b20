"""Training the melody LM: corpus -> labelled, balanced token sequences -> next-token loss.

Windows are the control prefix plus a run of whole bars from anywhere in a tune, at their
true positions (rotary attention), matching the decoder's sliding window. The loss is on
the tune body only (the controls are given, not predicted). Checkpoints are written
atomically with the optimizer state next to them, so ``resume`` continues a run.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

from emomusic.errors import CheckpointError, EmomusicError
from emomusic.melody.corpus import augment, build_corpus, label_tunes, quadrant_counts, to_bin
from emomusic.melody.tokenizer import N_PREFIX, Controls, Tokenizer


@dataclass
class TrainOptions:
    preset: str = "default"
    steps: int = 1600
    batch_size: int = 12
    lr: float = 3e-4
    warmup: int = 100
    eval_every: int = 250
    save_every: int = 500
    seed: int = 0
    val_fraction: float = 0.05
    max_per_tune: int = 12


def controls_for(t, stats: dict, chords: bool) -> Controls:
    f = t.features
    return Controls(t.label, to_bin(f["mean_pitch"], stats["register_edges"]), to_bin(f["pitch_sd"], stats["sd_edges"]),
                    to_bin(f["density"], stats["density_edges"]), chords)


def _is_val(t, fraction: float) -> bool:
    h = int(hashlib.sha1(f"{t.source}|{t.title}".encode()).hexdigest()[:8], 16)
    return (h % 10_000) < fraction * 10_000


def prepare(paths, tok: Tokenizer, opts: TrainOptions, progress: bool = False):
    """(train sequences, validation sequences, stats, summary). ``stats`` also holds the training
    tunes' contour transitions (``stats["contour"]``, :func:`emomusic.melody.contour.corpus_entry`)
    and pitch-class profiles per mode (``stats["profiles"]``, :func:`emomusic.melody.profiles.mode_profiles`),
    which the decoder's priors read (saved as the config's ``contour`` and ``profiles`` entries)."""
    tunes = build_corpus(paths, progress=progress)
    if len(tunes) < 2:
        raise EmomusicError(f"the corpus gave only {len(tunes)} usable tunes; need at least 2")
    stats = label_tunes(tunes)
    val = [t for t in tunes if _is_val(t, opts.val_fraction)]
    train = [t for t in tunes if not _is_val(t, opts.val_fraction)]
    if not train:
        train, val = tunes, []
    if not val:
        val = train[:1]
    from emomusic.melody.contour import corpus_entry

    from emomusic.melody.profiles import mode_profiles

    stats = dict(stats, contour=corpus_entry(train), profiles=mode_profiles(train))
    rng = random.Random(opts.seed)
    aug = augment(train, max_per_tune=opts.max_per_tune, seed=opts.seed)
    train_seqs = []
    for t in aug:
        chords = t.has_chords and rng.random() < 0.75
        train_seqs.append(tok.encode(t, controls_for(t, stats, chords)))
    val_seqs = [tok.encode(t, controls_for(t, stats, t.has_chords)) for t in val]
    summary = {
        "tunes": len(tunes), "train_tunes": len(train), "val_tunes": len(val),
        "with_chords": sum(t.has_chords for t in tunes),
        "quadrants": quadrant_counts(tunes), "quadrants_train_augmented": quadrant_counts(aug),
        "sources": sorted({t.source.split("/")[0] for t in tunes}),
        "sequences": len(train_seqs), "tokens": sum(len(s) for s in train_seqs),
    }
    return train_seqs, val_seqs, stats, summary


def _window(seq: list[int], tok: Tokenizer, context: int, rng: random.Random):
    """(tokens, positions) of one training window: prefix + bars from a random bar start."""
    body_len = context - N_PREFIX + 1  # +1: inputs and targets overlap by one
    starts = tok.bar_starts(seq)
    s = rng.choice(starts) if len(seq) > context + 1 else N_PREFIX
    chunk = seq[s:s + body_len]
    toks = seq[:N_PREFIX] + chunk
    pos = list(range(N_PREFIX)) + list(range(s, s + len(chunk)))
    return toks, pos


def batch_tensors(windows, pad: int):
    import torch

    T = max(len(w[0]) for w in windows) - 1
    x = torch.full((len(windows), T), pad, dtype=torch.long)
    y = torch.full((len(windows), T), -100, dtype=torch.long)
    p = torch.zeros((len(windows), T), dtype=torch.long)
    for i, (toks, pos) in enumerate(windows):
        n = len(toks) - 1
        x[i, :n] = torch.tensor(toks[:-1])
        tgt = torch.tensor(toks[1:])
        tgt[: N_PREFIX - 1] = -100  # controls are given, not predicted
        y[i, :n] = tgt
        p[i, :n] = torch.tensor(pos[:-1])
        if n < T:
            p[i, n:] = pos[-2] + 1 + torch.arange(T - n)
    return x, y, p


def evaluate(model, seqs, tok, context: int, n_windows: int = 64, seed: int = 1234) -> float:
    import torch
    import torch.nn.functional as F

    rng = random.Random(seed)
    model.eval()
    tot, cnt = 0.0, 0
    with torch.no_grad():
        picks = [seqs[rng.randrange(len(seqs))] for _ in range(n_windows)]
        for s in range(0, len(picks), 16):
            x, y, p = batch_tensors([_window(q, tok, context, rng) for q in picks[s:s + 16]], tok.pad)
            logits, _ = model(x, p)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100, reduction="sum")
            tot += float(loss)
            cnt += int((y != -100).sum())
    model.train()
    return tot / max(cnt, 1)


def train_melody_model(paths, out_dir: str | Path, opts: TrainOptions, resume: bool = False,
                       progress: bool = True, log=print) -> dict:
    import torch
    import torch.nn.functional as F

    from emomusic.melody.model import (
        MelodyLM, MelodyLMConfig, load_checkpoint, load_optimizer_state, save_checkpoint,
    )

    out_dir = Path(out_dir)
    if opts.steps < 1:
        raise EmomusicError(f"--steps must be at least 1, got {opts.steps}")
    tok = Tokenizer()
    torch.manual_seed(opts.seed)
    start_step, history = 0, []
    if resume and (out_dir / "config.json").exists():
        model, cfg = load_checkpoint(out_dir)
        if cfg.get("tokens") != tok.vocab:
            raise CheckpointError(f"{out_dir} was trained with another tokenizer; cannot resume")
        start_step = int(cfg.get("train", {}).get("step", 0))
        history = list(cfg.get("train", {}).get("history", []))
        model.train()
    else:
        if resume:
            log(f"no checkpoint in {out_dir} to resume; starting fresh")
        model = MelodyLM(MelodyLMConfig.preset(opts.preset, len(tok)))
    train_seqs, val_seqs, stats, summary = prepare(paths, tok, opts, progress=progress)
    log(f"corpus: {summary['tunes']} tunes ({summary['quadrants']}), {summary['sequences']} training sequences "
        f"after balancing ({summary['quadrants_train_augmented']}); model {model.n_params():,} parameters")
    opt = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=0.01, betas=(0.9, 0.98))
    if resume and (out_dir / "optimizer.safetensors").exists() and start_step:
        load_optimizer_state(model, opt, out_dir / "optimizer.safetensors")
    context = model.config.context
    rng = random.Random(opts.seed * 7 + start_step)

    def lr_at(step):
        if step < opts.warmup:
            return opts.lr * (step + 1) / opts.warmup
        prog = (step - opts.warmup) / max(1, opts.steps - opts.warmup)
        return opts.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, prog))))

    def extra(step, last_loss):
        bins = {k: v for k, v in stats.items() if k not in ("contour", "profiles")}
        return {"tokens": tok.vocab, "stats": bins, "contour": stats["contour"], "profiles": stats["profiles"],
                "corpus": summary, "preset": opts.preset,
                "train": {"step": step, "steps": opts.steps, "batch_size": opts.batch_size, "lr": opts.lr,
                          "loss": last_loss, "history": history}}

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=opts.steps, initial=min(start_step, opts.steps), desc="train melody", unit="step")
    model.train()
    t0 = time.time()
    loss_ema = None
    step = start_step
    for step in range(start_step, opts.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        picks = [train_seqs[rng.randrange(len(train_seqs))] for _ in range(opts.batch_size)]
        x, y, p = batch_tensors([_window(q, tok, context, rng) for q in picks], tok.pad)
        logits, _ = model(x, p)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        lv = float(loss.detach())
        loss_ema = lv if loss_ema is None else 0.98 * loss_ema + 0.02 * lv
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_ema:.3f}")
        done = step + 1
        if done % opts.eval_every == 0 or done == opts.steps:
            val = evaluate(model, val_seqs, tok, context)
            history.append({"step": done, "train_loss": round(loss_ema, 4), "val_loss": round(val, 4),
                            "seconds": round(time.time() - t0, 1)})
            log(f"step {done}: train loss {loss_ema:.4f}, validation loss {val:.4f}")
        if done % opts.save_every == 0 or done == opts.steps:
            save_checkpoint(model, out_dir, extra(done, loss_ema), optimizer=opt)
    if bar is not None:
        bar.close()
    if start_step >= opts.steps:
        log(f"checkpoint already at step {start_step} >= --steps {opts.steps}; nothing to do")
        save_checkpoint(model, out_dir, extra(start_step, None), optimizer=opt)
    return {"out": str(out_dir), "steps": max(step + 1, start_step), "loss": loss_ema, "history": history,
            "corpus": summary, "seconds": round(time.time() - t0, 1)}
