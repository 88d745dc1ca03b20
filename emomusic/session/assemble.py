"""Stage 2 of a build, the audio: clip gains, level bridges at the joins, and session.wav
streamed clip by clip (equal-power crossfades), holding one clip in memory.

Every clip gets the gain that puts it at its planned loudness, less one session-wide offset
when a peaky clip needs the headroom (:func:`clip_gains`), so the planned loudness steps hold
exactly. At each join the next clip's opening eases from the previous clip's closing level
to its own (:func:`join_ramp`; session.wav only, the clip files keep their planned levels).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emomusic.errors import EmomusicError

if TYPE_CHECKING:
    from emomusic.session.clips import ClipResult
    from emomusic.session.plan import SessionPlan

PEAK_LIMIT = 0.98  # no clip is scaled above this peak
MAX_SESSION_OFFSET_DB = -8.0  # the session is lowered at most this much to fit peaky clips
LIMIT_KNEE = 0.95  # soft limiter: samples above this are bent toward 0.99 (crossfade overshoot)
JOIN_WINDOW_S = 3.0  # level compared on each side of a join
JOIN_RAMP_S = 6.0  # the next clip's opening moves from the previous clip's closing level to its own over this
JOIN_MAX_DB = 9.0  # largest correction at a join
JOIN_MIN_DB = 1.0  # smaller differences are left alone
JOIN_FLOOR_DB = -70.0  # near-silence on either side: no correction


def soft_limit(audio: np.ndarray) -> np.ndarray:
    """Leave |x| <= 0.95 untouched; bend larger peaks smoothly below 0.99 (tanh knee).
    Only an equal-power crossfade of two correlated loud passages can reach this."""
    a = np.asarray(audio, dtype=np.float32)
    over = np.abs(a) > LIMIT_KNEE
    if not over.any():
        return a
    a = a.copy()
    x = a[over]
    span = 0.99 - LIMIT_KNEE
    a[over] = np.sign(x) * (LIMIT_KNEE + span * np.tanh((np.abs(x) - LIMIT_KNEE) / span))
    return a


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    return np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def write_pcm16(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit stereo WAV, atomically; the float -> int conversion is done in numpy (fast)."""
    import soundfile as sf

    from emomusic.atomic import atomic_path

    with atomic_path(path) as tmp:
        sf.write(str(tmp), to_pcm16(soft_limit(audio)), int(sample_rate), subtype="PCM_16", format="WAV")


def join_ramp(before_db: float, after_db: float, frames: int, sample_rate: int) -> np.ndarray | None:
    """Gain envelope (float32, one value per frame, at most ``JOIN_RAMP_S`` long) for the opening
    of a clip whose first ``JOIN_WINDOW_S`` sit at ``after_db`` while the previous clip closes
    at ``before_db``: it starts at the difference (clipped to +-``JOIN_MAX_DB``) and eases to
    0 dB, so the join is level and the clip's planned loudness holds after the first seconds.
    None when no correction is needed (difference below ``JOIN_MIN_DB``, or silence)."""
    if not (math.isfinite(before_db) and math.isfinite(after_db)):
        return None
    if min(before_db, after_db) < JOIN_FLOOR_DB:
        return None
    delta = max(-JOIN_MAX_DB, min(JOIN_MAX_DB, before_db - after_db))
    if abs(delta) < JOIN_MIN_DB:
        return None
    n = min(int(frames), int(round(JOIN_RAMP_S * sample_rate)))
    if n <= 0:
        return None
    t = np.arange(n, dtype=np.float64) / max(1, n)
    shape = 0.5 * (1.0 + np.cos(np.pi * t))  # 1 -> 0, smooth at both ends
    return (10.0 ** (delta * shape / 20.0)).astype(np.float32)


