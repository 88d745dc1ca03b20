"""Training the baseline: the resumable loop, its batches, the held-out loss and the model card.

* :func:`train_baseline` - resumable training loop with a progress bar and a CSV loss log.
* :func:`evaluate_loss` - mean next-token cross-entropy (no dropout).
* :func:`write_model_card` - ``MODEL_CARD.md`` of a trained checkpoint.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from emomusic.compose.baseline_model import Baseline, BaselineConfig, _torch
from emomusic.compose.baseline_tokens import TokenGrammar
from emomusic.errors import EmomusicError


# -- training --------------------------------------------------------------------------------------
@dataclass
class TrainResult:
    steps: int
    final_loss: float
    val_loss: float | None
    seconds: float
    out_dir: Path
    history: list[dict] = field(default_factory=list)


class _Batcher:
    """Random windows that open on a bar line, with random transposition."""

    def __init__(self, data, cfg: BaselineConfig, grammar: TokenGrammar, seed: int):
        self.data = [(np.asarray(ids, dtype=np.int64), tuple(va)) for ids, va, *_ in data]
        if not self.data:
            raise EmomusicError("no training sequences")
        self.cfg = cfg
        self.grammar = grammar
        self.rng = np.random.default_rng(seed)
        self.bar_pos = [np.flatnonzero(ids == grammar.bar_id) for ids, _ in self.data]
        lengths = np.array([len(ids) for ids, _ in self.data], dtype=float)
        self.weights = lengths / lengths.sum()
        self.tables = {k: grammar.transpose_table(k) for k in range(-cfg.transpose, cfg.transpose + 1)}

    def window(self, ids: np.ndarray, bars: np.ndarray, length: int) -> np.ndarray:
        starts = bars[bars < max(1, len(ids) - 16)] if bars.size else np.array([0])
        s = int(self.rng.choice(starts)) if starts.size else 0
        w = ids[s : s + length]
        k = int(self.rng.integers(-self.cfg.transpose, self.cfg.transpose + 1)) if self.cfg.transpose else 0
        table = self.tables.get(k)
        if table is not None:
            t = table[w]
            if (t >= 0).all():
                w = t
        return w

    def __call__(self, batch_size: int):
        length = self.cfg.max_len - 1
        x = np.full((batch_size, length), self.grammar.pad_id, dtype=np.int64)
        va = np.zeros((batch_size, 2), dtype=np.float32)
        idx = self.rng.choice(len(self.data), size=batch_size, p=self.weights)
        for r, i in enumerate(idx):
            ids, cond = self.data[i]
            w = self.window(ids, self.bar_pos[i], length)
            x[r, : len(w)] = w
            va[r] = cond
        return x, va


def _loss(net, x, va, cfg: BaselineConfig, pad_id: int, rng: np.random.Generator | None):
    torch = _torch()
    drop = None
    if rng is not None and cfg.cond_dropout > 0:
        drop = torch.as_tensor(rng.random(len(va)) < cfg.cond_dropout)
    cond = net.condition(va, drop)
    logits, _ = net(x[:, :-1], cond)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x.reshape(-1), ignore_index=pad_id)


def _flatten_optimizer(opt) -> tuple[dict, dict]:
    sd = opt.state_dict()
    tensors, meta = {}, {"param_groups": sd["param_groups"], "state_keys": {}}
    for pid, st in sd["state"].items():
        meta["state_keys"][str(pid)] = {}
        for k, v in st.items():
            if hasattr(v, "shape"):
                tensors[f"opt.{pid}.{k}"] = v.detach().cpu().contiguous()
                meta["state_keys"][str(pid)][k] = "tensor"
            else:
                meta["state_keys"][str(pid)][k] = v
    return tensors, meta


def _unflatten_optimizer(tensors: dict, meta: dict) -> dict:
    state = {}
    for pid, keys in meta["state_keys"].items():
        state[int(pid)] = {k: (tensors[f"opt.{pid}.{k}"] if v == "tensor" else v) for k, v in keys.items()}
    return {"state": state, "param_groups": meta["param_groups"]}


def train_baseline(
    data: Sequence,
    out_dir: str | os.PathLike,
    cfg: BaselineConfig | None = None,
    *,
    tokenizer=None,
    steps: int | None = None,
    val_data: Sequence | None = None,
    device: str = "cpu",
    seed: int = 0,
    resume: bool = True,
    progress: bool = True,
    save_every: int = 200,
    log_every: int = 10,
    max_minutes: float | None = None,
) -> TrainResult:
    """Train (or resume training) the baseline on ``data`` = [(ids, (v, a)), ...].

    Writes ``out_dir``: config.json + model.safetensors + tokenizer.json (a loadable
    checkpoint), ``train_state.safetensors`` + ``train_state.json`` (optimizer, step: what
    ``resume`` continues from) and ``loss_log.csv`` (step, loss, lr, seconds). ``steps`` is the
    total step count (default ``cfg.steps``); ``max_minutes`` stops early at a time budget.
    """
    torch = _torch()
    from safetensors.torch import load_file, save_file
    from tqdm import tqdm

    out_dir = Path(out_dir)
    state_json = out_dir / "train_state.json"
    start_step = 0
    prior_seconds = 0.0  # wall clock of earlier (resumed) runs
    history: list[dict] = []
    if resume and state_json.is_file():
        model = Baseline.load(out_dir, device=device)
        cfg = model.cfg
        meta = json.loads(state_json.read_text())
        start_step = int(meta["step"])
        prior_seconds = float(meta.get("seconds", 0.0))
    else:
        cfg = cfg or BaselineConfig.preset_config("default")
        model = Baseline(cfg, tokenizer, device=device)
        meta = None
    total = int(steps if steps is not None else cfg.steps)
    if total < 1:
        raise EmomusicError("steps must be >= 1")
    net = model.net
    net.train()
    torch.manual_seed(seed + start_step)
    decay = [p for n, p in net.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in net.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(0.9, 0.95))
    if meta is not None and (out_dir / "train_state.safetensors").is_file():
        opt.load_state_dict(_unflatten_optimizer(load_file(str(out_dir / "train_state.safetensors")), meta["optimizer"]))
    # intermediate checkpoints are float32 (a resume point); the final save uses cfg.save_dtype
    final_dtype = cfg.save_dtype or "float32"

    def lr_at(step: int) -> float:
        if step < cfg.warmup_steps:
            return cfg.lr * (step + 1) / cfg.warmup_steps
        frac = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
        return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))

    batcher = _Batcher(data, cfg, model.grammar, seed + 1000 * start_step)
    drop_rng = np.random.default_rng(seed + 7 + start_step)
    log_path = out_dir / "loss_log.csv"
    out_dir.mkdir(parents=True, exist_ok=True)
    if not log_path.exists() or start_step == 0:
        log_path.write_text("step,loss,lr,seconds\n")

    def log_row(row: dict) -> None:  # reopened per row: saving replaces the folder atomically
        with open(out_dir / "loss_log.csv", "a", newline="") as fh:
            csv.writer(fh).writerow([row["step"], row["loss"], f"{row['lr']:.6g}", row["seconds"]])

    def save(step: int, final: bool) -> None:
        tensors, ometa = _flatten_optimizer(opt)
        model.save(out_dir, dtype=final_dtype if final else "float32")
        if final:
            for p in (out_dir / "train_state.safetensors", state_json):
                if p.exists() and final_dtype != "float32":
                    p.unlink()  # a finished half-precision checkpoint is not a resume point
            if final_dtype != "float32":
                return
        save_file(tensors, str(out_dir / "train_state.safetensors"))
        state_json.write_text(json.dumps({"step": step, "seconds": prior_seconds + time.time() - t0, "optimizer": ometa}, default=str))

    t0 = time.time()
    loss_val = math.nan
    step = start_step
    bar = tqdm(total=total, initial=start_step, desc="baseline", disable=not progress, dynamic_ncols=True)
    try:
        while step < total:
            for grp in opt.param_groups:
                grp["lr"] = lr_at(step)
            x, va = batcher(cfg.batch_size)
            loss = _loss(net, torch.as_tensor(x, device=device), torch.as_tensor(va, device=device), cfg, model.grammar.pad_id, drop_rng)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            loss_val = float(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{loss_val:.3f}")
            if step % log_every == 0 or step == total:
                row = {"step": step, "loss": round(loss_val, 5), "lr": lr_at(step - 1), "seconds": round(prior_seconds + time.time() - t0, 1)}
                history.append(row)
                log_row(row)
            if save_every and step % save_every == 0 and step < total:
                save(step, final=False)
            if max_minutes is not None and time.time() - t0 > max_minutes * 60:
                break
    finally:
        bar.close()
    val_loss = evaluate_loss(model, val_data) if val_data else None
    save(step, final=step >= total)
    return TrainResult(step, loss_val, val_loss, prior_seconds + time.time() - t0, out_dir, history)


def evaluate_loss(model: Baseline, data: Sequence, max_windows: int = 64) -> float:
    """Mean next-token cross-entropy on up to ``max_windows`` windows of ``data`` (no dropout)."""
    torch = _torch()
    cfg = model.cfg
    net = model.net
    was = net.training
    net.eval()
    length = cfg.max_len - 1
    losses, counts = [], []
    with torch.no_grad():
        for ids, va, *_ in list(data)[:max_windows]:
            ids = np.asarray(ids, dtype=np.int64)[:length]
            x = torch.as_tensor(ids[None], device=model.device)
            c = torch.as_tensor(np.asarray([va], dtype=np.float32), device=model.device)
            losses.append(float(_loss(net, x, c, cfg, model.grammar.pad_id, None)) * len(ids))
            counts.append(len(ids))
    net.train(was)
    return float(sum(losses) / max(1, sum(counts)))


def write_model_card(out_dir: str | os.PathLike, result: TrainResult, *, command: str, n_train: int, n_val: int,
                     extra: str = "") -> Path:
    """Write ``MODEL_CARD.md`` for a trained baseline checkpoint (atomically)."""
    from emomusic.atomic import write_text_atomic

    out_dir = Path(out_dir)
    cfg = BaselineConfig.from_json((out_dir / "config.json").read_text(encoding="utf-8"))
    size = (out_dir / "model.safetensors").stat().st_size / 1e6
    val = f"{result.val_loss:.3f}" if result.val_loss is not None else "n/a"
    text = f"""# emomusic baseline: autoregressive REMI transformer

