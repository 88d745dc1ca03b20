"""Checkpoint folders: ``config.json`` + ``model.safetensors`` (+ resumable training state).

Never pickle: weights and optimiser tensors go to safetensors, everything else to JSON.
Folders are written atomically (a temporary folder renamed into place).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from emomusic.atomic import atomic_dir
from emomusic.errors import CheckpointError

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
STATE = "train_state.safetensors"
STATE_JSON = "train_state.json"


def file_sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


ENCODER_PREFIXES = ("enc.", "to_stats.")  # the segment VAE's encoder: it alone defines the latent space


def encoder_sha1(path: Path) -> str:
    """A hash of the encoder tensors of the segment-VAE weights file ``path`` (names, dtypes and
    bytes as stored). A VAE whose decoder was fine-tuned with the encoder frozen
    (``emomusic train vae --init-from DIR --decoder-only``) keeps it, and with it every
    latent a diffusion-GAN was trained on."""
    import torch
    from safetensors import safe_open

    h = hashlib.sha1()
    with safe_open(str(path), framework="pt") as fh:
        for k in sorted(fh.keys()):
            if k.startswith(ENCODER_PREFIXES):
                t = fh.get_tensor(k).contiguous()
                h.update(f"{k}:{t.dtype}:{tuple(t.shape)};".encode())
                h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def same_latent_space(meta: dict, vae_weights: Path) -> bool:
    """Whether a diffusion-GAN with provenance ``meta`` was trained on the latents of the VAE
    weights ``vae_weights``: the same encoder (``vae_encoder_sha1``) or, for checkpoints that
    record only the whole file (``vae_sha1``), the same file. True when neither is recorded."""
    if meta.get("vae_encoder_sha1"):
        return meta["vae_encoder_sha1"] == encoder_sha1(vae_weights)
    if meta.get("vae_sha1"):
        return meta["vae_sha1"] == file_sha1(vae_weights)
    return True


def _flatten_optimizer(opt_state: dict, prefix: str) -> tuple[dict, dict]:
    import torch

    tensors, info = {}, {"param_groups": opt_state["param_groups"], "state": {}}
    for pid, st in opt_state["state"].items():
        info["state"][str(pid)] = {}
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}.{pid}.{k}"] = v.detach().cpu().contiguous()
                info["state"][str(pid)][k] = "tensor"
            else:
                info["state"][str(pid)][k] = v
    return tensors, info


def _unflatten_optimizer(tensors: dict, info: dict, prefix: str) -> dict:
    state = {}
    for pid, st in info["state"].items():
        state[int(pid)] = {k: (tensors[f"{prefix}.{pid}.{k}"] if v == "tensor" else v) for k, v in st.items()}
    return {"state": state, "param_groups": info["param_groups"]}


def _ship(v, dtype: str):
    import torch

    v = v.detach().cpu()
    if v.is_floating_point():
        v = v.to(getattr(torch, dtype))
    return v.contiguous()


def save_checkpoint(out_dir: Path, config: dict, weights: dict, train_state: dict | None = None,
                    extra_files: dict[str, str] | None = None, keep: tuple[str, ...] = (),
                    weights_dtype: str = "float16") -> Path:
    """Write a checkpoint folder atomically.

    ``train_state``: ``{"modules": {name: state_dict}, "optimizers": {name: state_dict}, "info": {...}}``.
    ``weights_dtype``: floating weights are stored in this type (float16 keeps shipped files small;
    loading casts back to the module's float32). The training state stays float32.
    ``keep``: names of files already in ``out_dir`` to carry over (e.g. a loss log, a model card).
    """
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        (tmp / CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
        save_file({k: _ship(v, weights_dtype) for k, v in weights.items()}, str(tmp / WEIGHTS))
        if train_state is not None:
            tensors, info = {}, {"info": train_state.get("info", {}), "optimizers": {}}
            for name, sd in train_state.get("modules", {}).items():
                tensors.update({f"module.{name}.{k}": v.detach().cpu().contiguous() for k, v in sd.items()})
            for name, osd in train_state.get("optimizers", {}).items():
                t, i = _flatten_optimizer(osd, f"opt.{name}")
                tensors.update(t)
                info["optimizers"][name] = i
            save_file(tensors, str(tmp / STATE))
            (tmp / STATE_JSON).write_text(json.dumps(info), encoding="utf-8")
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")
        for name in keep:
            src = out_dir / name
            if src.is_file() and not (tmp / name).exists():
                shutil.copy2(src, tmp / name)
    return out_dir


def read_config(ckpt_dir: Path, what: str) -> dict:
    ckpt_dir = Path(ckpt_dir)
    cfg_path, w_path = ckpt_dir / CONFIG, ckpt_dir / WEIGHTS
    if not ckpt_dir.is_dir():
        raise CheckpointError(f"{what} checkpoint not found: {ckpt_dir}")
    if not cfg_path.is_file() or not w_path.is_file():
        raise CheckpointError(f"{what} checkpoint {ckpt_dir} is incomplete (needs {CONFIG} and {WEIGHTS})")
    try:
        return json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {cfg_path}: {exc}") from None


def load_weights(module, ckpt_dir: Path, what: str, prefix: str = "") -> None:
    """Load ``model.safetensors`` into ``module`` (strict); a mismatch is a CheckpointError."""
    from safetensors.torch import load_file

    try:
        sd = load_file(str(Path(ckpt_dir) / WEIGHTS))
    except Exception as exc:  # corrupt or not a safetensors file
        raise CheckpointError(f"cannot read {what} weights in {ckpt_dir}: {exc}") from None
    if prefix:
        sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    own = module.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    bad = [k for k in own if k in sd and tuple(own[k].shape) != tuple(sd[k].shape)]
    if missing or unexpected or bad:
        detail = (f"missing {missing[:2]}" if missing else f"unexpected {unexpected[:2]}" if unexpected
                  else f"shape of {bad[:2]}")
        raise CheckpointError(f"{what} checkpoint {ckpt_dir} does not match its config ({detail})")
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in sd.items()})


def load_train_state(ckpt_dir: Path) -> dict | None:
    """The resumable state saved by :func:`save_checkpoint`, or None when absent."""
    from safetensors.torch import load_file

    ckpt_dir = Path(ckpt_dir)
    if not (ckpt_dir / STATE).is_file() or not (ckpt_dir / STATE_JSON).is_file():
        return None
    tensors = load_file(str(ckpt_dir / STATE))
    info = json.loads((ckpt_dir / STATE_JSON).read_text(encoding="utf-8"))
    modules: dict[str, dict] = {}
    for k, v in tensors.items():
        if k.startswith("module."):
            name, _, rest = k[len("module."):].partition(".")
            modules.setdefault(name, {})[rest] = v
    opts = {name: _unflatten_optimizer(tensors, i, f"opt.{name}") for name, i in info["optimizers"].items()}
    return {"modules": modules, "optimizers": opts, "info": info["info"]}
