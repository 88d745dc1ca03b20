"""The baseline's tokens: the miditok REMI tokenizer, its grammar and the EMOPIA token data.

* :func:`make_tokenizer` / :func:`write_tokenizer_config` - REMI with :data:`REMI_SETTINGS`
  (``emomusic/tokenizers/remi.json``).
* :class:`TokenGrammar` - token types and which type may follow which (constrained sampling,
  transposition tables).
* :func:`encode_piece` / :func:`encode_score` / :func:`decode_ids` - Piece or symusic score <-> ids.
* :func:`load_emopia_tokens` - EMOPIA *train* clips (never val) as token arrays + (v, a).

No torch here: tokenising needs miditok and symusic only (both imported lazily).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from emomusic.emotion import Emotion
from emomusic.errors import CheckpointError, EmomusicError
from emomusic.paths import tokenizers_dir
from emomusic.piece import Note, Piece

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
