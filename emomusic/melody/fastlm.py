"""Decoding-time twin of :class:`~emomusic.melody.model.MelodyLM` in numpy.

The melody model is small (4 layers of width 160): while decoding one token at a time, a
torch forward pass spends most of its time dispatching operators and calling modules, not
computing. This class holds the same weights as float32 numpy arrays and runs the same
maths (pre-norm blocks, rotary attention over a key/value cache, exact GELU, tied output
head), about 4x faster per step on the CPU. It is inference only; training and the
reference forward pass stay in torch, and tests check that both give the same logits.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

LN_EPS = 1e-5  # torch.nn.LayerNorm's default


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    inv_n = 1.0 / x.shape[-1]
    xc = x - np.add.reduce(x, axis=-1, keepdims=True) * inv_n
    var = np.add.reduce(xc * xc, axis=-1, keepdims=True) * inv_n
    return xc * (w / np.sqrt(var + LN_EPS)) + b


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x * (1.0 / math.sqrt(2.0))))


class NumpyLM:
    """Inference-only copy of a MelodyLM: ``forward(idx, pos, cache) -> (logits, cache)`` with
    the same shapes and meaning as the torch module's (numpy arrays instead of tensors)."""

    def __init__(self, model):
        cfg = model.config
        sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
        self.config = cfg
        self.heads = cfg.n_heads
        self.width = cfg.d_model
        self.head_dim = cfg.d_model // cfg.n_heads
        self.embed = np.ascontiguousarray(sd["embed.weight"])
        self.head = np.ascontiguousarray(sd["embed.weight"].T if "head.weight" not in sd else sd["head.weight"].T)
        self.blocks = []
        for i in range(cfg.n_layers):
            p = f"blocks.{i}."
            self.blocks.append({
                "ln1": (sd[p + "ln1.weight"], sd[p + "ln1.bias"]),
                "qkv": (np.ascontiguousarray(sd[p + "qkv.weight"].T), sd[p + "qkv.bias"]),
                "proj": (np.ascontiguousarray(sd[p + "proj.weight"].T), sd[p + "proj.bias"]),
                "ln2": (sd[p + "ln2.weight"], sd[p + "ln2.bias"]),
                "ff1": (np.ascontiguousarray(sd[p + "ff.0.weight"].T), sd[p + "ff.0.bias"]),
                "ff2": (np.ascontiguousarray(sd[p + "ff.2.weight"].T), sd[p + "ff.2.bias"]),
            })
        self.ln_f = (sd["ln_f.weight"], sd["ln_f.bias"])
        d = self.head_dim
        self.inv_freq = (1.0 / (10000 ** (np.arange(0, d, 2, dtype=np.float32) / d))).astype(np.float32)

    def _angles(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ang = pos.astype(np.float32)[:, None] * self.inv_freq  # (T, D/2)
        return np.cos(ang), np.sin(ang)

    @staticmethod
    def _rope(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
        x1, x2 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x1 * cos - x2 * sin
        out[..., 1::2] = x1 * sin + x2 * cos
        return out

    def forward(self, idx, pos, cache=None):
        """Logits (B, T, V) for tokens ``idx`` (B, T) at positions ``pos`` (T,), and the extended
        cache (a list of per-layer (k, v) of shape (B, H, S, D))."""
        idx = np.asarray(idx, dtype=np.int64)
        pos = np.asarray(pos)
        B, T = idx.shape
        H, D, C = self.heads, self.head_dim, self.width
        x = self.embed[idx]  # (B, T, C)
        cos, sin = self._angles(pos)
        scale = 1.0 / math.sqrt(D)
        new = []
        for i, blk in enumerate(self.blocks):
            h = _layer_norm(x, *blk["ln1"])
            qkv = h @ blk["qkv"][0] + blk["qkv"][1]
            qkv = qkv.reshape(B, T, 3, H, D).transpose(2, 0, 3, 1, 4)  # (3, B, H, T, D)
            qk = self._rope(qkv[:2], cos, sin)
            q, k, v = qk[0], qk[1], qkv[2]
            if cache is not None:
                k = np.concatenate([cache[i][0], k], axis=2)
                v = np.concatenate([cache[i][1], v], axis=2)
            new.append((k, v))
            S = k.shape[2]
            att = (q @ k.transpose(0, 1, 3, 2)) * scale  # (B, H, T, S)
            if T > 1:  # causal: query t sees keys up to S - T + t
                mask = np.tril(np.ones((T, S), dtype=bool), k=S - T)
                att = np.where(mask, att, -np.inf)
            att = att - att.max(-1, keepdims=True)
            np.exp(att, out=att)
            att /= att.sum(-1, keepdims=True)
            y = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
            x = x + (y @ blk["proj"][0] + blk["proj"][1])
            h = _layer_norm(x, *blk["ln2"])
            x = x + (_gelu(h @ blk["ff1"][0] + blk["ff1"][1]) @ blk["ff2"][0] + blk["ff2"][1])
        logits = _layer_norm(x, *self.ln_f) @ self.head
        return logits.astype(np.float32, copy=False), new


def _fingerprint(model) -> tuple:
    """Changes whenever a parameter is modified in place (an optimiser step, load_state_dict)."""
    return tuple((id(p), p._version) for p in model.parameters())


def numpy_twin(model) -> NumpyLM:
    """The model's numpy twin, built once per model object and rebuilt when its weights change."""
    fp = _fingerprint(model)
    twin = model.__dict__.get("_numpy_twin")
    if twin is None or twin[0] != fp:
        twin = (fp, NumpyLM(model))
        model.__dict__["_numpy_twin"] = twin
    return twin[1]
