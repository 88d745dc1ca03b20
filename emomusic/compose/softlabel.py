"""Soft emotion labels for unlabelled training windows, from the project's estimator.

EMOPIA gives about 2,000 labelled 16-bar windows; POP909 and VGMIDI give twenty times more
without labels. :func:`soft_labels` reads each unlabelled window as a piece (one piano track
at a nominal 120 BPM, the convention of EMOPIA's transcriptions that the estimator was
fitted on) and labels it with :func:`emomusic.estimator.estimate_details`: ``(valence,
arousal) = (2 P(v > 0) - 1, 2 P(a > 0) - 1)``, i.e. the estimator's signed confidence, so
clear cases get labels near +-1 and ambiguous ones near 0 (a continuous range that the
conditional model learns to follow). Labelled windows keep their quadrant label.

Note for evaluation: a model trained on these labels learns what *this estimator* hears, so
estimator-based benchmarks favour it; ``docs/benchmarks.md`` reports the EMOPIA-only model
beside it.

Numpy only (no torch). Results are cached by store content, window length and estimator.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from emomusic.errors import EmomusicError

NOMINAL_BPM = 120.0


def window_piece(store, window) -> "Piece":
    """The notes of consecutive segments ``window`` as a one-track piece (beats from 0)."""
    from emomusic.piece import Note, Piece, Tempo, Track

    notes = []
    seg_beats = float(store.segment_beats)
    for j, s in enumerate(window):
        a = store.notes[store.seg_ptr[s]:store.seg_ptr[s + 1]]
        off = j * seg_beats
        for pitch, start, dur, vel in a:
            notes.append(Note(int(pitch), float(start) + off, max(float(dur), 1.0 / store.steps_per_beat),
                              int(min(127, max(1, round(float(vel)))))))
    return Piece(tracks=[Track("Piano", program=0, notes=notes)], tempos=[Tempo(NOMINAL_BPM, 0.0)])


def _label_chunk(args):
    store, windows = args
    from emomusic.estimator import estimate_details, load_estimator

    model = load_estimator()
    out = np.full((len(windows), 2), np.nan, np.float32)
    for i, w in enumerate(windows):
        piece = window_piece(store, w)
        if not piece.notes:
            continue
        d = estimate_details(piece, model)
        out[i] = (d["valence"], d["arousal"])
    return out


def soft_labels(store, windows: np.ndarray, *, which: np.ndarray | None = None, cache_dir: str | os.PathLike | None = None,
                workers: int = 1, progress: bool = True) -> np.ndarray:
    """(W, 2) estimator labels of ``windows`` (rows of segment indices); NaN where not computed.

    ``which`` (bool (W,)) limits the work to some windows (e.g. the unlabelled ones).
    """
    from emomusic.estimator import default_estimator_dir

    windows = np.asarray(windows, np.int64)
    which = np.ones(len(windows), bool) if which is None else np.asarray(which, bool)
    if which.shape != (len(windows),):
        raise EmomusicError("which must have one flag per window")
    cache = None
    if cache_dir is not None:
        est = (default_estimator_dir() / "estimator.json").read_bytes()
        key = hashlib.sha1(store.content_key().encode() + windows.tobytes() + which.tobytes() + est).hexdigest()[:12]
        cache = Path(cache_dir) / f"compose_softlabels_{key}.npy"
        if cache.is_file():
            return np.load(cache)
    out = np.full((len(windows), 2), np.nan, np.float32)
    todo = np.nonzero(which)[0]
    chunks = [todo[i:i + 256] for i in range(0, len(todo), 256)]
    from tqdm import tqdm

    bar = tqdm(total=len(todo), desc="soft labels", disable=not progress, mininterval=2)
    if workers > 1 and len(chunks) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as ex:
            for c, res in zip(chunks, ex.map(_label_chunk, [(store, windows[c]) for c in chunks])):
                out[c] = res
                bar.update(len(c))
    else:
        for c in chunks:
            out[c] = _label_chunk((store, windows[c]))
            bar.update(len(c))
    bar.close()
    if cache is not None:
        from emomusic.atomic import atomic_path

        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, out)
    return out
