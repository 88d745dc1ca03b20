"""Mood-tagged audio in the MTG-Jamendo autotagging layout -> MusicGen training examples.

The TSV (e.g. ``autotagging_moodtheme.tsv``) has a header ``TRACK_ID ARTIST_ID ALBUM_ID PATH
DURATION TAGS`` and one row per track: the five fields, then one tag per column
(``mood/theme---calm``, ``genre---pop`` ...). ``PATH`` is relative to the audio folder
(``48/948.mp3``). Mood/theme tags found in the mood-word table give the track's valence and
arousal (the mean of its tags' points); theme tags without a valence-arousal point (film, game,
christmas ...) stay in the text prompt but do not move the emotion; tracks with no usable mood
tag are skipped.

Each track is cut into clips of ``clip_seconds`` (up to ``max_clips`` per track, evenly spread),
mixed to the model's channel count, resampled to its sample rate and encoded with the model's
own EnCodec into codes of shape (codebooks, frames). Each clip's text is its tags plus the
emotion prompt of :mod:`emomusic.clip.prompt`, the same builder generation uses.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emomusic.emotion import Emotion, mean_emotion
from emomusic.errors import EmomusicError

COLUMNS = ("TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION")
MOOD_PREFIX = "mood/theme---"


@dataclass
class Track:
    track_id: str
    path: str
    duration: float
    tags: list[str]
    emotion: Emotion
    mood_words: list[str] = field(default_factory=list)


@dataclass
class Example:
    track_id: str
    text: str
    emotion: Emotion
    codes: object  # torch.LongTensor (codebooks, frames)


def tags_emotion(tags: list[str]) -> tuple[Emotion | None, list[str]]:
    """Mean valence-arousal of the mood tags found in the mood table, and those words."""
    from emomusic.moods import mood_table

    table = mood_table()
    words = []
    for t in tags:
        t = t.strip().lower()
        if t.startswith(MOOD_PREFIX):
            w = t[len(MOOD_PREFIX):]
            if w in table and w not in words:
                words.append(w)
    if not words:
        return None, []
    e = mean_emotion(table[w].emotion for w in words)
    return Emotion(e.valence, e.arousal, words[0] if len(words) == 1 else None), words


def read_tsv(path: str | os.PathLike) -> tuple[list[Track], dict]:
    """Parse the TSV; returns (usable tracks, stats). Malformed files raise EmomusicError."""
    path = Path(path)
    if not path.is_file():
        raise EmomusicError(f"no such TSV file: {path}")
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    if not rows:
        raise EmomusicError(f"{path} is empty")
    header = [h.strip().upper() for h in rows[0]]
    if tuple(header[:5]) != COLUMNS:
        raise EmomusicError(
            f"{path} is not in the MTG-Jamendo layout: the header must start with {' '.join(COLUMNS)} (then TAGS)"
        )
    tracks, skipped = [], 0
    for i, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < 5:
            raise EmomusicError(f"{path}:{i}: a row needs at least 5 tab-separated fields, got {len(row)}")
        try:
            duration = float(row[4])
        except ValueError:
            raise EmomusicError(f"{path}:{i}: DURATION must be a number, got {row[4]!r}") from None
        tags = [t.strip() for t in row[5:] if t.strip()]
        emotion, words = tags_emotion(tags)
        if emotion is None:
            skipped += 1
            continue
        tracks.append(Track(row[0].strip(), row[3].strip(), duration, tags, emotion, words))
    stats = {"rows": len(rows) - 1, "tracks": len(tracks), "skipped_no_mood": skipped}
    if not tracks:
        raise EmomusicError(f"{path}: no track has a mood/theme tag from the mood table (e.g. mood/theme---calm)")
    return tracks, stats


def load_audio(path: Path, sample_rate: int, channels: int) -> np.ndarray:
    """Read audio, mix to ``channels``, resample: (frames, channels) float32."""
    from emomusic.audio import read_wav, resample

    audio, sr = read_wav(path)
    if channels == 1:
        audio = audio.mean(axis=1, keepdims=True)
    elif audio.shape[1] == 1:
        audio = np.repeat(audio, channels, axis=1)
    else:
        audio = audio[:, :channels]
    if sr != sample_rate:
        audio = resample(audio, sr, sample_rate)
    return audio.astype(np.float32)


def cut_clips(audio: np.ndarray, clip_frames: int, max_clips: int) -> list[np.ndarray]:
    """Up to ``max_clips`` non-overlapping clips of exactly ``clip_frames``, spread over the track."""
    n = audio.shape[0] // clip_frames
    if n == 0:
        return []
    k = min(n, max_clips)
    idx = np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))
    return [audio[i * clip_frames : (i + 1) * clip_frames] for i in idx]


def build_examples(
    loaded,
    tsv: str | os.PathLike,
    audio_dir: str | os.PathLike,
    *,
    clip_seconds: float = 10.0,
    max_clips: int = 3,
    max_tracks: int | None = None,
    progress: bool = False,
) -> tuple[list[Example], dict]:
    """Read, cut and encode the data set for ``loaded`` (a LoadedModel)."""
    import torch
    from tqdm.auto import tqdm

    from emomusic.clip.prompt import tags_prompt

    if not (isinstance(clip_seconds, (int, float)) and math.isfinite(clip_seconds) and clip_seconds > 0):
        raise EmomusicError(f"--clip-seconds must be > 0, got {clip_seconds}")
    if clip_seconds > loaded.native_seconds:
        raise EmomusicError(f"--clip-seconds must be at most {loaded.native_seconds:g} s for this model, got {clip_seconds:g}")
    audio_dir = Path(audio_dir)
    if not audio_dir.is_dir():
        raise EmomusicError(f"audio folder not found: {audio_dir}")
    tracks, stats = read_tsv(tsv)
    if max_tracks is not None:
        tracks = tracks[:max_tracks]
    base = loaded.model.get_base_model() if hasattr(loaded.model, "get_base_model") else loaded.model
    codec = base.audio_encoder
    channels = int(base.config.decoder.audio_channels)  # stereo MusicGen: mono codec, 2 channels
    dev = next(codec.parameters()).device
    clip_frames = int(round(clip_seconds * loaded.sample_rate))
    examples: list[Example] = []
    missing = short = 0
    for tr in tqdm(tracks, desc="encoding audio", unit="track", disable=not progress):
        path = audio_dir / tr.path
        if not path.is_file():
            missing += 1
            continue
        audio = load_audio(path, loaded.sample_rate, channels)
        clips = cut_clips(audio, clip_frames, max_clips)
        if not clips:
            short += 1
            continue
        text = tags_prompt(tr.emotion, tr.tags)
        batch = torch.from_numpy(np.stack([c.T for c in clips])).to(dev)  # (n, channels, frames)
        codes = encode_codes(codec, batch)
        for c in codes:
            examples.append(Example(tr.track_id, text, tr.emotion, c.cpu().clone()))
    stats.update(missing_audio=missing, too_short=short, clips=len(examples), clip_seconds=float(clip_seconds))
    if not examples:
        raise EmomusicError(
            f"no training clips: {missing} audio files missing under {audio_dir}, {short} shorter than {clip_seconds:g} s"
        )
    return examples, stats


def encode_codes(codec, batch):
    """Audio (n, channels, frames) -> codes (n, K, T). Stereo MusicGen encodes each channel
    with the mono codec and interleaves the codebooks (left, right, left, right ...)."""
    import torch

    with torch.inference_mode():
        if batch.shape[1] == 1:
            return codec.encode(batch).audio_codes[0]
        left = codec.encode(batch[:, :1]).audio_codes[0]
        right = codec.encode(batch[:, 1:2]).audio_codes[0]
        n, k, t = left.shape
        out = left.new_zeros((n, 2 * k, t))
        out[:, ::2], out[:, 1::2] = left, right
        return out


def delay_labels(codes, pad_token_id: int, audio_channels: int = 1):
    """Codes (batch, K, T) -> labels (batch, T + D - 1, K), D = K / channels, in MusicGen's delay pattern:
    codebook k is shifted right by k steps and the gaps are ``pad_token_id`` (the model turns
    pad labels into -100, so they are ignored by the loss). The model itself shifts labels
    right by one and prepends the decoder start token to form its inputs, exactly the sequence
    generation builds, so the training and sampling patterns agree. For stereo models each
    left/right pair of codebooks shares one delay (as transformers' ``build_delay_pattern_mask``)."""
    import torch

    b, k, t = codes.shape
    groups = k // audio_channels  # stereo: a left/right pair of codebooks shares one delay
    out = torch.full((b, k, t + groups - 1), int(pad_token_id), dtype=torch.long, device=codes.device)
    for i in range(k):
        d = i // audio_channels
        out[:, i, d : d + t] = codes[:, i]
    return out.transpose(1, 2).contiguous()