def clip_gains(plan: "SessionPlan", results: list["ClipResult"]) -> tuple[list[float], float]:
    """Gain in dB for every clip, and the session offset.

    Each clip should sound at its planned loudness. A clip whose peak would exceed
    PEAK_LIMIT at its planned level cannot get there; instead of letting that clip fall
    short (a loudness jump between neighbours), the whole session is lowered by the
    smallest offset that lets every clip reach ``plan level + offset`` (at most
    MAX_SESSION_OFFSET_DB; a clip still short after that is peak-limited). The planned
    steps between clips are therefore kept exactly, whatever the engines' crest factors."""
    needed, room = [], []
    for w, r in zip(plan.clips, results):
        if r.peak <= 0 or r.body_loudness_db <= -119:
            needed.append(None)
            room.append(None)
            continue
        needed.append(w.loudness_db - r.body_loudness_db)  # the clip as heard (without its tail)
        room.append(20 * math.log10(PEAK_LIMIT / r.peak))
    offsets = [h - g for g, h in zip(needed, room) if g is not None]
    offset = max(MAX_SESSION_OFFSET_DB, min([0.0, *offsets]))
    gains = [0.0 if g is None else min(g + offset, h) for g, h in zip(needed, room)]
    return gains, offset


def clip_levels(results: list["ClipResult"], gains: list[float]) -> list[float]:
    """Each clip's level as heard (body, after its gain), dB."""
    return [r.body_loudness_db + g if r.peak > 0 else -120.0 for r, g in zip(results, gains)]


def clip_dir(work: Path, index: int) -> Path:
    return work / f"clip_{index:03d}"


def read_clip_audio(plan: "SessionPlan", work: Path, i: int, sample_rate: int, frames: int, gain_db: float) -> np.ndarray:
    """Clip ``i``'s stored audio (checked against the plan) with its gain applied."""
    from emomusic.audio import read_wav

    w = plan.clips[i]
    audio, sr = read_wav(clip_dir(work, w.index) / "audio.wav")
    if sr != sample_rate:
        raise EmomusicError(f"clip {w.index} in {work} was built at {sr} Hz, not {sample_rate}; drop --resume")
    if audio.shape[0] != frames:
        raise EmomusicError(f"clip {w.index} in {work} has {audio.shape[0]} frames, not {frames}; drop --resume")
    return audio * np.float32(10 ** (gain_db / 20))


def stream_session(plan: "SessionPlan", work: Path, path: Path, sample_rate: int, gains: list[float]) -> float:
    """Write session.wav to ``path`` clip by clip; return its peak.

    Each join is emomusic.audio.crossfade_concat of the previous clip's overhang (its last
    ``fade`` frames) and the next clip, so the result equals crossfade_concat of all clips
    (each opening level-bridged, see :func:`join_ramp`) while holding only one clip in memory."""
    import soundfile as sf

    from emomusic.audio import crossfade_concat, rms_db
    from emomusic.session.clips import frame_bounds

    bounds = frame_bounds(plan, sample_rate)
    n = len(plan.clips)
    fade = int(round(plan.crossfade_s * sample_rate))
    win = int(round(JOIN_WINDOW_S * sample_rate))
    total_frames = int(round(plan.total_seconds * sample_rate))
    written, peak = 0, 0.0
    pending: np.ndarray | None = None
    closing_db: float | None = None
    with sf.SoundFile(str(path), "w", sample_rate, 2, subtype="PCM_16", format="WAV") as wav:
        for i in range(n):
            audio = read_clip_audio(plan, work, i, sample_rate, bounds[i][1] + (fade if i < n - 1 else 0), gains[i])
            if closing_db is not None:  # level bridge: the opening eases from the previous clip's closing level
                env = join_ramp(closing_db, rms_db(audio[:win]), audio.shape[0], sample_rate)
                if env is not None:
                    audio = audio.copy()
                    audio[: env.shape[0]] *= env[:, None] if audio.ndim == 2 else env
            body_end = bounds[i][1]
            closing_db = rms_db(audio[max(0, body_end - win):body_end])
            seg = audio if pending is None else crossfade_concat([pending, audio], sample_rate, plan.crossfade_s)
            if i < n - 1 and fade > 0:
                body, pending = seg[:-fade], seg[-fade:]
            else:
                body, pending = seg, None
            body = soft_limit(body)
            peak = max(peak, float(np.max(np.abs(body))) if body.size else 0.0)
            wav.write(to_pcm16(body))
            written += body.shape[0]
    if written != total_frames:  # cannot happen with a valid plan: the frames are planned exactly
        raise EmomusicError(f"internal error: session.wav has {written} frames, expected {total_frames}")
    return peak