The autoregressive baseline of the symbolic engine (EMOPIA / midi-emotion approach): a
decoder-only transformer over miditok REMI tokens (`tokenizer.json`, same settings as
`emomusic/tokenizers/remi.json`), conditioned on continuous (valence, arousal) embedded into a vector at
position 0 (condition dropout {cfg.cond_dropout}, so classifier-free guidance works).

- Architecture: {cfg.n_layers} layers, d_model {cfg.d_model}, {cfg.n_heads} heads, FF {cfg.d_ff},
  context {cfg.max_len} positions (sliding window with KV cache when sampling), tied embeddings;
  weights stored as {cfg.save_dtype} ({size:.1f} MB).
- Data: EMOPIA train split (`split/train_clip.csv`) only, {n_train} clips for training and {n_val}
  clips of held-out training songs for the validation loss; EMOPIA val is never used (it is the
  benchmark's reference set). Condition: the clip's quadrant centre (+-0.6, +-0.6). Random
  transposition +-{cfg.transpose} semitones.
- Training: `{command}`
  ({result.steps} steps, batch {cfg.batch_size} x {cfg.max_len - 1} tokens, AdamW lr {cfg.lr},
  cosine decay; {result.seconds / 60:.1f} min wall clock). Final training loss {result.final_loss:.3f},
  held-out loss {val} (nats/token). Loss log: `loss_log.csv`.
- Sampling: temperature {cfg.temperature}, top-p {cfg.top_p}, REMI-grammar-constrained, output at
  {cfg.tempo:g} BPM, 4/4, one piano track.
- Licence of the training data: EMOPIA 1.0 (Hung et al., ISMIR 2021; MIDI transcriptions of piano
  covers). Secondary sources disagree (CC BY 4.0 vs CC BY-NC-SA 4.0); treated as CC BY-NC-SA 4.0,
  so these weights are for research / non-commercial use. The underlying songs are copyrighted.
{extra}"""
    write_text_atomic(out_dir / "MODEL_CARD.md", text)
    return out_dir / "MODEL_CARD.md"
