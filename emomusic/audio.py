"""Audio helpers on numpy arrays: WAV I/O, loudness, normalisation, crossfades, resampling.

Audio is float32, shape ``(frames, channels)``; mono input of shape ``(frames,)`` is
accepted and treated as one channel. WAV files are written atomically as 16-bit PCM.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from emomusic.atomic import atomic_path
from emomusic.errors import EmomusicError

DEFAULT_SAMPLE_RATE = 44100


def as_2d(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"audio must be (frames,) or (frames, channels), got shape {a.shape}")
    return a


def to_stereo(audio: np.ndarray) -> np.ndarray:
    a = as_2d(audio)
    if a.shape[1] == 2:
        return a
    if a.shape[1] == 1:
        return np.repeat(a, 2, axis=1)
    return a[:, :2]


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int, peak: float = 0.98) -> Path:
    """Write 16-bit PCM. Audio is scaled down (never clipped) if its peak exceeds ``peak``."""
    import soundfile as sf

    a = as_2d(audio)
    if not np.all(np.isfinite(a)):
        raise EmomusicError("audio contains NaN or infinite samples")
    m = float(np.max(np.abs(a))) if a.size else 0.0
    if m > peak:
        a = a * (peak / m)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), a, int(sample_rate), subtype="PCM_16", format="WAV")
    return Path(path)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise EmomusicError(f"cannot read {path} as audio: {exc}") from None
    return data, int(sr)


def rms_db(audio: np.ndarray) -> float:
    """RMS level in dBFS (-inf for silence)."""
    a = as_2d(audio)
    if a.size == 0:
        return -math.inf
    r = float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))
    return 20 * math.log10(r) if r > 0 else -math.inf


def loudness_db(audio: np.ndarray, sample_rate: int, window_s: float = 0.4) -> float:
    """Gated loudness estimate in dB: mean power of 400 ms blocks above a -70 dB and a
    relative -10 dB gate (the gating idea of ITU-R BS.1770, without its K-weighting)."""
    a = as_2d(audio).astype(np.float64)
    n = max(1, int(window_s * sample_rate))
    if a.shape[0] < n:
        return rms_db(a)
    blocks = a[: a.shape[0] // n * n].reshape(-1, n, a.shape[1])
    power = np.mean(blocks**2, axis=(1, 2))
    power = power[power > 10 ** (-70 / 10)]
    if power.size == 0:
        return -math.inf
    rel = 10 * math.log10(float(np.mean(power))) - 10
    gated = power[10 * np.log10(power) > rel]
    return 10 * math.log10(float(np.mean(gated if gated.size else power)))


def normalize_loudness(audio: np.ndarray, sample_rate: int, target_db: float = -20.0, peak: float = 0.98) -> np.ndarray:
    """Scale to ``target_db`` loudness, lowering the gain if the peak would exceed ``peak``."""
    a = as_2d(audio)
    level = loudness_db(a, sample_rate)
    if not math.isfinite(level):
        return a.copy()
    gain = 10 ** ((target_db - level) / 20)
    m = float(np.max(np.abs(a))) * gain
    if m > peak:
        gain *= peak / m
    return (a * gain).astype(np.float32)


def crossfade_concat(clips: list[np.ndarray], sample_rate: int, fade_seconds: float) -> np.ndarray:
    """Join clips with equal-power crossfades of ``fade_seconds`` (sin/cos gains, so the
    summed power stays constant through each join). Output length is the sum of clip
    lengths minus one fade per join."""
    if not clips:
        return np.zeros((0, 2), dtype=np.float32)
    chans = max(as_2d(c).shape[1] for c in clips)
    items = [as_2d(c) if as_2d(c).shape[1] == chans else np.repeat(as_2d(c)[:, :1], chans, axis=1) for c in clips]
    fade = int(round(fade_seconds * sample_rate))
    out = items[0].copy()
    for clip in items[1:]:
        f = min(fade, out.shape[0], clip.shape[0])
        if f <= 0:
            out = np.concatenate([out, clip])
            continue
        t = (np.arange(f, dtype=np.float32) + 0.5) / f
        fade_out = np.cos(t * np.pi / 2)[:, None]
        fade_in = np.sin(t * np.pi / 2)[:, None]
        joined = out[-f:] * fade_out + clip[:f] * fade_in
        out = np.concatenate([out[:-f], joined, clip[f:]])
    return out.astype(np.float32)


def fit_length(audio: np.ndarray, frames: int, fade_seconds: float = 0.05, sample_rate: int = DEFAULT_SAMPLE_RATE) -> np.ndarray:
    """Cut or zero-pad to exactly ``frames``; a cut end gets a short fade-out (no click)."""
    a = as_2d(audio)
    if a.shape[0] >= frames:
        a = a[:frames].copy()
        f = min(frames, int(fade_seconds * sample_rate))
        if f > 0:
            a[-f:] *= np.linspace(1.0, 0.0, f, dtype=np.float32)[:, None]
        return a
    pad = np.zeros((frames - a.shape[0], a.shape[1]), dtype=np.float32)
    return np.concatenate([a, pad])


def resample(audio: np.ndarray, sr_from: int, sr_to: int) -> np.ndarray:
    """Band-limited polyphase resampling (scipy)."""
    if sr_from == sr_to:
        return as_2d(audio).copy()
    from scipy.signal import resample_poly

    g = math.gcd(int(sr_from), int(sr_to))
    return resample_poly(as_2d(audio), sr_to // g, sr_from // g, axis=0).astype(np.float32)
