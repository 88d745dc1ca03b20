"""Training loops of the symbolic engine: stage 1 (segment VAE), stage 2 (latent diffusion-GAN).

Both loops are resumable from their checkpoint folder (``train_state.safetensors`` +
``train_state.json``), show a progress bar, append to ``loss_log.csv``, and use
``accelerate.Accelerator`` (so ``accelerate launch`` runs them on several GPUs: each process
draws its own batches from a generator seeded by its rank, gradients are averaged).
"""

from __future__ import annotations

import copy
import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from emomusic.errors import CheckpointError, EmomusicError

from .checkpoint import (ENCODER_PREFIXES, encoder_sha1, file_sha1, load_train_state, load_weights, read_config,
                         same_latent_space, save_checkpoint)
from .config import DiffGANConfig, VAEConfig
from .data import SegmentStore, split_files
from .diffgan import DiffusionGAN
from .vae import SegmentVAE, vae_loss

LOSS_LOG = "loss_log.csv"


@dataclass
class TrainResult:
    steps: int
    seconds: float
    final: dict
    metrics: dict = field(default_factory=dict)
    is_main: bool = True  # False in the other processes of a multi-process run (they write nothing)


def _accelerator(device: str):
    if device == "cuda" and not torch.cuda.is_available():
        raise EmomusicError("--device cuda: no CUDA device is available")
    try:
        from accelerate import Accelerator

        return Accelerator(cpu=(device == "cpu"))
    except ImportError:  # plain single-device fallback
        return None


class _Log:
    def __init__(self, path: Path, keys: list[str]):
        self.path, self.keys = path, keys
        self.rows: list[dict] = []

    def add(self, row: dict) -> None:
        self.rows.append({k: row.get(k, "") for k in self.keys})

    def flush_into(self, folder: Path) -> None:
        """Append pending rows to the log kept in ``folder`` (after a checkpoint was written)."""
        path = folder / LOSS_LOG
        new = not path.is_file()
        with open(path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.keys)
            if new:
                w.writeheader()
            w.writerows(self.rows)
        self.rows = []


def _processes(acc) -> int:
    """How many processes train together (each draws its own batch of ``batch_size``)."""
    return 1 if acc is None else int(acc.num_processes)


def _all_reduce(acc, params) -> None:
    """Average gradients over processes (``accelerate launch`` with several GPUs)."""
    if _processes(acc) <= 1:
        return
    for p in params:
        if p.grad is not None:
            p.grad = acc.reduce(p.grad, reduction="mean")


def _process_randomness(acc, dev, seed: int, start: int):
    """``(is_main, numpy rng, torch generator)`` of this process: each process of a multi-process
    run draws its own batches and noise, seeded by (seed, rank, step resumed from)."""
    rank = acc.process_index if acc else 0
    is_main = acc.is_main_process if acc else True
    rng = np.random.default_rng([seed, rank, start])
    gen = torch.Generator(device=dev).manual_seed(seed * 1000 + rank + start)
    return is_main, rng, gen


def _all_agree(acc, flag: bool) -> bool:
    """True when any process says so (several processes must stop at the same step, or the
    next gradient all-reduce would wait forever)."""
    if _processes(acc) <= 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=acc.device)
    return bool(acc.reduce(t, reduction="sum").item() > 0)


def _finish(acc) -> None:
    """Every process waits until the main one has written the final checkpoint."""
    if _processes(acc) > 1:
        acc.wait_for_everyone()


def _end_of_step(step: int, out: dict, *, acc, log: "_Log", bar, t0: float, total: int, save_every: int,
                 max_minutes: float | None, save, what: str,
                 postfix: dict[str, tuple[str, str]]) -> tuple[dict, bool]:
    """Bookkeeping after one optimisation step, the same for both loops: the loss-log row,
    the progress bar, the divergence check, the periodic checkpoint and the wall-clock budget
    (agreed between processes). Returns the step's losses as floats and whether to stop."""
    last = {k: float(v.detach()) for k, v in out.items()}
    log.add(dict(step=step, seconds=round(time.time() - t0, 1), **{k: round(v, 5) for k, v in last.items()}))
    bar.update(1)
    bar.set_postfix({name: fmt.format(last[key]) for name, (key, fmt) in postfix.items()})
    if not all(math.isfinite(v) for v in last.values()):
        raise EmomusicError(f"{what} training diverged at step {step} (losses {last})")
    timed_out = _all_agree(acc, max_minutes is not None and time.time() - t0 > max_minutes * 60)
    if step % save_every == 0 and step < total and not timed_out:
        save(False)
    return last, timed_out


