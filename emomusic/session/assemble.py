"""Stage 2 of a build, the audio: clip gains, level bridges at the joins, and session.wav
streamed clip by clip (equal-power crossfades), holding one clip in memory.

Every clip gets the gain that puts it at its planned loudness (LUFS, at the session's stated level); where its
true peak would pass the -1 dBTP ceiling, a true-peak look-ahead limiter (:mod:`emomusic.limiter`) takes the
excess, up to ``limiter.MAX_REDUCTION_DB``; only a clip that would need more lowers the whole session by one
offset (:func:`clip_gains`), so the planned loudness steps hold exactly. Each clip is read once, limited
(:func:`finish_clip`), written to clips/ and joined into session.wav; the openings (crossfade and level
bridge) go through the limiter again. At each join the next clip's opening eases from the previous clip's closing level
to its own (:func:`join_ramp`; session.wav only, the clip files keep their planned levels).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emomusic.audio import sample_peak, to_pcm16
from emomusic.errors import EmomusicError

if TYPE_CHECKING:
    from emomusic.session.clips import ClipResult
    from emomusic.session.plan import SessionPlan

CEILING_DBTP = -1.0  # no clip is scaled above this true peak (= emomusic.audio.TRUE_PEAK_DBTP)
PEAK_LIMIT = 10 ** (CEILING_DBTP / 20)  # the same ceiling, linear (0.891)
MAX_SESSION_OFFSET_DB = -8.0  # the session is lowered at most this much to fit peaky clips
LEVEL_TOLERANCE_DB = 0.5  # a clip the limiter left further than this under its level gets its gain again
LIMIT_KNEE = 0.95  # soft limiter: samples above this are bent toward 0.99 (crossfade overshoot)
JOIN_WINDOW_S = 3.0  # level compared on each side of a join: the short-term loudness window (EBU Tech 3341)
JOIN_RAMP_S = 6.0  # the next clip's opening moves from the previous clip's closing level to its own over this
JOIN_MAX_DB = 9.0  # largest correction at a join
JOIN_MIN_DB = 1.0  # smaller differences are left alone
JOIN_FLOOR_DB = -70.0  # near-silence on either side: no correction
AHEAD = 3  # clips finished (read, levelled, limited, written to clips/) ahead of the one being joined


def soft_limit(audio: np.ndarray) -> np.ndarray:
    """Leave |x| <= 0.95 untouched; bend larger peaks smoothly below 0.99 (tanh knee).
    Only an equal-power crossfade of two correlated loud passages can reach this."""
    a = np.asarray(audio, dtype=np.float32)
    if not sample_peak(a) > LIMIT_KNEE:  # the usual case, checked without an abs copy
        return a
    over = np.abs(a) > LIMIT_KNEE
    a = a.copy()
    x = a[over]
    span = 0.99 - LIMIT_KNEE
    a[over] = np.sign(x) * (LIMIT_KNEE + span * np.tanh((np.abs(x) - LIMIT_KNEE) / span))
    return a


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


def clip_gains(plan: "SessionPlan", results: list["ClipResult"], loudness: float | None = None) -> tuple[list[float], float]:
    """Gain in dB for every clip, and the session offset.

    ``loudness`` is the session's stated level in LUFS (BuildSettings.loudness): a clip
    planned at the reference loudness (``schedule.REFERENCE_LOUDNESS_DB``, neutral arousal)
    sounds at ``loudness`` LUFS integrated, every other clip at its planned offset from it
    (None: the plan's levels as they are; see :func:`session_gains` for "off").
    Each clip should sound at its level. Where its true peak would exceed the ceiling
    (``CEILING_DBTP``) the limiter takes the excess, up to ``limiter.MAX_REDUCTION_DB``; a
    clip that would need more cannot get there, and instead of letting that clip fall short
    (a loudness jump between neighbours) the whole session is lowered by the smallest offset
    that lets every clip reach ``level + offset`` (at most MAX_SESSION_OFFSET_DB; a clip still
    short after that falls short). The planned steps between clips are therefore kept
    exactly, whatever the engines' crest factors."""
    from emomusic.session.schedule import REFERENCE_LOUDNESS_DB

    from emomusic.limiter import MAX_REDUCTION_DB

    shift = 0.0 if loudness is None else float(loudness) - REFERENCE_LOUDNESS_DB
    needed, room = [], []
    for w, r in zip(plan.clips, results):
        if r.peak <= 0 or r.body_loudness_db <= -119:
            needed.append(None)
            room.append(None)
            continue
        needed.append(w.loudness_db + shift - r.body_loudness_db)  # the clip as heard (without its tail)
        room.append(20 * math.log10(PEAK_LIMIT / r.peak) + MAX_REDUCTION_DB)  # the limiter takes up to MAX_REDUCTION_DB
    offsets = [h - g for g, h in zip(needed, room) if g is not None]
    offset = max(MAX_SESSION_OFFSET_DB, min([0.0, *offsets]))
    gains = [0.0 if g is None else min(g + offset, h) for g, h in zip(needed, room)]
    return gains, offset


def session_gains(plan: "SessionPlan", results: list["ClipResult"], loudness: float | None) -> tuple[list[float], float]:
    """:func:`clip_gains` at the stated level ``loudness`` (LUFS); None ("off"): every clip
    as rendered (stored at a true peak of STORE_PEAK), no gain, no offset."""
    if loudness is None:
        return [0.0] * len(results), 0.0
    return clip_gains(plan, results, loudness)


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
    if gain_db != 0.0:
        audio *= np.float32(10 ** (gain_db / 20))
    return audio


def finish_clip(stored: np.ndarray, gain_db: float, sample_rate: int, body_frames: int,
                limited: bool = True, before: float | None = None) -> tuple[np.ndarray, dict]:
    """A stored clip at its gain through the true-peak limiter (ceiling ``CEILING_DBTP``):
    (audio, {"gain_db", "limiter_db", "loudness_lufs"}). When the limiter took the level down by
    more than ``LEVEL_TOLERANCE_DB`` (integrated LUFS of the body), the gain is raised by the
    shortfall (never past the limiter's ``MAX_REDUCTION_DB`` budget) and the clip limited again."""
    from emomusic.limiter import MAX_REDUCTION_DB, limit_peak
    from emomusic.session.levels import clip_loudness

    if not limited or not np.any(stored):
        return stored * np.float32(10 ** (gain_db / 20)), {"gain_db": gain_db, "limiter_db": 0.0, "loudness_lufs": None,
                                                          "true_peak": None}
    if before is None:  # the body's loudness as stored (ClipResult.body_loudness_db)
        _, before = clip_loudness(stored, sample_rate, body_frames)
    peak_db = 20 * math.log10(max(1e-12, sample_peak(stored)))
    budget = CEILING_DBTP - peak_db + MAX_REDUCTION_DB + 1.0  # the most gain the limiter may be asked to take back
    gain, out, red, level, tp = gain_db, stored, 0.0, before + gain_db, 0.0
    for _ in range(2):
        x = stored * np.float32(10 ** (gain / 20))
        out, red, tp = limit_peak(x, sample_rate, CEILING_DBTP)
        _, level = clip_loudness(out, sample_rate, body_frames)
        short = (before + gain_db) - level
        if not (math.isfinite(short) and short > LEVEL_TOLERANCE_DB) or gain + short > budget:
            break
        gain += short
    return out, {"gain_db": round(gain, 3), "limiter_db": round(red, 2),
                 "loudness_lufs": round(level, 3) if math.isfinite(level) else None, "true_peak": tp}


def stream_session(plan: "SessionPlan", work: Path, path: Path, sample_rate: int, gains: list[float],
                   bridges: bool = True, peaks: list[float] | None = None,
                   clip_sink=None, limited: bool = True, levels: list[float] | None = None,
                   workers: int = 2, timings: dict | None = None) -> tuple[float, list[dict], list[dict]]:
    """Write session.wav to ``path`` clip by clip; return its true peak, the joins and, per
    clip, what the limiter did (:func:`finish_clip`).

    Each clip is read once: at its gain, through the limiter (``limited``), handed to
    ``clip_sink(i, audio)`` (the clip files) and joined: each join is
    emomusic.audio.crossfade_concat of the previous clip's overhang (its last ``fade``
    frames) and the next clip, so the result equals crossfade_concat of all clips (each
    opening level-bridged, see :func:`join_ramp`) while holding only one clip in memory.
    The opening (crossfade and bridge, plus a second for the limiter's release) goes through
    the limiter again: the crossfade and the bridge may raise the peaks there; the rest of a
    clip is the limited clip itself.
    The levels either side of a join are short-term loudness (``window_lufs`` of the 3 s
    before the previous clip's crossfade and of the next clip's first 3 s, gains applied,
    before the bridge); each join is reported as ``{"clip", "at_s", "closing_lufs",
    "opening_lufs", "bridge_db"}`` (``clip``: the clip that starts there).

    ``peaks``: each stored clip's true peak (ClipResult.peak); used for the true peak of a
    clip's part after its opening when nothing is limited. ``timings``: the worker threads'
    wall and CPU seconds are added there (``limit``: reading and limiting the clips,
    ``clip_wav``: the clip files; :mod:`emomusic.session.timing`)."""
    import soundfile as sf

    from emomusic.audio import true_peak, window_lufs
    from emomusic.limiter import MAX_REDUCTION_DB, limit_peak
    from emomusic.session.clips import frame_bounds

    bounds = frame_bounds(plan, sample_rate)
    n = len(plan.clips)
    fade = int(round(plan.crossfade_s * sample_rate))
    win = int(round(JOIN_WINDOW_S * sample_rate))
    ramp = int(round(JOIN_RAMP_S * sample_rate))
    total_frames = int(round(plan.total_seconds * sample_rate))
    written, peak = 0, 0.0
    pending: np.ndarray | None = None
    closing_db: float | None = None
    joins: list[dict] = []
    done: list[dict] = []

    def finished(i: int) -> tuple[np.ndarray, dict]:
        """Clip i read, at its gain, limited and handed to the clip sink (on a worker thread)."""
        from emomusic.session.timing import timed

        with timed(timings, "limit"):
            stored = read_clip_audio(plan, work, i, sample_rate, bounds[i][1] + (fade if i < n - 1 else 0), 0.0)
            audio, info = finish_clip(stored, gains[i], sample_rate, bounds[i][1], limited,
                                      None if levels is None else levels[i])
        if clip_sink is not None:
            with timed(timings, "clip_wav"):
                clip_sink(i, audio)
        return audio, info

    from concurrent.futures import ThreadPoolExecutor

    # clips are finished AHEAD at a time on worker threads (numpy, the limiter and libsndfile
    # release the GIL) while this thread joins them into session.wav in order
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emomusic-assemble") as pool, \
            sf.SoundFile(str(path), "w", sample_rate, 2, subtype="PCM_16", format="WAV") as wav:
        jobs = {k: pool.submit(finished, k) for k in range(min(n, AHEAD))}
        for i in range(n):
            if i + AHEAD < n:
                jobs[i + AHEAD] = pool.submit(finished, i + AHEAD)
            audio, info = jobs.pop(i).result()
            done.append(info)
            env = None
            if closing_db is not None:  # level bridge: the opening eases from the previous clip's closing level
                opening_db = window_lufs(audio[:win], sample_rate)
                env = join_ramp(closing_db, opening_db, audio.shape[0], sample_rate) if bridges else None
                if env is not None and limited and env[0] > 1.0:
                    # a boost: at most what the limiter may take back over the opening's headroom
                    room = CEILING_DBTP - 20 * math.log10(max(1e-12, info["true_peak"] or true_peak(audio[:env.shape[0]])))
                    top = max(0.0, room) + MAX_REDUCTION_DB
                    if 20 * math.log10(float(env[0])) > top:
                        env = 10 ** (np.log10(env) * (top / (20 * math.log10(float(env[0]))))) if top > 0 else None
                joins.append({"clip": plan.clips[i].index, "at_s": round(plan.clips[i].start_s, 6),
                              "closing_lufs": _level(closing_db), "opening_lufs": _level(opening_db),
                              "bridge_db": 0.0 if env is None else round(float(20 * math.log10(env[0])), 3)})
            clip = _Bridged(audio, env)  # the clip as session.wav holds it (opening bridged), read in slices
            body_end = bounds[i][1]
            closing_db = window_lufs(clip[max(0, body_end - win):body_end], sample_rate)
            # this clip's part of session.wav: the crossfade with the previous clip's overhang, then the clip
            # up to its body's end (= emomusic.audio.crossfade_concat of the two, held in slices)
            f = 0 if pending is None else min(pending.shape[0], audio.shape[0])
            boosted = env is not None and env[0] > 1.0
            head = min(body_end, f + (sample_rate if i > 0 else 0) + (env.shape[0] if boosted else 0)) if i > 0 else 0
            opening = clip.get(0, head, copy=True)  # written into below
            if f > 0:
                t = (np.arange(f, dtype=np.float32) + 0.5) / f
                opening[:f] = pending[-f:] * np.cos(t * np.pi / 2)[:, None] + opening[:f] * np.sin(t * np.pi / 2)[:, None]
            pending = clip[body_end:] if i < n - 1 and fade > 0 else None
            if head > 0 and limited:
                opening, red, head_peak = limit_peak(opening, sample_rate, CEILING_DBTP)
                info["opening_limiter_db"] = round(red, 2)
                peak = max(peak, head_peak)
            elif head > 0:
                opening = soft_limit(opening)
                peak = max(peak, true_peak(opening))
            rest = clip[head:body_end]
            if rest.shape[0]:
                if limited and info["true_peak"] is not None:  # the limited clip itself: its true peak bounds it
                    peak = max(peak, float(info["true_peak"]))
                elif peaks is not None:  # the stored clip at its gain
                    peak = max(peak, min(peaks[i] * 10 ** (gains[i] / 20), 0.99) if np.any(rest) else 0.0)
                else:
                    peak = max(peak, true_peak(rest))
                if not limited:
                    rest = soft_limit(rest)
            for part in (opening, rest):
                if part.shape[0]:
                    wav.write(to_pcm16(part))
                    written += part.shape[0]
    if written != total_frames:  # cannot happen with a valid plan: the frames are planned exactly
        raise EmomusicError(f"internal error: session.wav has {written} frames, expected {total_frames}")
    return peak, joins, done


class _Bridged:
    """A clip with its opening multiplied by the level bridge ``env`` (None: none), sliced
    without copying the part the bridge does not reach."""

    def __init__(self, audio: np.ndarray, env: np.ndarray | None):
        self.audio, self.env = audio, env

    def __getitem__(self, sl: slice) -> np.ndarray:
        return self.get(sl.start or 0, self.audio.shape[0] if sl.stop is None else sl.stop)

    def get(self, a: int, b: int, copy: bool = False) -> np.ndarray:
        b = min(self.audio.shape[0], b)
        part = self.audio[a:b]
        if self.env is None or a >= self.env.shape[0] or b <= a:
            return part.copy() if copy else part
        part = part.copy()
        e = self.env[a:min(b, self.env.shape[0])]
        part[: e.shape[0]] *= e[:, None]
        return part


def _level(db: float) -> float | None:
    return round(float(db), 3) if math.isfinite(db) else None
