"""The baseline's model: :class:`BaselineConfig`, the transformer and :class:`Baseline`.

* :class:`BaselineConfig` - dataclass with ``debug`` / ``default`` presets, JSON round trip.
* :func:`build_network` - the plain ``nn.Module`` ARTransformer (pre-LN GPT blocks, KV cache).
* :class:`Baseline` - network + tokenizer: ``generate(emotion, bars, n, seed) -> list[Piece]``,
  ``save(dir)`` / ``Baseline.load(dir)`` (config.json + model.safetensors + tokenizer.json).

Sampling is constrained by the REMI grammar (:class:`~emomusic.compose.baseline_tokens.TokenGrammar`),
so every output decodes into a valid piece. torch is imported inside functions only.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

from emomusic.compose.baseline_tokens import TokenGrammar, decode_ids, make_tokenizer
from emomusic.emotion import Emotion
from emomusic.errors import CheckpointError, EmomusicError
from emomusic.paths import checkpoint_path
from emomusic.piece import Marker, Note, Piece, Tempo, TimeSignature, Track


# -- configuration --------------------------------------------------------------------------------
@dataclass
class BaselineConfig:
    preset: str = "default"
    vocab_size: int = 0  # filled from the tokenizer
    d_model: int = 160
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 640
    max_len: int = 384  # positions, condition vector included (about 7 bars of EMOPIA piano)
    dropout: float = 0.1
    cond_dropout: float = 0.1
    # training
    batch_size: int = 8
    lr: float = 8e-4
    weight_decay: float = 0.01
    warmup_steps: int = 50
    steps: int = 1000
    grad_clip: float = 1.0
    transpose: int = 3  # random transposition in [-transpose, transpose] semitones
    # sampling
    temperature: float = 1.0
    top_p: float = 0.95
    tempo: float = 120.0  # BPM of the output (EMOPIA's transcriptions use 120)
    save_dtype: str = "float32"

    @classmethod
    def preset_config(cls, name: str) -> "BaselineConfig":
        if name == "debug":
            return cls(preset="debug", d_model=32, n_layers=1, n_heads=2, d_ff=64, max_len=64, batch_size=2,
                       lr=1e-3, warmup_steps=1, steps=2, dropout=0.0)
        if name == "default":
            return cls(save_dtype="float16")
        raise EmomusicError(f"unknown preset {name!r}; use debug or default")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "BaselineConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise CheckpointError(f"baseline config has unknown fields: {', '.join(sorted(unknown))}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> "BaselineConfig":
        return cls.from_dict(json.loads(text))


# -- the network -----------------------------------------------------------------------------------
def _torch():
    import torch

    return torch


def build_network(cfg: BaselineConfig):
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1 = nn.LayerNorm(cfg.d_model)
            self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
            self.proj = nn.Linear(cfg.d_model, cfg.d_model)
            self.ln2 = nn.LayerNorm(cfg.d_model)
            self.ff = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_ff), nn.GELU(), nn.Linear(cfg.d_ff, cfg.d_model))
            self.drop = nn.Dropout(cfg.dropout)

        def forward(self, x, past=None):
            b, t, d = x.shape
            h = cfg.n_heads
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
            q = q.view(b, t, h, d // h).transpose(1, 2)
            k = k.view(b, t, h, d // h).transpose(1, 2)
            v = v.view(b, t, h, d // h).transpose(1, 2)
            if past is not None:
                k = torch.cat([past[0], k], dim=2)
                v = torch.cat([past[1], v], dim=2)
            drop = cfg.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=past is None and t > 1)
            y = y.transpose(1, 2).reshape(b, t, d)
            x = x + self.drop(self.proj(y))
            x = x + self.drop(self.ff(self.ln2(x)))
            return x, (k, v)

    class ARTransformer(nn.Module):
        """Decoder-only transformer; position 0 holds the emotion condition vector."""

        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(cfg.vocab_size, cfg.d_model)
            self.pos = nn.Embedding(cfg.max_len, cfg.d_model)
            self.cond = nn.Sequential(nn.Linear(2, cfg.d_model), nn.SiLU(), nn.Linear(cfg.d_model, cfg.d_model))
            self.null_cond = nn.Parameter(torch.zeros(cfg.d_model))
            self.blocks = nn.ModuleList([Block() for _ in range(cfg.n_layers)])
            self.ln_f = nn.LayerNorm(cfg.d_model)
            self.head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
            self.head.weight = self.tok.weight  # tied
            from emomusic.nnutil import gpt_init

            self.apply(gpt_init)

        def condition(self, va, drop_mask=None):
            """(B, 2) valence-arousal -> (B, d); rows where ``drop_mask`` is True get the null vector."""
            c = self.cond(va)
            if drop_mask is not None:
                c = torch.where(drop_mask[:, None], self.null_cond.expand_as(c), c)
            return c

        def forward(self, tokens, cond_vec=None, past=None, pos_offset: int = 0):
            """Logits for the next token at every position.

            Without ``past``: input is [cond_vec, tokens...] (length 1 + T), output (B, 1+T, V);
            output i predicts tokens[i]. With ``past`` (a KV cache), ``tokens`` continue the
            cached sequence at position ``pos_offset``.
            """
            x = self.tok(tokens) if tokens is not None and tokens.numel() else None
            if past is None:
                c = cond_vec[:, None, :]
                x = c if x is None else torch.cat([c, x], dim=1)
            t = x.shape[1]
            pos = torch.arange(pos_offset, pos_offset + t, device=x.device)
            x = x + self.pos(pos)[None]
            new_past = []
            for i, blk in enumerate(self.blocks):
                x, kv = blk(x, None if past is None else past[i])
                new_past.append(kv)
            return self.head(self.ln_f(x)), new_past

    return ARTransformer()


# -- model wrapper ---------------------------------------------------------------------------------
class Baseline:
    """Network + tokenizer + sampling."""

    def __init__(self, cfg: BaselineConfig, tokenizer=None, net=None, device: str = "cpu"):
        self.tokenizer = tokenizer if tokenizer is not None else make_tokenizer()
        if cfg.vocab_size == 0:
            cfg.vocab_size = len(self.tokenizer.vocab)
        if cfg.vocab_size != len(self.tokenizer.vocab):
            raise CheckpointError(f"baseline vocab size {cfg.vocab_size} does not match the tokenizer ({len(self.tokenizer.vocab)})")
        if cfg.d_model % cfg.n_heads:
            raise EmomusicError("d_model must be a multiple of n_heads")
        self.cfg = cfg
        self.grammar = TokenGrammar(self.tokenizer)
        self.net = net if net is not None else build_network(cfg)
        self.device = device
        self.net.to(device)

    # ---- persistence
    def save(self, directory: str | os.PathLike, extra_files: dict[str, str] | None = None, dtype: str | None = None) -> Path:
        """Write config.json, model.safetensors and tokenizer.json atomically into ``directory``.

        Weights are stored in ``dtype`` (default ``cfg.save_dtype``; training checkpoints use
        float32 so resuming loses nothing); loading always works in float32.
        """
        from safetensors.torch import save_file

        from emomusic.atomic import atomic_dir

        directory = Path(directory)
        torch = _torch()
        dtype = getattr(torch, dtype or self.cfg.save_dtype)
        state = {k: v.detach().to("cpu", dtype=dtype if v.is_floating_point() else v.dtype).contiguous()
                 for k, v in self.net.state_dict().items() if k != "head.weight"}
        keep = {}
        if directory.is_dir():  # keep files other tools put there (model card, training state, loss log)
            for p in directory.iterdir():
                if p.is_file() and p.name not in ("config.json", "model.safetensors", "tokenizer.json"):
                    keep[p.name] = p.read_bytes()
        with atomic_dir(directory) as tmp:
            (tmp / "config.json").write_text(self.cfg.to_json(), encoding="utf-8")
            save_file(state, str(tmp / "model.safetensors"), metadata={"model": "emomusic.compose.baseline"})
            self.tokenizer.save(tmp / "tokenizer.json")
            for name, data in keep.items():
                (tmp / name).write_bytes(data)
            for name, text in (extra_files or {}).items():
                (tmp / name).write_text(text, encoding="utf-8")
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike | None = None, device: str = "cpu") -> "Baseline":
        """Rebuild from ``config.json`` and load ``model.safetensors`` (default: emomusic/checkpoints/baseline)."""
        from safetensors.torch import load_file

        directory = Path(directory) if directory else checkpoint_path("baseline")
        cfg_path, w_path, t_path = directory / "config.json", directory / "model.safetensors", directory / "tokenizer.json"
        for p in (cfg_path, w_path, t_path):
            if not p.is_file():
                raise CheckpointError(f"baseline checkpoint incomplete: {p} is missing")
        try:
            cfg = BaselineConfig.from_json(cfg_path.read_text(encoding="utf-8"))
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"cannot read {cfg_path}: {exc}") from None
        tok = make_tokenizer(t_path)
        model = cls(cfg, tok, device=device)
        try:
            state = load_file(str(w_path))
        except Exception as exc:
            raise CheckpointError(f"cannot read {w_path}: {exc}") from None
        torch = _torch()
        state = {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()}
        state["head.weight"] = state.get("tok.weight")
        try:
            model.net.load_state_dict(state)
        except (RuntimeError, KeyError) as exc:
            raise CheckpointError(f"{w_path} does not fit the baseline config: {str(exc).splitlines()[0]}") from None
        model.net.eval()
        return model

    def n_parameters(self) -> int:
        return sum(p.numel() for n, p in self.net.named_parameters())

    # ---- sampling
    def generate_ids(self, emotion: Emotion, bars: int = 16, n: int = 1, seed: int = 0, guidance: float = 1.0,
                     temperature: float | None = None, top_p: float | None = None, max_tokens: int | None = None) -> list[list[int]]:
        """Sample ``n`` REMI id sequences of ``bars`` bars for ``emotion``."""
        torch = _torch()
        if not isinstance(emotion, Emotion):
            raise EmomusicError("emotion must be an Emotion")
        if int(bars) < 1 or int(n) < 1:
            raise EmomusicError(f"bars and n must be >= 1, got bars={bars}, n={n}")
        cfg = self.cfg
        temperature = cfg.temperature if temperature is None else float(temperature)
        top_p = cfg.top_p if top_p is None else float(top_p)
        if not temperature > 0 or not 0 < top_p <= 1:
            raise EmomusicError("temperature must be > 0 and top_p in (0, 1]")
        max_tokens = max_tokens or bars * 160 + 8
        g = torch.Generator(device="cpu").manual_seed(int(seed))
        dev = self.device
        net = self.net
        net.eval()
        use_cfg = abs(guidance - 1.0) > 1e-9
        va = torch.tensor([emotion.as_tuple()] * n, dtype=torch.float32, device=dev)
        next_mask = torch.as_tensor(self.grammar.next_mask, device=dev)
        type_of = torch.as_tensor(self.grammar.type_of, device=dev)
        bar_id = self.grammar.bar_id
        seqs = torch.full((n, 1), bar_id, dtype=torch.long, device=dev)  # every piece opens with a bar
        bar_count = torch.ones(n, dtype=torch.long, device=dev)
        done = torch.zeros(n, dtype=torch.bool, device=dev)
        with torch.no_grad():
            cond = net.condition(va)
            if use_cfg:
                cond = torch.cat([cond, net.condition(va, torch.ones(n, dtype=torch.bool, device=dev))])

            def prefill(tokens):
                t = torch.cat([tokens, tokens]) if use_cfg else tokens
                logits, past = net(t, cond)
                return logits[:, -1], past

            window = seqs
            last, past = prefill(window)
            length = 1 + window.shape[1]
            while not bool(done.all()) and seqs.shape[1] < max_tokens:
                if use_cfg:
                    lc, lu = last[:n], last[n:]
                    logits = lu + guidance * (lc - lu)
                else:
                    logits = last
                logits = logits.float() / temperature
                prev_type = type_of[seqs[:, -1]]
                logits = logits.masked_fill(~next_mask[prev_type], float("-inf"))
                probs = torch.softmax(logits, dim=-1)
                if top_p < 1.0:
                    sp, si = probs.sort(dim=-1, descending=True)
                    cum = sp.cumsum(-1)
                    sp = sp.masked_fill(cum - sp > top_p, 0.0)
                    probs = torch.zeros_like(probs).scatter(-1, si, sp)
                nxt = torch.multinomial(probs.cpu(), 1, generator=g).to(dev)[:, 0]
                nxt = torch.where(done, torch.full_like(nxt, self.grammar.pad_id), nxt)
                bar_count = bar_count + ((nxt == bar_id) & ~done).long()
                done = done | (bar_count > bars)
                seqs = torch.cat([seqs, nxt[:, None]], dim=1)
                if length >= cfg.max_len:  # slide: keep the last half of the context and re-prefill
                    keep = cfg.max_len // 2
                    window = seqs[:, -keep:]
                    last, past = prefill(window)
                    length = 1 + window.shape[1]
                else:
                    step = torch.cat([nxt, nxt]) if use_cfg else nxt
                    out, past = net(step[:, None], None, past=past, pos_offset=length)
                    last = out[:, -1]
                    length += 1
        result = []
        for row in seqs.tolist():
            ids, bars_seen = [], 0
            for t in row:
                if t == bar_id:
                    bars_seen += 1
                    if bars_seen > bars:
                        break
                if t == self.grammar.pad_id:
                    break
                ids.append(t)
            result.append(ids)
        return result

    def ids_to_piece(self, ids: Sequence[int], emotion: Emotion, bars: int) -> Piece:
        notes = decode_ids(self.tokenizer, ids)
        end = bars * 4.0
        notes = [n if n.end <= end else Note(n.pitch, n.start, end - n.start, n.velocity) for n in notes if n.start < end]
        return Piece(
            tracks=[Track("Piano", 0, False, notes)],
            tempos=[Tempo(self.cfg.tempo)],
            keys=[],
            time_signatures=[TimeSignature(4, 4)],
            markers=[Marker(emotion.marker_text(), 0.0)],
            title="emomusic baseline",
        ).validate()

    def generate(self, emotion: Emotion, bars: int = 16, n: int = 1, seed: int = 0, guidance: float = 1.0, **sampling) -> list[Piece]:
        """``n`` pieces of ``bars`` 4/4 bars for ``emotion`` (same seed, same pieces)."""
        ids = self.generate_ids(emotion, bars=bars, n=n, seed=seed, guidance=guidance, **sampling)
        return [self.ids_to_piece(x, emotion, bars) for x in ids]