def _opt_to(opt, dev) -> None:
    for st in opt.state.values():
        for k, v in st.items():
            if torch.is_tensor(v) and k != "step":
                st[k] = v.to(dev)


def _progress(total, initial, desc, enabled):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, disable=not enabled, mininterval=1.0, dynamic_ncols=True)


# ---------------------------------------------------------------------------------------------
# stage 1: VAE
# ---------------------------------------------------------------------------------------------
def load_vae(ckpt_dir: Path, device: str = "cpu") -> SegmentVAE:
    d = read_config(ckpt_dir, "VAE")
    d.pop("meta", None)
    cfg = VAEConfig.from_dict(d)
    net = SegmentVAE(cfg)
    load_weights(net, ckpt_dir, "VAE")
    return net.to(device).eval()


def _vae_eval(net, store, idx, cfg, device, max_n=512):
    if len(idx) == 0:
        return {}
    idx = idx[:max_n]
    net.eval()
    scores = {"tp": 0, "fp": 0, "fn": 0}
    with torch.no_grad():
        bce, n = 0.0, 0
        for i in range(0, len(idx), 128):
            x = torch.from_numpy(store.rolls(idx[i:i + 128], cfg)).to(device)
            mu, _ = net.encode(x)
            pred = torch.sigmoid(net.decode(mu)[:, 0]) >= 0.5
            true = x[:, 0] > 0.5
            scores["tp"] += int((pred & true).sum())
            scores["fp"] += int((pred & ~true).sum())
            scores["fn"] += int((~pred & true).sum())
            out = vae_loss(net, x, step=10**9)
            bce += float(out["bce"]) * len(x)
            n += len(x)
    net.train()
    p = scores["tp"] / max(1, scores["tp"] + scores["fp"])
    r = scores["tp"] / max(1, scores["tp"] + scores["fn"])
    return {"val_precision": round(p, 4), "val_recall": round(r, 4), "val_f1": round(2 * p * r / max(1e-9, p + r), 4),
            "val_bce": round(bce / max(1, n), 3), "val_segments": int(n)}


VAE_SHAPE_FIELDS = ("bars_per_segment", "beats_per_bar", "steps_per_beat", "pitch_low", "pitch_high", "latent_dim",
                    "hidden")


def _vae_warm_start(net: SegmentVAE, init_dir: Path, decoder_only: bool) -> dict:
    """Load the weights of the VAE checkpoint at ``init_dir`` into ``net`` (the same shape);
    returns its provenance for the meta."""
    src = load_vae(init_dir)
    diff = [k for k in VAE_SHAPE_FIELDS if getattr(src.cfg, k) != getattr(net.cfg, k)]
    if diff:
        k = diff[0]
        raise CheckpointError(f"--init-from {init_dir}: its VAE has {k} {getattr(src.cfg, k)}, this run's "
                              f"{getattr(net.cfg, k)}; use the same --preset")
    net.load_state_dict(src.state_dict())
    smeta = read_config(init_dir, "VAE").get("meta", {})
    weights = Path(init_dir) / "model.safetensors"
    return {"path": str(init_dir), "sha1": file_sha1(weights), "encoder_sha1": encoder_sha1(weights),
            "steps": smeta.get("steps"), "decoder_only": bool(decoder_only)}


