"""Autoregressive baseline: a small decoder-only transformer over miditok REMI tokens.

The approach of EMOPIA (Hung et al. 2021) and midi-emotion (Sulun et al. 2022): an emotion
condition is prepended to a token sequence and a causal transformer predicts the next
token. Here the condition is the same one the diffusion model gets: continuous (valence,
arousal) embedded by a small MLP into one vector that sits at position 0, with condition
dropout (a learned "no emotion" vector) so classifier-free guidance works.

* :class:`BaselineConfig` - dataclass with ``debug`` / ``default`` presets, JSON round trip.
* :class:`ARTransformer` - the plain ``nn.Module`` (pre-LN GPT blocks, KV cache).
* :class:`Baseline` - network + tokenizer: ``generate(emotion, bars, n, seed) -> list[Piece]``,
  ``save(dir)`` / ``Baseline.load(dir)`` (config.json + model.safetensors + tokenizer.json).
* :func:`train_baseline` - resumable training loop with a progress bar and a CSV loss log.
* :func:`load_emopia_tokens` - EMOPIA *train* clips (never val) as token arrays + (v, a).

Sampling is constrained by the REMI grammar (Pitch -> Velocity -> Duration; a note follows a
Position), so every output decodes into a valid piece.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Sequence

import numpy as np

from emomusic.emotion import Emotion
from emomusic.errors import CheckpointError, EmomusicError
from emomusic.paths import checkpoint_path, tokenizers_dir
from emomusic.piece import Marker, Note, Piece, Tempo, TimeSignature, Track

TOKENIZER_FILE = "remi.json"
PIANO_TOP = 108
# REMI settings shared by the baseline (emomusic/tokenizers/remi.json is written from these).
REMI_SETTINGS = dict(
    pitch_range=(21, 109),
    beat_res={(0, 4): 8, (4, 12): 4},
    num_velocities=16,
    use_time_signatures=False,
    use_tempos=False,
    use_chords=False,
    use_rests=False,
    use_programs=False,
    special_tokens=["PAD"],
)


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


# -- tokenizer -------------------------------------------------------------------------------------
def make_tokenizer(path: str | os.PathLike | None = None):
    """The REMI tokenizer: from ``path`` (a miditok JSON) or from :data:`REMI_SETTINGS`."""
    import miditok

    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"tokenizer config not found: {path}")
        return miditok.REMI(params=path)
    shipped = tokenizers_dir() / TOKENIZER_FILE
    if shipped.is_file():
        return miditok.REMI(params=shipped)
    return miditok.REMI(miditok.TokenizerConfig(**REMI_SETTINGS))


def write_tokenizer_config(path: str | os.PathLike | None = None) -> Path:
    """Write ``emomusic/tokenizers/remi.json`` (or ``path``) from :data:`REMI_SETTINGS`."""
    import miditok

    from emomusic.atomic import atomic_path

    path = Path(path) if path else tokenizers_dir() / TOKENIZER_FILE
    tok = miditok.REMI(miditok.TokenizerConfig(**REMI_SETTINGS))
    with atomic_path(path) as tmp:
        tok.save(tmp)
    return path


class TokenGrammar:
    """Token types of a REMI vocabulary and which type may follow which."""

    TYPES = ("PAD", "Bar", "Position", "Pitch", "Velocity", "Duration", "Other")

    def __init__(self, tokenizer):
        vocab = tokenizer.vocab
        size = len(vocab)
        self.type_of = np.full(size, self.TYPES.index("Other"), dtype=np.int64)
        self.pitch_of = np.full(size, -1, dtype=np.int64)
        for name, i in vocab.items():
            kind, _, value = name.partition("_")
            if kind in self.TYPES:
                self.type_of[i] = self.TYPES.index(kind)
            if kind == "Pitch":
                self.pitch_of[i] = int(value)
        self.pad_id = int(vocab.get("PAD_None", 0))
        self.bar_id = int(vocab["Bar_None"])
        self.pitch_to_id = {int(p): int(i) for i, p in enumerate(self.pitch_of) if p >= 0}
        allowed = {
            "PAD": ("Bar",),
            "Bar": ("Bar", "Position"),
            "Position": ("Pitch",),
            "Pitch": ("Velocity",),
            "Velocity": ("Duration",),
            "Duration": ("Pitch", "Position", "Bar"),
            "Other": ("Bar", "Position"),
        }
        self.next_mask = np.zeros((len(self.TYPES), size), dtype=bool)
        for t, nxt in allowed.items():
            self.next_mask[self.TYPES.index(t)] = np.isin(self.type_of, [self.TYPES.index(x) for x in nxt])
        self.next_mask[:, self.pitch_of > PIANO_TOP] = False  # miditok's range is inclusive: keep to the 88 keys

    def transpose_table(self, k: int) -> np.ndarray | None:
        """id -> id map shifting every Pitch token by ``k`` semitones (None if k is 0)."""
        if k == 0:
            return None
        table = np.arange(len(self.type_of))
        for p, i in self.pitch_to_id.items():
            table[i] = self.pitch_to_id.get(p + k, -1)
        return table


# -- Piece <-> tokens -----------------------------------------------------------------------------
def piece_to_score(piece: Piece, tpq: int = 480):
    """All non-drum notes of ``piece`` in one symusic piano track."""
    from symusic import Note as SNote
    from symusic import Score
    from symusic import Track as STrack

    score = Score(tpq)
    track = STrack(name="Piano", program=0, is_drum=False)
    for n in piece.notes:
        track.notes.append(SNote(int(round(n.start * tpq)), max(1, int(round(n.duration * tpq))), n.pitch, n.velocity))
    score.tracks.append(track)
    return score


def score_to_notes(score) -> list[Note]:
    tpq = score.tpq
    out = []
    for tr in score.tracks:
        if tr.is_drum:
            continue
        for n in tr.notes:
            if n.duration > 0 and 0 <= n.pitch <= 127:
                out.append(Note(int(n.pitch), n.time / tpq, n.duration / tpq, int(min(127, max(1, n.velocity)))))
    out.sort(key=lambda x: (x.start, x.pitch))
    return out


def encode_score(tokenizer, score) -> np.ndarray:
    """REMI ids of a symusic score, every track merged into one piano stream."""
    from symusic import Score
    from symusic import Track as STrack

    merged = Score(score.tpq)
    track = STrack(name="Piano", program=0, is_drum=False)
    for tr in score.tracks:
        if not tr.is_drum:
            for n in tr.notes:
                track.notes.append(n)
    track.notes.sort(key=lambda n: (n.time, n.pitch))
    merged.tracks.append(track)
    seqs = tokenizer(merged)
    seq = seqs[0] if isinstance(seqs, list) else seqs
    return np.asarray(seq.ids, dtype=np.int64)


def encode_piece(tokenizer, piece: Piece) -> np.ndarray:
    return encode_score(tokenizer, piece_to_score(piece))


def decode_ids(tokenizer, ids: Sequence[int]) -> list[Note]:
    pad = tokenizer.vocab.get("PAD_None", -1)
    ids = [int(i) for i in ids if int(i) != pad]
    if not ids:
        return []
    return score_to_notes(tokenizer.decode([ids]))


# -- data ------------------------------------------------------------------------------------------
def emopia_clip_emotion(name: str) -> Emotion:
    """EMOPIA clip file name ``Q3_xxx_1.mid`` -> the centre of quadrant Q3."""
    q = Path(name).name[:2].upper()
    return Emotion.from_quadrant(q)


def load_emopia_tokens(emopia_dir: str | os.PathLike, tokenizer, split: str = "train", cache_dir: str | os.PathLike | None = None,
                       progress: bool = True) -> list[tuple[np.ndarray, tuple[float, float], str]]:
    """Token ids, (valence, arousal) and clip name of every EMOPIA clip in ``split``.

    Only ``split/train_clip.csv`` is used for training; val clips are the benchmark's
    reference set. Results are cached (npz) under ``cache_dir``.
    """
    from symusic import Score

    emopia_dir = Path(emopia_dir)
    listing = emopia_dir / "split" / f"{split}_clip.csv"
    if not listing.is_file():
        raise EmomusicError(f"EMOPIA split file not found: {listing}")
    with open(listing, newline="") as fh:
        names = [row["clip_name"] for row in csv.DictReader(fh)]
    cache = None
    if cache_dir is not None:
        import hashlib

        key = hashlib.sha1((json.dumps(sorted(tokenizer.vocab.items())) + str(listing.resolve()) + ",".join(names)).encode()).hexdigest()[:12]
        cache = Path(cache_dir) / f"baseline_emopia_{split}_{key}.npz"
        if cache.is_file():
            z = np.load(cache, allow_pickle=False)
            out = []
            for i, nm in enumerate(z["names"]):
                out.append((z[f"ids_{i}"], tuple(float(x) for x in z["va"][i]), str(nm)))
            return out
    from tqdm import tqdm

    out = []
    for nm in tqdm(names, desc=f"tokenising EMOPIA {split}", disable=not progress, file=None):
        path = emopia_dir / "midis" / nm
        if not path.is_file():
            continue
        try:
            ids = encode_score(tokenizer, Score(str(path)))
        except Exception:  # a corrupt clip is skipped, not fatal
            continue
        if ids.size < 8:
            continue
        out.append((ids, emopia_clip_emotion(nm).as_tuple(), nm))
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"ids_{i}": ids for i, (ids, _, _) in enumerate(out)}
        np.savez(cache, names=np.array([x[2] for x in out]), va=np.array([x[1] for x in out], dtype=np.float32), **arrays)
    return out


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


_CACHE: dict[str, Baseline] = {}


def load_baseline(checkpoint: str | os.PathLike | None = None, device: str = "cpu") -> Baseline:
    """Load (and cache) a baseline checkpoint; default the shipped ``emomusic/checkpoints/baseline``."""
    path = str(Path(checkpoint) if checkpoint else checkpoint_path("baseline"))
    key = f"{path}@{device}"
    if key not in _CACHE:
        _CACHE[key] = Baseline.load(path, device=device)
    return _CACHE[key]


def generate(emotion: Emotion, bars: int = 16, n: int = 1, seed: int = 0, checkpoint: str | os.PathLike | None = None,
             guidance: float = 1.0) -> list[Piece]:
    """Generate with the shipped (or given) baseline checkpoint."""
    return load_baseline(checkpoint).generate(emotion, bars=bars, n=n, seed=seed, guidance=guidance)


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
