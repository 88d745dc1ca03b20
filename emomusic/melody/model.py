"""A small GPT-style language model over melody tokens (plain ``nn.Module``).

Rotary position embeddings make attention depend on token distance only, so decoding can
keep the control prefix plus a sliding window of recent tokens in its key/value cache and
write tunes of any length; training windows are cut the same way (prefix + a run of bars
from anywhere in the tune, at their true positions).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from emomusic.errors import CheckpointError
from emomusic.nnutil import gpt_init

MODEL_NAME = "abc_melody_lm"


@dataclass
class MelodyLMConfig:
    vocab_size: int = 165
    d_model: int = 160
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 480
    context: int = 256  # tokens attended (prefix + window)
    dropout: float = 0.1

    @classmethod
    def preset(cls, name: str, vocab_size: int) -> "MelodyLMConfig":
        if name == "debug":
            return cls(vocab_size=vocab_size, d_model=32, n_layers=1, n_heads=2, d_ff=64, context=128, dropout=0.0)
        if name == "default":
            return cls(vocab_size=vocab_size)
        raise CheckpointError(f"unknown preset {name!r}; use debug or default")

    def to_dict(self) -> dict:
        return {"model": MODEL_NAME, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "MelodyLMConfig":
        if d.get("model", MODEL_NAME) != MODEL_NAME:
            raise CheckpointError(f"checkpoint is for model {d.get('model')!r}, not {MODEL_NAME}")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _rope_angles(pos: torch.Tensor, d: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) of the rotary angles for positions ``pos`` (T,) or (B, T), head size ``d``:
    computed once per forward pass and shared by every layer."""
    inv = 1.0 / (10000 ** (torch.arange(0, d, 2, device=pos.device, dtype=torch.float32) / d))
    ang = pos.to(torch.float32)[..., None] * inv  # (T, D/2) or (B, T, D/2)
    if ang.dim() == 3:
        ang = ang[:, None]  # (B, 1, T, D/2): per-sequence positions
    return ang.cos().to(dtype), ang.sin().to(dtype)


def _rope(x: torch.Tensor, pos: torch.Tensor, angles: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Rotary embedding of ``x`` (B, H, T, D) at positions ``pos`` (T,)."""
    cos, sin = angles if angles is not None else _rope_angles(pos, x.shape[-1], x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2)


class Block(nn.Module):
    def __init__(self, c: MelodyLMConfig):
        super().__init__()
        self.n_heads = c.n_heads
        self.ln1 = nn.LayerNorm(c.d_model)
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model)
        self.proj = nn.Linear(c.d_model, c.d_model)
        self.ln2 = nn.LayerNorm(c.d_model)
        self.ff = nn.Sequential(nn.Linear(c.d_model, c.d_ff), nn.GELU(), nn.Linear(c.d_ff, c.d_model))
        self.drop = nn.Dropout(c.dropout)
        self.p = c.dropout

    def forward(self, x, pos, cache=None, angles=None):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for t in (q, k, v))
        q, k = _rope(q, pos, angles), _rope(k, pos, angles)
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        new_cache = (k, v)
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.p if self.training else 0.0)
        else:  # new queries attend to everything cached plus themselves causally
            S = k.shape[2]
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        x = x + self.drop(self.proj(y))
        x = x + self.drop(self.ff(self.ln2(x)))
        return x, new_cache


class MelodyLM(nn.Module):
    def __init__(self, config: MelodyLMConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.head.weight = self.embed.weight  # tied
        self.apply(gpt_init)

    def forward(self, idx: torch.Tensor, pos: torch.Tensor | None = None, cache=None):
        """Logits (B, T, V) for tokens ``idx`` (B, T) at positions ``pos`` (T,) or (B, T); with a
        ``cache`` (list of per-layer (k, v)) also returns the extended cache."""
        if pos is None:
            pos = torch.arange(idx.shape[1], device=idx.device)
        if cache is not None and pos.dim() != 1:
            raise ValueError("cached decoding takes one position row for the whole batch")
        x = self.embed(idx)
        angles = _rope_angles(pos, self.config.d_model // self.config.n_heads, x.dtype)
        new = []
        for i, b in enumerate(self.blocks):
            x, c = b(x, pos, None if cache is None else cache[i], angles)
            new.append(c)
        logits = self.head(self.ln_f(x))
        return logits, new

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


# --------------------------------------------------------------------------------------
# checkpoints: config.json + model.safetensors (+ optimizer.safetensors for resuming)


def save_checkpoint(model: MelodyLM, directory: str | Path, extra: dict | None = None,
                    optimizer: torch.optim.Optimizer | None = None, half: bool = False) -> Path:
    from safetensors.torch import save_file

    from emomusic.atomic import atomic_dir

    directory = Path(directory)
    keep = {}
    if directory.is_dir():  # keep files others put there (model card)
        for name in ("MODEL_CARD.md",):
            if (directory / name).exists():
                keep[name] = (directory / name).read_bytes()
    with atomic_dir(directory) as tmp:
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k != "head.weight"}
        if half:
            state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        save_file(state, str(tmp / "model.safetensors"))
        cfg = {**model.config.to_dict(), **(extra or {})}
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
        if optimizer is not None:
            names = {id(p): n for n, p in model.named_parameters()}
            opt = {}
            for p, st in optimizer.state.items():
                n = names.get(id(p))
                if n is None:
                    continue
                for k, v in st.items():
                    opt[f"{n}::{k}"] = v.detach().clone().reshape(-1) if k == "step" else v.detach().contiguous()
            save_file(opt, str(tmp / "optimizer.safetensors"))
        for name, data in keep.items():
            (tmp / name).write_bytes(data)
    return directory


def load_checkpoint(directory: str | Path) -> tuple[MelodyLM, dict]:
    """(model in eval mode, config dict). Missing or mismatched files raise CheckpointError."""
    directory = Path(directory)
    cfg_path, weights = directory / "config.json", directory / "model.safetensors"
    if not cfg_path.exists() or not weights.exists():
        raise CheckpointError(f"no melody checkpoint in {directory} (needs config.json and model.safetensors)")
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CheckpointError(f"{cfg_path} is not valid JSON: {exc}") from None
    config = MelodyLMConfig.from_dict(cfg)
    model = MelodyLM(config)
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights))
    except Exception as exc:
        raise CheckpointError(f"cannot read {weights}: {exc}") from None
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    state["head.weight"] = state.get("embed.weight")
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError) as exc:
        raise CheckpointError(f"{weights} does not match its config: {str(exc).splitlines()[0]}") from None
    model.eval()
    return model, cfg


def load_optimizer_state(model: MelodyLM, optimizer: torch.optim.Optimizer, path: str | Path) -> None:
    from safetensors.torch import load_file

    data = load_file(str(path))
    params = dict(model.named_parameters())
    for key, value in data.items():
        name, field = key.split("::")
        if name in params:
            p = params[name]
            st = optimizer.state[p]
            st[field] = value.reshape(()) if field == "step" else value