def train_vae(store: SegmentStore, out_dir: Path, cfg: VAEConfig, *, steps: int | None = None, device: str = "cpu",
              seed: int = 0, resume: bool = True, max_minutes: float | None = None, held_share: float = 0.03,
              save_every: int = 250, progress: bool = True, meta: dict | None = None, init_from: Path | None = None,
              decoder_only: bool = False) -> TrainResult:
    """Train (or continue training) the segment VAE on ``store``; checkpoints go to ``out_dir``.

    ``init_from``: start from that VAE checkpoint's weights (a fresh optimiser) instead of a new
    network. ``decoder_only`` (needs ``init_from``): train the decoder alone; the encoder, and so
    the latent space that a diffusion-GAN was trained on, stays as it was (same
    :func:`~emomusic.compose.checkpoint.encoder_sha1`).
    """
    out_dir = Path(out_dir)
    total = int(steps if steps is not None else cfg.steps)
    if total < 1:
        raise EmomusicError(f"steps must be >= 1, got {total}")
    if decoder_only and init_from is None:
        raise EmomusicError("--decoder-only needs --init-from (the VAE whose encoder is kept)")
    held = split_files(store.n_files, held_share)
    ok = store.seg_ok
    train_idx = np.nonzero(ok & ~held[store.seg_file])[0]
    val_idx = np.nonzero(ok & held[store.seg_file])[0]
    if len(train_idx) == 0:
        raise EmomusicError("no training segments (the data has too few notes)")
    acc = _accelerator(device)
    dev = acc.device if acc else torch.device(device)
    net = SegmentVAE(cfg)
    start = 0
    state = load_train_state(out_dir) if resume and out_dir.is_dir() else None
    warm = None  # provenance of a warm start
    if state is None and init_from is not None:
        warm = _vae_warm_start(net, Path(init_from), decoder_only)
    if decoder_only:  # the encoder stays as it is: the latents (and a diffusion-GAN on them) stay valid
        for name, prm in net.named_parameters():
            if name.startswith(ENCODER_PREFIXES):
                prm.requires_grad_(False)
    opt = torch.optim.AdamW([prm for prm in net.parameters() if prm.requires_grad], lr=cfg.lr, weight_decay=1e-4)
    if state is not None:
        saved = read_config(out_dir, "VAE")
        smeta = saved.pop("meta", {})
        warm = smeta.get("init_from")
        if VAEConfig.from_dict(saved).to_dict() != cfg.to_dict():
            raise CheckpointError(f"{out_dir} holds a VAE with another config; use another folder or --no-resume")
        if bool(state["info"].get("decoder_only", False)) != bool(decoder_only):
            raise CheckpointError(f"{out_dir} was trained {'with' if not decoder_only else 'without'} --decoder-only; "
                                  "use the same, another folder or --no-resume")
        net.load_state_dict(state["modules"]["net"])
        opt.load_state_dict(state["optimizers"]["opt"])
        start = int(state["info"]["step"])
    net.to(dev)
    _opt_to(opt, dev)
    raw = net
    is_main, rng, gen = _process_randomness(acc, dev, seed, start)
    log = _Log(out_dir / LOSS_LOG, ["step", "loss", "bce", "dur", "vel", "kl", "seconds"])
    t0 = time.time()
    bar = _progress(total, start, "train vae", progress and is_main)
    last = {}
    step = start

    def save(final: bool):
        if not is_main:
            return
        metrics = _vae_eval(raw, store, val_idx, cfg, dev) if final else {}
        conf = cfg.to_dict()
        conf["meta"] = dict(meta or {}, steps=step, processes=_processes(acc), **metrics)
        if warm is not None:
            conf["meta"]["init_from"] = warm
        ts = {"modules": {"net": raw.state_dict()}, "optimizers": {"opt": opt.state_dict()},
              "info": {"step": step, "decoder_only": bool(decoder_only)}}
        save_checkpoint(out_dir, conf, raw.state_dict(), ts, keep=(LOSS_LOG, "MODEL_CARD.md"))
        log.flush_into(out_dir)
        return metrics

    metrics = {}
    while step < total:
        idx = rng.choice(train_idx, size=cfg.batch_size)
        tr = rng.integers(-cfg.transpose, cfg.transpose + 1, size=cfg.batch_size) if cfg.transpose else None
        x = torch.from_numpy(store.rolls(idx, cfg, tr)).to(dev)
        out = vae_loss(raw, x, step, gen)
        opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        _all_reduce(acc, raw.parameters())
        torch.nn.utils.clip_grad_norm_(raw.parameters(), 1.0)
        opt.step()
        step += 1
        last, stop = _end_of_step(step, out, acc=acc, log=log, bar=bar, t0=t0, total=total, save_every=save_every,
                                  max_minutes=max_minutes, save=save, what="VAE",
                                  postfix={"loss": ("loss", "{:.2f}"), "bce": ("bce", "{:.2f}"), "kl": ("kl", "{:.1f}")})
        if stop:
            break
    bar.close()
    metrics = save(True) or {}
    _finish(acc)
    return TrainResult(step, time.time() - t0, last, metrics, is_main=is_main)


