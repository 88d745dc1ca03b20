"""Decoding-time twin of :class:`~emomusic.melody.model.MelodyLM` in numpy.

The melody model is small (4 layers of width 160): while decoding one token at a time, a
torch forward pass spends most of its time dispatching operators and calling modules, not
computing. This class holds the same weights as float32 numpy arrays and runs the same
maths (pre-norm blocks, rotary attention over a key/value cache, exact GELU, tied output
head), about 4x faster per step on the CPU. It is inference only; training and the
reference forward pass stay in torch, and tests check that both give the same logits.

Folded at load time, so each step does fewer array operations: the layer norms' gain and
bias into the linear layer that follows them, the attention scale 1/sqrt(head size) into
the query weights. The key/value cache (:class:`KVCache`) is one preallocated contiguous
buffer per layer that new keys are written into, not a list of arrays concatenated anew
at every step (with a batch of tunes the copies were most of the step's time).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

LN_EPS = 1e-5  # torch.nn.LayerNorm's default


def _normalise(x: np.ndarray) -> np.ndarray:
    """(x - mean) / sqrt(var + eps) over the last axis of ``x`` (N, C), in place: a layer norm
    without gain and bias (those are folded into the next linear layer)."""
    inv_n = 1.0 / x.shape[-1]
    xc = x - np.add.reduce(x, axis=-1, keepdims=True) * inv_n
    var = np.einsum("ij,ij->i", xc, xc)[:, None]
    var *= inv_n
    var += LN_EPS
    np.sqrt(var, out=var)
    xc /= var
    return xc


def _feed_forward(h: np.ndarray, w1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """A block's MLP on the normalised ``h``: exact GELU between the two layers, with the
    GELU's 1/sqrt(2) folded into the weights at load (so gelu is h' (1 + erf(h')))."""
    h = h @ w1
    h += b1
    g = erf(h)
    g += 1.0
    g *= h
    g = g @ w2
    g += b2
    return g


def _fold(ln, w, b):
    """The linear layer ``y = LN(x) @ w + b`` rewritten as ``normalise(x) @ w' + b'``."""
    g, beta = ln
    w = np.asarray(w, dtype=np.float32)
    b = np.zeros(w.shape[1], np.float32) if b is None else np.asarray(b, dtype=np.float32)
    return (np.ascontiguousarray(g[:, None] * w).astype(np.float32),
            (beta @ w + b).astype(np.float32))


class KVCache:
    """Keys and values of every layer for the tokens seen so far: arrays (L, B, H, capacity, D)
    of which the first ``n`` positions are filled. ``cache[i]`` is layer ``i``'s (k, v)
    (views of shape (B, H, n, D)), so it reads like the torch model's list of pairs.

    Extending a cache (``NumpyLM.forward(..., cache=c)``) writes after position ``c.n`` in the
    shared buffer and returns a new cache object with the longer length; ``c`` itself still
    sees its first ``c.n`` positions unchanged, but a cache extended earlier from ``c`` is
    overwritten (decoding always continues from the newest one)."""

    def __init__(self, k: np.ndarray, v: np.ndarray, n: int):
        self.k, self.v, self.n = k, v, n

    def __len__(self) -> int:
        return self.k.shape[0]

    def __getitem__(self, i: int):
        return self.k[i, :, :, :self.n], self.v[i, :, :, :self.n]

    @property
    def length(self) -> int:
        return self.n

    def reserve(self, n: int) -> "KVCache":
        """This cache with room for at least ``n`` positions (the buffer grows by doubling)."""
        cap = self.k.shape[3]
        if n <= cap:
            return self
        new_cap = max(n, 2 * cap)
        shape = self.k.shape[:3] + (new_cap,) + self.k.shape[4:]
        k, v = np.empty(shape, np.float32), np.empty(shape, np.float32)
        k[:, :, :, :self.n] = self.k[:, :, :, :self.n]
        v[:, :, :, :self.n] = self.v[:, :, :, :self.n]
        return KVCache(k, v, self.n)

    def slide(self, keep: int, cut: int) -> "KVCache":
        """Keep positions ``[0, keep)`` and ``[cut, n)``, dropping the ones between (a sliding
        window that holds on to the control prefix); in place, returns the shorter cache."""
        if not 0 <= keep <= cut <= self.n:
            raise ValueError(f"cannot slide a cache of {self.n} positions to keep {keep} and cut at {cut}")
        m = self.n - cut
        self.k[:, :, :, keep:keep + m] = self.k[:, :, :, cut:self.n].copy()
        self.v[:, :, :, keep:keep + m] = self.v[:, :, :, cut:self.n].copy()
        return KVCache(self.k, self.v, keep + m)


class NumpyLM:
    """Inference-only copy of a MelodyLM: ``forward(idx, pos, cache) -> (logits, cache)`` with
    the same shapes and meaning as the torch module's (numpy arrays instead of tensors; the
    cache is a :class:`KVCache`)."""

    def __init__(self, model):
        cfg = model.config
        sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
        self.config = cfg
        self.heads = H = cfg.n_heads
        self.width = C = cfg.d_model
        self.head_dim = D = cfg.d_model // cfg.n_heads
        self.embed = np.ascontiguousarray(sd["embed.weight"])
        head = sd["embed.weight"].T if "head.weight" not in sd else sd["head.weight"].T
        self.head = _fold((sd["ln_f.weight"], sd["ln_f.bias"]), head, None)
        scale = np.ones(3 * C, np.float32)
        scale[:C] = 1.0 / math.sqrt(D)  # queries carry the attention scale
        r2 = 1.0 / math.sqrt(2.0)
        self.blocks = []
        for i in range(cfg.n_layers):
            p = f"blocks.{i}."
            wq, bq = _fold((sd[p + "ln1.weight"], sd[p + "ln1.bias"]), sd[p + "qkv.weight"].T, sd[p + "qkv.bias"])
            wq, bq = wq * scale, bq * scale
            # rotary embedding as out = x * cos + swap(x) * sin, swap(x)[2j] = -x[2j+1], swap(x)[2j+1] = x[2j]:
            # the swapped queries and keys are 2C more output columns of the same matrix product
            wsw, bsw = np.empty_like(wq[:, :2 * C]), np.empty_like(bq[:2 * C])
            wsw[:, 0::2], wsw[:, 1::2] = -wq[:, 1:2 * C:2], wq[:, 0:2 * C:2]
            bsw[0::2], bsw[1::2] = -bq[1:2 * C:2], bq[0:2 * C:2]
            w1, b1 = _fold((sd[p + "ln2.weight"], sd[p + "ln2.bias"]), sd[p + "ff.0.weight"].T, sd[p + "ff.0.bias"])
            self.blocks.append((
                (np.ascontiguousarray(np.concatenate([wq, wsw], 1)), np.concatenate([bq, bsw]).astype(np.float32)),
                (np.ascontiguousarray(sd[p + "proj.weight"].T), sd[p + "proj.bias"]),
                # exact GELU: gelu(h) = h (1 + erf(h / sqrt 2)) / 2 = (h' (1 + erf(h'))) / sqrt 2 with h' = h / sqrt 2
                (w1 * r2, b1 * r2),
                (np.ascontiguousarray(sd[p + "ff.2.weight"].T * r2), sd[p + "ff.2.bias"]),
            ))
        self.inv_freq = (1.0 / (10000 ** (np.arange(0, D, 2, dtype=np.float32) / D))).astype(np.float32)
        self._table = np.zeros((0, 2 * C), np.float32), np.zeros((0, 2 * C), np.float32)

    def _angles(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cos, sin) (T, 2C) of positions ``pos`` for the queries and keys side by side (every
        head, each angle twice: once per dimension of its pair), from a table grown on demand."""
        pos = pos.astype(np.int64)
        hi = int(pos.max()) + 1 if pos.size else 0
        cos, sin = self._table
        if hi > len(cos) or pos.min(initial=0) < 0:
            lo = min(0, int(pos.min(initial=0)))
            n = max(hi, 2 * len(cos), 512)
            ang = np.arange(lo, n, dtype=np.float32)[:, None] * self.inv_freq
            reps = 4 * self.heads  # queries and keys, every head
            full = lambda f: np.tile(np.repeat(f(ang), 2, axis=1), (1, reps // 2)).astype(np.float32)
            if lo < 0:
                return full(np.cos)[pos - lo], full(np.sin)[pos - lo]
            self._table = cos, sin = full(np.cos), full(np.sin)
        return cos[pos], sin[pos]

    def new_cache(self, batch: int, capacity: int) -> KVCache:
        shape = (len(self.blocks), batch, self.heads, max(1, capacity), self.head_dim)
        return KVCache(np.empty(shape, np.float32), np.empty(shape, np.float32), 0)

    def _step(self, token: int, pos: int, cache: KVCache, logits: bool = True) -> np.ndarray | None:
        """Logits (V,) of one token of a batch of one at ``pos``, written into ``cache`` at
        ``cache.n`` (the caller advances it): :meth:`forward` for B = T = 1 on 1-d arrays,
        with fewer and cheaper array operations (the usual case while decoding one tune).
        ``logits=False``: only the cache is written (a token whose prediction is not needed)."""
        H, D, C = self.heads, self.head_dim, self.width
        C2, inv_c = 2 * C, 1.0 / C
        n = cache.n
        S = n + 1
        x = self.embed[token].copy()
        if 0 <= pos < len(self._table[0]):
            cos, sin = self._table[0][pos], self._table[1][pos]
        else:
            cos, sin = self._angles(np.array([pos]))
            cos, sin = cos[0], sin[0]
        for i, ((wqkv, bqkv), (wp, bp), (w1, b1), (w2, b2)) in enumerate(self.blocks):
            h = x - np.add.reduce(x) * inv_c
            h *= 1.0 / math.sqrt(float(h @ h) * inv_c + LN_EPS)
            qkv = h @ wqkv
            qkv += bqkv
            qk = qkv[:C2] * cos
            qk += qkv[3 * C:] * sin
            K, V = cache.k[i, 0], cache.v[i, 0]  # (H, capacity, D)
            K[:, n] = qk[C:].reshape(H, D)
            V[:, n] = qkv[C2:3 * C].reshape(H, D)
            att = np.matmul(K[:, :S], qk[:C].reshape(H, D, 1))  # (H, S, 1)
            att -= att.max(axis=1, keepdims=True)
            np.exp(att, out=att)
            att /= np.add.reduce(att, axis=1, keepdims=True)
            y = np.matmul(att.reshape(H, 1, S), V[:, :S]).reshape(C) @ wp
            y += bp
            x += y
            h = x - np.add.reduce(x) * inv_c
            h *= 1.0 / math.sqrt(float(h @ h) * inv_c + LN_EPS)
            x += _feed_forward(h, w1, b1, w2, b2)
        if not logits:
            return None
        h = x - np.add.reduce(x) * inv_c
        h *= 1.0 / math.sqrt(float(h @ h) * inv_c + LN_EPS)
        logits = h @ self.head[0]
        logits += self.head[1]
        return logits

    def forward(self, idx, pos, cache: KVCache | None = None, last_only: bool = False):
        """Logits (B, T, V) for tokens ``idx`` (B, T) at positions ``pos`` (T,), and the extended
        cache (a :class:`KVCache`; ``cache[i]`` is layer ``i``'s (k, v) of shape (B, H, S, D)).
        ``last_only``: the logits of the last position only, (B, 1, V) (what decoding needs)."""
        idx = np.asarray(idx, dtype=np.int64)
        pos = np.asarray(pos)
        B, T = idx.shape
        H, D, C = self.heads, self.head_dim, self.width
        if cache is None:
            cache = self.new_cache(B, max(T, self.config.context))
        cache = cache.reserve(cache.n + T)
        n0, S = cache.n, cache.n + T
        if B == 1 and (T == 1 or (T <= 3 and last_only)):  # one token at a time: the cheaper path
            for j in range(T):
                logits = self._step(int(idx[0, j]), int(pos[j]), cache, logits=j == T - 1)
                cache = KVCache(cache.k, cache.v, cache.n + 1)
            return logits.reshape(1, 1, -1).astype(np.float32, copy=False), cache
        x = self.embed[idx].reshape(B * T, C)
        cos, sin = self._angles(pos)
        C2 = 2 * C
        if T > 1:
            mask = np.where(np.tri(T, S, S - T, dtype=bool), np.float32(0.0), np.float32(-np.inf))
        for i, ((wqkv, bqkv), (wp, bp), (w1, b1), (w2, b2)) in enumerate(self.blocks):
            qkv = _normalise(x) @ wqkv
            qkv += bqkv
            qkv = qkv.reshape(B, T, 5 * C)
            qk = qkv[:, :, :C2] * cos
            qk += qkv[:, :, 3 * C:] * sin
            q = qk[:, :, :C].reshape(B, T, H, D).transpose(0, 2, 1, 3)  # (B, H, T, D)
            cache.k[i, :, :, n0:S] = qk[:, :, C:].reshape(B, T, H, D).transpose(0, 2, 1, 3)
            cache.v[i, :, :, n0:S] = qkv[:, :, C2:3 * C].reshape(B, T, H, D).transpose(0, 2, 1, 3)
            att = q @ cache.k[i, :, :, :S].transpose(0, 1, 3, 2)  # (B, H, T, S)
            if T > 1:  # causal: query t sees keys up to S - T + t
                att += mask
            att -= att.max(-1, keepdims=True)
            np.exp(att, out=att)
            att /= np.add.reduce(att, axis=-1, keepdims=True)
            y = (att @ cache.v[i, :, :, :S]).transpose(0, 2, 1, 3).reshape(B * T, C)
            y = y @ wp
            y += bp
            x = x + y
            x += _feed_forward(_normalise(x), w1, b1, w2, b2)
        if last_only:
            x = x.reshape(B, T, C)[:, -1]
            T = 1
        logits = _normalise(x) @ self.head[0]
        logits += self.head[1]
        return logits.reshape(B, T, -1).astype(np.float32, copy=False), KVCache(cache.k, cache.v, S)


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
