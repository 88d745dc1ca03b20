"""Melody bridge: a symbolic piece -> the chroma features MusicGen-Melody is conditioned on.

MusicGen-Melody conditions on a chromagram of the reference audio: transformers'
``MusicgenMelodyFeatureExtractor`` takes audio (ideally Demucs-separated, without drums and
bass), computes a 12-bin chroma every ``hop_length`` samples (32000 / 4096 = 7.8 frames/s) and
keeps only the strongest pitch class of each frame (one-hot). For a MIDI/ABC/MusicXML tune we
know the pitches exactly, so emomusic computes that same one-hot chroma **directly from the
notes** instead of rendering audio and analysing it back:

* no SoundFont synthesis, no Demucs, no torchaudio (the feature extractor needs it; emomusic does
  not depend on it);
* no analysis errors (octave/overtone confusions, reverb smearing one note into the next);
* the chroma can be cut at any time, so each window of a long clip gets the part of the tune it
  accompanies.

Each frame's pitch-class weights are the sounding time of every (non-drum) note in the frame
times its velocity; the highest sounding note -- the tune, in a melody-plus-accompaniment piece --
counts double. Frames where nothing sounds repeat the previous pitch class. The tune loops when
the clip is longer than the piece.
"""

from __future__ import annotations

import os

import numpy as np

from emomusic.errors import EmomusicError
from emomusic.piece import Piece


def load_melody(melody: str | os.PathLike | Piece) -> Piece:
    if isinstance(melody, Piece):
        if melody.is_empty():
            raise EmomusicError("the melody has no notes")
        return melody
    from emomusic.io import read_piece

    return read_piece(melody)


def piece_chroma(piece: Piece, frame_rate: float, start: float, seconds: float, loop: bool = True) -> np.ndarray:
    """One-hot chroma of ``piece`` from ``start`` for ``seconds``: shape (frames, 12) float32."""
    if frame_rate <= 0 or seconds <= 0:
        raise ValueError("frame_rate and seconds must be > 0")
    notes = [
        (piece.beat_to_seconds(n.start), piece.beat_to_seconds(n.end), n.pitch, n.velocity)
        for t in piece.tracks
        if not t.is_drum
        for n in t.notes
    ]
    if not notes:
        raise EmomusicError("the melody has no pitched notes")
    arr = np.array(notes, dtype=np.float64)
    total = float(arr[:, 1].max())
    n_frames = max(1, int(round(seconds * frame_rate)))
    out = np.zeros((n_frames, 12), dtype=np.float32)
    prev = None
    for i in range(n_frames):
        t0 = start + i / frame_rate
        t1 = t0 + 1.0 / frame_rate
        if loop and total > 0:
            base = np.floor(t0 / total) * total
            t0, t1 = t0 - base, t1 - base
        ov = np.minimum(arr[:, 1], t1) - np.maximum(arr[:, 0], t0)
        on = ov > 1e-9
        if not on.any():
            if prev is not None:
                out[i, prev] = 1.0
            continue
        w = ov[on] * arr[on, 3] / 127.0
        pitches = arr[on, 2].astype(int)
        w = np.where(pitches == pitches.max(), 2.0 * w, w)
        pcw = np.bincount(pitches % 12, weights=w, minlength=12)
        prev = int(np.argmax(pcw))
        out[i, prev] = 1.0
    first = np.flatnonzero(out.any(axis=1))
    if first.size and first[0] > 0:  # leading rests take the first sounding pitch class
        out[: first[0], int(np.argmax(out[first[0]]))] = 1.0
    return out