@torch.no_grad()
def encode_store(net: SegmentVAE, store: SegmentStore, transposes=(0,), batch: int = 256, device="cpu",
                 progress: bool = False) -> np.ndarray:
    """Posterior means of every segment for each transposition: (len(transposes), S, D) float32."""
    cfg = net.cfg
    out = np.zeros((len(transposes), len(store), cfg.latent_dim), np.float32)
    from tqdm import tqdm

    for ti, k in enumerate(transposes):
        for i in tqdm(range(0, len(store), batch), desc=f"encoding (transpose {k:+d})", disable=not progress,
                      mininterval=2):
            idx = np.arange(i, min(len(store), i + batch))
            x = torch.from_numpy(store.rolls(idx, cfg, np.full(len(idx), k))).to(device)
            mu, _ = net.encode(x)
            out[ti, idx] = mu.cpu().numpy()
    return out


# ---------------------------------------------------------------------------------------------
# stage 2: diffusion-GAN
# ---------------------------------------------------------------------------------------------
WARM_START_D_STEPS = 200  # discriminator-only steps at the start of a warm-started run
GENERATOR_FIELDS = ("latent_dim", "seq_len", "timesteps", "beta_min", "beta_max", "d_model", "n_layers", "n_heads",
                    "z_dim")  # what a warm start must share with its source checkpoint


def _warm_start(model: DiffusionGAN, ema, init_dir: Path, cfg: DiffGANConfig, vae_weights: Path) -> dict:
    """Load the generator (its EMA weights, into both the trained copy and the EMA) and the latent
    statistics of the diffgan checkpoint at ``init_dir``; returns its provenance for the meta."""
    saved = read_config(init_dir, "diffgan")
    smeta = saved.pop("meta", {})
    src_cfg = DiffGANConfig.from_dict(saved)
    for k in GENERATOR_FIELDS:
        if getattr(src_cfg, k) != getattr(cfg, k):
            raise CheckpointError(f"--init-from {init_dir}: its generator has {k} {getattr(src_cfg, k)}, this run's "
                                  f"{getattr(cfg, k)}; use the same --preset")
    if not same_latent_space(smeta, vae_weights):
        raise CheckpointError(f"--init-from {init_dir} was trained on another VAE ({smeta.get('vae_sha1')}, this run "
                              f"uses {file_sha1(vae_weights)})")
    src = DiffusionGAN(src_cfg, with_discriminator=False)
    load_weights(src, init_dir, "diffgan")
    with torch.no_grad():
        model.G.load_state_dict(src.G.state_dict())
        ema.load_state_dict(src.G.state_dict())
        model.latent_mean.copy_(src.latent_mean)
        model.latent_std.copy_(src.latent_std)
    return {"path": str(init_dir), "sha1": file_sha1(Path(init_dir) / "model.safetensors"),
            "steps": smeta.get("steps"), "d_only_steps": WARM_START_D_STEPS}


def sequence_windows(store: SegmentStore, seq_len: int) -> np.ndarray:
    """(W, seq_len) segment indices of every window of ``seq_len`` consecutive segments of a file."""
    wins = []
    for segs in store.file_segments():
        for s in range(0, len(segs) - seq_len + 1):
            wins.append(segs[s:s + seq_len])
    return np.array(wins, dtype=np.int64).reshape(-1, seq_len)


