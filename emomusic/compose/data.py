"""Reading MIDI corpora into segment stores, with an .npz cache.

A :class:`SegmentStore` keeps notes (not rolls: a roll is 34 kB, a segment's notes a few
hundred bytes) grouped by segment; :meth:`SegmentStore.rolls` builds piano rolls for a batch.

* :func:`emopia_files` - EMOPIA *train* clips (``split/train_clip.csv``) with their quadrant
  label. The val split is never read here: the benchmark compares against it.
* :func:`corpus_files` - every MIDI under some folders (POP909, VGMIDI unlabelled, ...),
  unlabelled.
* :func:`build_store` - read (with symusic), merge all non-drum tracks into one piano part,
  cut into segments on each file's beat grid, cache under ``cache_dir``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emomusic.emotion import QUADRANT_CENTRES
from emomusic.errors import EmomusicError

from .representation import DURATION, ONSET, VELOCITY

NO_LABEL = (math.nan, math.nan)


def emopia_files(emopia_dir: str | os.PathLike, split: str = "train") -> list[tuple[Path, tuple[float, float]]]:
    """EMOPIA clips of ``split`` (train only for training!) with the centre of their quadrant."""
    emopia_dir = Path(emopia_dir)
    listing = emopia_dir / "split" / f"{split}_clip.csv"
    if not listing.is_file():
        raise EmomusicError(f"{emopia_dir} is not an EMOPIA folder ({listing.relative_to(emopia_dir)} missing)")
    out = []
    with open(listing, newline="") as fh:
        for row in csv.DictReader(fh):
            name = row["clip_name"]
            path = emopia_dir / "midis" / name
            q = name[:2].upper()
            if path.is_file() and q in QUADRANT_CENTRES:
                out.append((path, QUADRANT_CENTRES[q]))
    if not out:
        raise EmomusicError(f"no EMOPIA {split} clips found under {emopia_dir / 'midis'}")
    return out


def corpus_files(dirs, exclude: tuple[str, ...] = ()) -> list[tuple[Path, tuple[float, float]]]:
    """Every .mid/.midi under ``dirs`` (recursively), unlabelled. EMOPIA folders are read via
    their train split only."""
    out = []
    for d in dirs:
        d = Path(d)
        if not d.exists():
            raise EmomusicError(f"data folder not found: {d}")
        if (d / "split" / "train_clip.csv").is_file():
            out.extend(emopia_files(d, "train"))
            continue
        files = [d] if d.is_file() else sorted(p for p in d.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
        out.extend((p, NO_LABEL) for p in files if not any(x in str(p) for x in exclude))
    if not out:
        raise EmomusicError("no MIDI files found in the given data folders")
    return out


def read_notes(path: str | os.PathLike) -> np.ndarray:
    """(N, 4) float32 (pitch, start beat, duration beats, velocity) of all non-drum notes."""
    from symusic import Score

    score = Score(str(path))
    tpq = float(score.tpq)
    parts = []
    for tr in score.tracks:
        if tr.is_drum or len(tr.notes) == 0:
            continue
        a = tr.notes.numpy()
        parts.append(np.stack([a["pitch"], a["time"] / tpq, a["duration"] / tpq, a["velocity"]], 1).astype(np.float32))
    if not parts:
        return np.zeros((0, 4), np.float32)
    arr = np.concatenate(parts)
    return arr[np.lexsort((arr[:, 0], arr[:, 1]))]


@dataclass
class SegmentStore:
    """Notes grouped by segment. Note starts are relative to their segment (beats)."""

    notes: np.ndarray  # (N, 4) float32
    seg_ptr: np.ndarray  # (S + 1,) int64: notes of segment i are notes[seg_ptr[i]:seg_ptr[i+1]]
    seg_file: np.ndarray  # (S,) int32
    seg_pos: np.ndarray  # (S,) int32 position within its file
    seg_ok: np.ndarray  # (S,) bool: enough notes to train on
    file_names: np.ndarray  # (F,) str
    file_va: np.ndarray  # (F, 2) float32, NaN when unlabelled
    segment_beats: int
    steps_per_beat: int

    def __len__(self) -> int:
        return len(self.seg_file)

    @property
    def n_files(self) -> int:
        return len(self.file_names)

    def save(self, path: Path) -> None:
        from emomusic.atomic import atomic_path

        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, notes=self.notes, seg_ptr=self.seg_ptr, seg_file=self.seg_file, seg_pos=self.seg_pos,
                         seg_ok=self.seg_ok, file_names=self.file_names, file_va=self.file_va,
                         meta=np.array([self.segment_beats, self.steps_per_beat]))

    @classmethod
    def load(cls, path: Path) -> "SegmentStore":
        z = np.load(path, allow_pickle=False)
        m = z["meta"]
        return cls(z["notes"], z["seg_ptr"], z["seg_file"], z["seg_pos"], z["seg_ok"], z["file_names"], z["file_va"],
                   int(m[0]), int(m[1]))

    def file_segments(self) -> list[np.ndarray]:
        """Segment indices of each file, in order."""
        order = np.lexsort((self.seg_pos, self.seg_file))
        bounds = np.searchsorted(self.seg_file[order], np.arange(self.n_files + 1))
        return [order[bounds[i]:bounds[i + 1]] for i in range(self.n_files)]

    def rolls(self, idx, cfg, transpose=None) -> np.ndarray:
        """Piano rolls (B, 3, T, P) of segments ``idx``, each shifted by ``transpose[b]`` semitones."""
        idx = np.asarray(idx, dtype=np.int64)
        T, P = cfg.n_steps, cfg.n_pitches
        out = np.zeros((len(idx), 3, T, P), np.float32)
        if len(idx) == 0:
            return out
        lo, hi = self.seg_ptr[idx], self.seg_ptr[idx + 1]
        counts = hi - lo
        if counts.sum() == 0:
            return out
        # gather every note of the batch at once: row b's notes are notes[lo[b]:hi[b]]
        b = np.repeat(np.arange(len(idx)), counts)
        rows = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(lo, counts)
        a = self.notes[rows]
        k = np.zeros(len(idx), np.int64) if transpose is None else np.asarray(transpose, np.int64)
        t = np.round(a[:, 1] * cfg.steps_per_beat).astype(np.int64)
        p = a[:, 0].astype(np.int64) + k[b] - cfg.pitch_low
        ok = (p >= 0) & (p < P) & (t >= 0) & (t < T)
        b, t, p, a = b[ok], t[ok], p[ok], a[ok]
        d = np.minimum(np.maximum(1, np.round(a[:, 2] * cfg.steps_per_beat)), T - t)
        # later notes at the same cell overwrite earlier ones, as a per-note loop would
        out[b, ONSET, t, p] = 1.0
        out[b, DURATION, t, p] = d / T
        out[b, VELOCITY, t, p] = np.clip(a[:, 3], 1, 127) / 127.0
        return out

    def content_key(self) -> str:
        """A short hash of the store's content (not of where it was read from)."""
        h = hashlib.sha1()
        for arr in (self.notes, self.seg_ptr, self.seg_file, self.file_va):
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(f"{self.segment_beats},{self.steps_per_beat}".encode())
        return h.hexdigest()[:12]