def train_diffgan(store: SegmentStore, vae_dir: Path, out_dir: Path, cfg: DiffGANConfig, *, steps: int | None = None,
                  device: str = "cpu", seed: int = 0, resume: bool = True, max_minutes: float | None = None,
                  transposes=(-3, -2, -1, 0, 1, 2, 3), save_every: int = 500, progress: bool = True,
                  meta: dict | None = None, cache_dir: Path | None = None,
                  soft: np.ndarray | None = None, init_from: Path | None = None) -> TrainResult:
    """Train the latent diffusion-GAN on sequences of ``store`` encoded by the VAE at ``vae_dir``.

    Windows of labelled files (EMOPIA) are conditioned on their file's (valence, arousal);
    ``soft`` ((W, 2), one row per :func:`sequence_windows` window, NaN = none) gives labels
    to the other windows (see :mod:`emomusic.compose.softlabel`). Windows with no label at
    all train the unconditional branch only. When both kinds exist, each batch draws
    ``cfg.labelled_share`` of its windows from the labelled files.

    ``init_from``: a trained diffgan checkpoint to warm-start from (its generator, EMA and latent
    statistics; the discriminator and both optimisers start fresh, and the first
    :data:`WARM_START_D_STEPS` steps train the discriminator only, so it catches up before the
    generator hears from it). It must have this run's generator architecture and VAE. Ignored
    when ``out_dir`` holds a training state to resume.
    """
    out_dir, vae_dir = Path(out_dir), Path(vae_dir)
    total = int(steps if steps is not None else cfg.steps)
    if total < 1:
        raise EmomusicError(f"steps must be >= 1, got {total}")
    acc = _accelerator(device)
    dev = acc.device if acc else torch.device(device)
    vae = load_vae(vae_dir, "cpu")
    if vae.cfg.latent_dim != cfg.latent_dim:
        raise CheckpointError(f"VAE latent size {vae.cfg.latent_dim} != diffgan latent_dim {cfg.latent_dim}")
    vae_sha = file_sha1(vae_dir / "model.safetensors")
    enc_sha = encoder_sha1(vae_dir / "model.safetensors")
    wins = sequence_windows(store, cfg.seq_len)
    if len(wins) == 0:
        raise EmomusicError(f"no file has {cfg.seq_len} consecutive segments; use shorter sequences or more data")
    win_va = store.file_va[store.seg_file[wins[:, 0]]].astype(np.float32)
    labelled = ~np.isnan(win_va[:, 0])  # hard labels (EMOPIA quadrants)
    if soft is not None:
        soft = np.asarray(soft, np.float32)
        if soft.shape != (len(wins), 2):
            raise EmomusicError(f"soft labels must have shape ({len(wins)}, 2), got {soft.shape}")
        win_va = np.where(labelled[:, None], win_va, soft)
    has_label = ~np.isnan(win_va[:, 0])
    lab_idx, other_idx = np.nonzero(labelled)[0], np.nonzero(~labelled)[0]
    n_lab_batch = cfg.batch_size if len(other_idx) == 0 else (
        0 if len(lab_idx) == 0 else int(round(cfg.batch_size * cfg.labelled_share)))
    lat = None
    if cache_dir is not None:
        import hashlib

        # keyed by the store's content (its shape alone would reuse the latents of another store)
        key = hashlib.sha1((vae_sha + store.content_key() + str(tuple(transposes))).encode()).hexdigest()[:12]
        cpath = Path(cache_dir) / f"compose_latents_{key}.npy"
        if cpath.is_file():
            lat = np.load(cpath)
    if lat is None:
        lat = encode_store(vae, store, transposes, progress=progress)
        if cache_dir is not None:
            from emomusic.atomic import atomic_path

            cpath.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cpath) as tmp:  # an interrupted run leaves no truncated cache
                with open(tmp, "wb") as fh:
                    np.save(fh, lat)
    model = DiffusionGAN(cfg)
    flat = lat.reshape(-1, cfg.latent_dim)
    model.latent_mean.copy_(torch.from_numpy(flat.mean(0)))
    model.latent_std.copy_(torch.from_numpy(flat.std(0) + 1e-4))
    ema = copy.deepcopy(model.G).requires_grad_(False)
    opt_g = torch.optim.Adam(model.G.parameters(), lr=cfg.lr_g, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(model.D.parameters(), lr=cfg.lr_d, betas=(0.5, 0.9))
    start = 0
    warm = None  # provenance of a warm start
    state = load_train_state(out_dir) if resume and out_dir.is_dir() else None
    if state is None and init_from is not None:
        warm = _warm_start(model, ema, Path(init_from), cfg, vae_dir / "model.safetensors")
    if state is not None:
        saved = read_config(out_dir, "diffgan")
        smeta = saved.pop("meta", {})
        warm = smeta.get("init_from")
        if DiffGANConfig.from_dict(saved).to_dict() != cfg.to_dict():
            raise CheckpointError(f"{out_dir} holds a diffgan with another config; use another folder or --no-resume")
        if not same_latent_space(smeta, vae_dir / "model.safetensors"):
            raise CheckpointError(f"{out_dir} was trained on another VAE; use another folder or --no-resume")
        model.load_state_dict(state["modules"]["model"])
        ema.load_state_dict(state["modules"]["ema"])
        opt_g.load_state_dict(state["optimizers"]["g"])
        opt_d.load_state_dict(state["optimizers"]["d"])
        start = int(state["info"]["step"])
    model.to(dev)
    ema.to(dev)
    _opt_to(opt_g, dev)
    _opt_to(opt_d, dev)
    raw = model
    is_main, rng, gen = _process_randomness(acc, dev, seed, start)
    lat_t = torch.from_numpy(lat).to(dev)
    va_t = torch.from_numpy(np.nan_to_num(win_va, nan=0.0)).to(dev)
    has_t = torch.from_numpy(has_label).to(dev)
    log = _Log(out_dir / LOSS_LOG, ["step", "d_loss", "g_loss", "r1", "x0_mse", "seconds"])
    t0 = time.time()
    bar = _progress(total, start, "train diffgan", progress and is_main)
    step, last = start, {}
    n_lab = int(labelled.sum())
    n_soft = int((has_label & ~labelled).sum())

    def save(final: bool):
        if not is_main:
            return
        conf = cfg.to_dict()
        conf["meta"] = dict(meta or {}, steps=step, processes=_processes(acc), vae_sha1=vae_sha, vae_encoder_sha1=enc_sha,
                            vae_latent_dim=vae.cfg.latent_dim, train_windows=int(len(wins)), labelled_windows=n_lab,
                            soft_labelled_windows=n_soft, transposes=list(transposes))
        if warm is not None:
            conf["meta"]["init_from"] = warm
        weights = {f"G.{k}": v for k, v in ema.state_dict().items()}
        weights["latent_mean"] = raw.latent_mean
        weights["latent_std"] = raw.latent_std
        ts = {"modules": {"model": raw.state_dict(), "ema": ema.state_dict()},
              "optimizers": {"g": opt_g.state_dict(), "d": opt_d.state_dict()}, "info": {"step": step}}
        save_checkpoint(out_dir, conf, weights, ts, keep=(LOSS_LOG, "MODEL_CARD.md"))
        log.flush_into(out_dir)

    while step < total:
        w = np.concatenate([rng.choice(lab_idx, size=n_lab_batch) if n_lab_batch else np.zeros(0, np.int64),
                            rng.choice(other_idx, size=cfg.batch_size - n_lab_batch)
                            if n_lab_batch < cfg.batch_size else np.zeros(0, np.int64)])
        tr = rng.integers(0, lat.shape[0], size=cfg.batch_size)
        segs = torch.from_numpy(wins[w]).to(dev)
        x0 = raw.normalise(lat_t[torch.from_numpy(tr).to(dev)[:, None], segs])
        w_t = torch.from_numpy(w).to(dev)
        va = va_t[w_t]
        has = has_t[w_t]
        jit = torch.randn(va.shape, generator=gen, device=dev) * cfg.cond_jitter
        cond = (va + jit).clamp(-1, 1)[:, None, :].expand(-1, cfg.seq_len, 2)
        lazy = max(1, cfg.r1_every)
        out = model({"x0": x0, "cond": cond, "cond_mask": has[:, None].expand(-1, cfg.seq_len)}, generator=gen,
                    r1=(step % lazy == 0), r1_scale=float(lazy))
        opt_d.zero_grad(set_to_none=True)
        opt_g.zero_grad(set_to_none=True)
        # D step: gradients of d_loss only into D; G step: gradients of g_loss only into G
        d_params = list(raw.D.parameters())
        g_params = list(raw.G.parameters())
        gd = torch.autograd.grad(out["d_loss"], d_params, retain_graph=True, allow_unused=True)
        gg = torch.autograd.grad(out["g_loss"], g_params, allow_unused=True)
        for p, g in zip(d_params, gd):
            p.grad = None if g is None else g
        for p, g in zip(g_params, gg):
            p.grad = None if g is None else g
        _all_reduce(acc, d_params + g_params)
        opt_d.step()
        if warm is None or step >= WARM_START_D_STEPS:
            opt_g.step()
            with torch.no_grad():
                torch._foreach_lerp_(list(ema.parameters()), list(raw.G.parameters()), 1 - cfg.ema)
        step += 1
        last, stop = _end_of_step(step, out, acc=acc, log=log, bar=bar, t0=t0, total=total, save_every=save_every,
                                  max_minutes=max_minutes, save=save, what="diffgan",
                                  postfix={"d": ("d_loss", "{:.3f}"), "g": ("g_loss", "{:.3f}"),
                                           "mse": ("x0_mse", "{:.3f}")})
        if stop:
            break
    bar.close()
    save(True)
    _finish(acc)
    return TrainResult(step, time.time() - t0, last, {"train_windows": int(len(wins)), "labelled_windows": n_lab,
                                                      "soft_labelled_windows": n_soft}, is_main=is_main)


def load_diffgan(ckpt_dir: Path, device: str = "cpu") -> tuple[DiffusionGAN, dict]:
    d = read_config(ckpt_dir, "diffgan")
    meta = d.pop("meta", {})
    cfg = DiffGANConfig.from_dict(d)
    model = DiffusionGAN(cfg, with_discriminator=False)
    load_weights(model, ckpt_dir, "diffgan")
    return model.to(device).eval(), meta