def store_from_notes(items, segment_beats: int, steps_per_beat: int = 4, min_notes: int = 4) -> SegmentStore:
    """``items``: (name, (v, a), notes (N, 4)) triples -> :class:`SegmentStore`."""
    all_notes, ptr, sf, sp, ok, names, vas = [], [0], [], [], [], [], []
    n_total = 0
    for fi, (name, va, arr) in enumerate(items):
        names.append(str(name))
        vas.append(va)
        arr = np.asarray(arr, np.float32).reshape(-1, 4)
        if arr.size == 0:
            continue
        # quantise starts on the grid first so a note never lands in the wrong segment
        q = np.round(arr[:, 1] * steps_per_beat) / steps_per_beat
        seg = np.floor(q / segment_beats + 1e-9).astype(np.int64)
        keep = seg >= 0
        arr, q, seg = arr[keep], q[keep], seg[keep]
        if seg.size == 0:
            continue
        order = np.lexsort((arr[:, 0], q, seg))
        arr, q, seg = arr[order], q[order], seg[order]
        n_seg = int(seg.max()) + 1
        counts = np.bincount(seg, minlength=n_seg)
        rel = arr.copy()
        rel[:, 1] = q - seg * segment_beats
        all_notes.append(rel)
        for s in range(n_seg):
            n_total += int(counts[s])
            ptr.append(n_total)
            sf.append(fi)
            sp.append(s)
            ok.append(counts[s] >= min_notes)
    notes = np.concatenate(all_notes) if all_notes else np.zeros((0, 4), np.float32)
    return SegmentStore(notes, np.array(ptr, np.int64), np.array(sf, np.int32), np.array(sp, np.int32),
                        np.array(ok, bool), np.array(names), np.array(vas, np.float32).reshape(-1, 2),
                        segment_beats, steps_per_beat)


def build_store(files, segment_beats: int, steps_per_beat: int = 4, cache_dir: str | os.PathLike | None = None,
                progress: bool = True) -> SegmentStore:
    """Read ``files`` ((path, (v, a)) pairs) into a store; cached by file list + settings."""
    cache = None
    if cache_dir is not None:
        key = hashlib.sha1(json.dumps([[str(p), list(va)] for p, va in files] + [segment_beats, steps_per_beat, 1],
                                      default=str).encode()).hexdigest()[:12]
        cache = Path(cache_dir) / f"compose_segments_{key}.npz"
        if cache.is_file():
            return SegmentStore.load(cache)
    from tqdm import tqdm

    items = []
    for path, va in tqdm(files, desc="reading MIDI", disable=not progress, file=None, mininterval=2):
        try:
            arr = read_notes(path)
        except Exception:  # corrupt files are skipped, not fatal
            continue
        items.append((Path(path).name, va, arr))
    store = store_from_notes(items, segment_beats, steps_per_beat)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        store.save(cache)
    return store


def split_files(n_files: int, held_share: float, seed: int = 1234) -> np.ndarray:
    """Boolean mask of held-out files (deterministic)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(n_files, bool)
    k = int(round(n_files * held_share))
    if k:
        mask[rng.choice(n_files, size=k, replace=False)] = True
    return mask
