"""Build a planned session: clips, closed-loop emotion check, joins, and the output folder.

Build in two stages so an interrupted build can resume and a failed one leaves no half
output folder:

1. **Clips**, in a work folder beside the output (``.<name>.session-work/``). For each
   clip: generate a candidate at the waypoint's emotion, tempo and key; measure its
   emotion; if it is farther than ``tolerance`` from the waypoint, try the next seed (up to
   ``max_retries`` more) and keep the closest. The kept piece gets a tempo ramp toward its
   neighbours, is rendered **once**, cut to its length plus the crossfade, and normalised
   to a fixed peak. Each finished clip is saved (``clip.mid``,
   ``audio.wav``, then ``result.json`` last, as its commit mark). ``resume=True`` reuses
   the finished clips of an interrupted build of the same plan and settings.
2. **Assembly**, inside :func:`emomusic.atomic.atomic_dir`: equal-power crossfades
   (every clip but the last carries ``crossfade_s`` of extra audio, so the session lasts
   exactly ``minutes``), ``session.wav``, ``session.mid`` (one continuous MIDI with a marker
   per clip), ``clips/``, ``playlist.m3u8``, ``session.json``, ``plan.json``,
   ``trajectory.png`` and ``README.md``. Every clip gets the gain that puts it at its
   planned loudness, less one session-wide offset when a peaky clip needs the headroom
   (:func:`clip_gains`), so the planned loudness steps hold exactly. The work folder is
   deleted when the output is in place.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from emomusic import __version__
from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError
from emomusic.piece import Marker, Piece, Tempo
from emomusic.session.engines import Candidate, ClipEngine, ClipRequest, conform, default_estimator, make_engine, trim
from emomusic.session.planner import SessionPlan, key_to_dict

DEFAULT_TOLERANCE = 0.6
DEFAULT_MAX_RETRIES = 3
DEFAULT_SAMPLE_RATE = 44100
END_FADE_SECONDS = 3.0
MAX_GAP_SECONDS = 1.5  # a candidate silent this long at its start or end is retried ...
GAP_PENALTY = 0.5  # ... and ranks as if this much farther from its waypoint
STORE_PEAK = 0.9  # clips are stored at this peak; gains are applied at assembly
PEAK_LIMIT = 0.98  # no clip is scaled above this peak
MAX_SESSION_OFFSET_DB = -8.0  # the session is lowered at most this much to fit peaky clips
RETRY_SEED_STEP = 7919  # a prime: retry seeds never collide with other clips' seeds
WORK_VERSION = 1


@dataclass
class ClipResult:
    index: int
    seed: int
    retries: int
    measured: Emotion | None
    distance: float | None
    attempts: list[dict]
    loudness_db: float  # level of the stored audio (whole clip incl. tail), dB
    beats: float  # length of the clip in beats (its tempo map), for session.mid
    info: dict
    peak: float = 0.0  # peak of the stored audio
    body_loudness_db: float = -120.0  # level of the stored audio without the crossfade tail

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "seed": self.seed,
            "retries": self.retries,
            "measured": None if self.measured is None else self.measured.to_dict(),
            "distance": None if self.distance is None else round(self.distance, 4),
            "attempts": self.attempts,
            "loudness_db": round(self.loudness_db, 3),
            "beats": self.beats,
            "info": self.info,
            "peak": round(self.peak, 6),
            "body_loudness_db": round(self.body_loudness_db, 4),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "ClipResult":
        return cls(
            index=int(d["index"]),
            seed=int(d["seed"]),
            retries=int(d["retries"]),
            measured=None if d.get("measured") is None else Emotion.from_dict(d["measured"]),
            distance=d.get("distance"),
            attempts=list(d.get("attempts", [])),
            loudness_db=float(d["loudness_db"]),
            beats=float(d["beats"]),
            info=dict(d.get("info", {})),
            peak=float(d["peak"]),
            body_loudness_db=float(d["body_loudness_db"]),
        )


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def frame_bounds(plan: SessionPlan, sample_rate: int) -> list[tuple[int, int]]:
    """(start frame, frames) of each clip: rounded once from the cumulative start times,
    so the frames add up exactly to the session length."""
    edges = [int(round(c.start_s * sample_rate)) for c in plan.clips] + [int(round(plan.total_seconds * sample_rate))]
    return [(edges[i], edges[i + 1] - edges[i]) for i in range(len(plan.clips))]


def ramp_tempo(piece: Piece, tempo: float, before: float | None, after: float | None, seconds: float) -> Piece:
    """Tempo ramp over the clip's ``seconds``: from the geometric mean with the previous
    clip's tempo, to the plan tempo at the middle, to the geometric mean with the next
    clip's (one tempo event per beat; the last tempo holds through the crossfade tail).
    Consecutive clips therefore meet at (nearly) the same tempo."""
    t_in = math.sqrt(tempo * before) if before else tempo
    t_out = math.sqrt(tempo * after) if after else tempo
    if abs(t_in - tempo) < 1e-6 and abs(t_out - tempo) < 1e-6:
        return replace(piece, tempos=[Tempo(round(tempo, 3), 0.0)])
    length = max(1.0, seconds * tempo / 60.0)  # beats (the ramp is symmetric around `tempo`)
    half = length / 2.0
    points = [float(b) for b in range(int(math.floor(length)) + 1)]
    if length - points[-1] > 1e-6:
        points.append(length)
    tempos = []
    for b in points:
        if b <= half:
            bpm = t_in * (tempo / t_in) ** (b / half)
        else:
            bpm = tempo * (t_out / tempo) ** ((b - half) / (length - half))
        tempos.append(Tempo(round(bpm, 3), round(b, 6)))
    return replace(piece, tempos=tempos)


def _json_dump(path: Path, obj) -> None:
    from emomusic.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")


LIMIT_KNEE = 0.95  # soft limiter: samples above this are bent toward 0.99 (crossfade overshoot)


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


JOIN_WINDOW_S = 3.0  # level compared on each side of a join
JOIN_RAMP_S = 6.0  # the next clip's opening moves from the previous clip's closing level to its own over this
JOIN_MAX_DB = 9.0  # largest correction at a join
JOIN_MIN_DB = 1.0  # smaller differences are left alone
JOIN_FLOOR_DB = -70.0  # near-silence on either side: no correction


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


def clip_gains(plan: SessionPlan, results: list["ClipResult"]) -> tuple[list[float], float]:
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


def work_dir_for(out_dir: Path) -> Path:
    out_dir = Path(out_dir)
    return out_dir.parent / f".{out_dir.name}.session-work"


def _check_output(out_dir: Path) -> None:
    from emomusic.atomic import check_writable_dir

    if out_dir.exists():
        if not out_dir.is_dir():
            raise EmomusicError(f"cannot write the session to {out_dir}: a file of that name exists")
        if any(out_dir.iterdir()) and not (out_dir / "session.json").is_file():
            raise EmomusicError(
                f"{out_dir} exists and is not an emomusic session folder; choose a new -o folder (it would be replaced)"
            )
    check_writable_dir(out_dir.parent if str(out_dir.parent) else Path("."))


def _progress(iterable, enabled: bool, total: int, desc: str):
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit="clip", leave=False)


# --------------------------------------------------------------------------------------
# Stage 1: clips
# --------------------------------------------------------------------------------------


def _silent_gap(piece: Piece, seconds: float) -> float:
    """Longest silence at the start or the end of the clip's first ``seconds`` (a rest
    there is heard as a hole at the join with the neighbouring clip)."""
    end_beat = piece.seconds_to_beat(seconds)
    notes = [n for n in piece.notes if n.start < end_beat]
    if not notes:
        return seconds
    first = piece.beat_to_seconds(min(n.start for n in notes))
    last = piece.beat_to_seconds(min(end_beat, max(n.end for n in notes)))
    return max(first, seconds - last)


def _make_clip(
    plan: SessionPlan,
    i: int,
    engine: ClipEngine,
    estimator: Callable[[Piece], Emotion] | None,
    tolerance: float,
    max_retries: int,
    sample_rate: int,
    bounds: list[tuple[int, int]],
    clip_dir: Path,
    timings: dict,
) -> ClipResult:
    from emomusic.audio import fit_length, loudness_db
    from emomusic.io import write_piece

    w = plan.clips[i]
    n = len(plan.clips)
    fade = plan.crossfade_s if i < n - 1 else 0.0
    seconds = w.duration_s + fade
    attempts: list[dict] = []
    best: tuple[float, int, Candidate, Emotion | None, ClipRequest, bool] | None = None
    for k in range(max_retries + 1):
        seed = w.seed + k * RETRY_SEED_STEP
        req = ClipRequest(index=w.index, emotion=w.emotion, seconds=seconds, tempo=w.tempo, key=w.key, seed=seed)
        t0 = time.perf_counter()
        cand = engine.generate(req)
        if cand.piece is not None:
            cand = replace(cand, piece=conform(cand.piece, w.tempo, w.key))
        if cand.measure_piece is not None:
            cand = replace(cand, measure_piece=conform(cand.measure_piece, w.tempo, w.key))
        timings["generate"] += time.perf_counter() - t0
        measured = None
        dist = math.inf
        empty = cand.measured is not None and not cand.measured.notes
        t0 = time.perf_counter()
        if estimator is not None and cand.measured is not None and not empty:
            try:
                measured = estimator(cand.measured)
                dist = measured.distance(w.emotion)
            except EmomusicError:  # e.g. nothing pitched to measure: treat like an empty clip
                empty = True
        timings["estimate"] += time.perf_counter() - t0
        attempt = {"seed": seed, "distance": None if measured is None else round(dist, 4),
                   "measured": None if measured is None else measured.to_dict()}
        gap = 0.0 if empty or cand.piece is None else _silent_gap(cand.piece, w.duration_s)
        base = dist if measured is not None else (math.inf if empty else 0.0)  # no estimator: rank by gaps only
        score = base + (GAP_PENALTY if gap > MAX_GAP_SECONDS else 0.0)
        if gap > MAX_GAP_SECONDS:
            attempt["gap_s"] = round(gap, 2)
        if empty:
            attempt["empty"] = True
        attempts.append(attempt)
        if best is None or score < best[0] or (best[3] is None and not empty and best[5]):
            best = (score, seed, cand, measured, req, empty)
        if empty:
            continue  # an empty (or unmeasurable) candidate: always try the next seed
        if gap > MAX_GAP_SECONDS:
            continue  # a hole at the start or end of the clip: try the next seed
        if measured is None or dist <= tolerance:
            break
    assert best is not None
    _, seed, cand, measured, req, _ = best
    dist = measured.distance(w.emotion) if measured is not None else math.inf

    # tempo ramp toward the neighbours, then render once
    before = plan.clips[i - 1].tempo if i > 0 else None
    after = plan.clips[i + 1].tempo if i < n - 1 else None
    piece = None
    clip_beats = w.duration_s * w.tempo / 60.0
    if cand.piece is not None:
        piece = ramp_tempo(cand.piece, w.tempo, before, after, w.duration_s)
        render_piece = trim(piece, piece.seconds_to_beat(seconds))
        clip_beats = piece.seconds_to_beat(w.duration_s)
        cand = replace(cand, piece=render_piece)
    t0 = time.perf_counter()
    if cand.piece is not None and not any(t.notes for t in cand.piece.tracks):
        # every attempt came back empty: the clip is silence (recorded), not a failed build
        audio = np.zeros((int(round(seconds * sample_rate)), 2), dtype=np.float32)
        cand.info["silent"] = True
    else:
        audio = engine.render(cand, replace(req, seconds=seconds), sample_rate)
    timings["render"] += time.perf_counter() - t0

    t0 = time.perf_counter()
    frames = bounds[i][1] + (int(round(fade * sample_rate)) if i < n - 1 else 0)
    # the session ends with a fade-out (up to 3 s); other clips keep their tail for the crossfade
    end_fade = min(END_FADE_SECONDS, w.duration_s / 4) if i == n - 1 else 0.0
    audio = fit_length(audio, frames, fade_seconds=end_fade, sample_rate=sample_rate)
    # stored at a fixed peak (precision of 16 bits); the loudness plan is applied at assembly,
    # when every clip's level and peak are known (see _clip_gains)
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0:
        audio = audio * (STORE_PEAK / peak)
        peak = STORE_PEAK
    level = loudness_db(audio, sample_rate)
    body_level = loudness_db(audio[: bounds[i][1]], sample_rate)
    clip_dir.mkdir(parents=True, exist_ok=True)
    if piece is not None:
        clip_piece = trim(piece, clip_beats)
        clip_piece.title = w.title
        clip_piece.markers = [Marker(f"clip {w.index:02d} {w.phase} {w.emotion.marker_text()}", 0.0)]
        write_piece(clip_piece, clip_dir / "clip.mid")
    write_pcm16(clip_dir / "audio.wav", audio, sample_rate)
    timings["write"] += time.perf_counter() - t0
    result = ClipResult(
        index=w.index,
        seed=seed,
        retries=len(attempts) - 1,
        measured=measured,
        distance=None if measured is None else float(dist),
        attempts=attempts,
        # rounded as in result.json, so a resumed build computes the very same gains
        loudness_db=round(float(level), 3) if math.isfinite(level) else -120.0,
        peak=round(peak, 6),
        body_loudness_db=round(float(body_level), 4) if math.isfinite(body_level) else -120.0,
        beats=float(clip_beats),
        info={k: v for k, v in cand.info.items() if isinstance(v, (str, int, float, bool)) and k != "abc"},
    )
    if cand.info.get("abc"):
        from emomusic.atomic import write_text_atomic

        write_text_atomic(clip_dir / "clip.abc", str(cand.info["abc"]))
    _json_dump(clip_dir / "result.json", result.to_dict())  # last: marks the clip finished
    return result


# --------------------------------------------------------------------------------------
# Stage 2: assembly
# --------------------------------------------------------------------------------------


def _assemble(
    plan: SessionPlan,
    results: list[ClipResult],
    work: Path,
    out: Path,
    sample_rate: int,
    backend: str,
    estimator_name: str,
    measured_on: str,
    settings: dict,
    timings: dict,
) -> dict:
    from emomusic.audio import crossfade_concat, fit_length, read_wav, rms_db
    from emomusic.io import read_piece, write_piece
    from emomusic.piece import concatenate
    from emomusic.session.plot import plot_trajectory
    from emomusic.session.report import write_playlist, write_readme

    import soundfile as sf

    t0 = time.perf_counter()
    bounds = frame_bounds(plan, sample_rate)
    n = len(plan.clips)
    fade = int(round(plan.crossfade_s * sample_rate))
    total_frames = int(round(plan.total_seconds * sample_rate))
    clips_dir = out / "clips"
    clips_dir.mkdir()
    pieces: list[Piece] = []
    entries = []
    has_midi = True
    written = 0
    peak = 0.0
    gains, offset = clip_gains(plan, results)
    levels = []
    # session.wav is streamed clip by clip: each join is emomusic.audio.crossfade_concat of
    # the previous clip's overhang (its last `fade` frames) and the next clip, so the result
    # equals crossfade_concat of all clips (each opening level-bridged, see join_ramp) while
    # holding only one clip in memory.
    with sf.SoundFile(str(out / "session.wav"), "w", sample_rate, 2, subtype="PCM_16", format="WAV") as wav:
        pending: np.ndarray | None = None
        closing_db: float | None = None
        for i, (w, r) in enumerate(zip(plan.clips, results)):
            cdir = work / f"clip_{w.index:03d}"
            audio, sr = read_wav(cdir / "audio.wav")
            if sr != sample_rate:
                raise EmomusicError(f"clip {w.index} in {work} was built at {sr} Hz, not {sample_rate}; drop --resume")
            expected = bounds[i][1] + (fade if i < n - 1 else 0)
            if audio.shape[0] != expected:
                raise EmomusicError(f"clip {w.index} in {work} has {audio.shape[0]} frames, not {expected}; drop --resume")
            audio = audio * np.float32(10 ** (gains[i] / 20))
            levels.append(r.body_loudness_db + gains[i] if r.peak > 0 else -120.0)
            stem = f"clip_{w.index:02d}"
            wav_name = f"clips/{stem}.wav"
            write_pcm16(out / wav_name, fit_length(audio, bounds[i][1], fade_seconds=0.05, sample_rate=sample_rate), sample_rate)
            # level bridge (session.wav only; clips/ keep each clip as planned): the opening
            # eases from the previous clip's closing level to this clip's own
            win = int(round(JOIN_WINDOW_S * sample_rate))
            if closing_db is not None:
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
            mid_name = None
            if (cdir / "clip.mid").is_file():
                mid_name = f"clips/{stem}.mid"
                shutil.copyfile(cdir / "clip.mid", out / mid_name)
                pieces.append(read_piece(cdir / "clip.mid", allow_empty=True))
            else:
                has_midi = False
            if (cdir / "clip.abc").is_file():
                shutil.copyfile(cdir / "clip.abc", out / f"clips/{stem}.abc")
            entries.append({"wav": wav_name, "midi": mid_name})
    if written != total_frames:  # cannot happen with a valid plan: the frames are planned exactly
        raise EmomusicError(f"internal error: session.wav has {written} frames, expected {total_frames}")
    timings["session_wav"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    midi_ok = False
    if has_midi and pieces:
        for p, w in zip(pieces, plan.clips):
            p.markers = [Marker(f"clip {w.index:02d} {w.phase} {w.emotion.marker_text()}", 0.0)]
        whole = concatenate(pieces, lengths=[r.beats for r in results])
        whole.title = plan.name or "emomusic session"
        write_piece(whole, out / "session.mid")
        midi_ok = True

    clips_json = []
    for w, r, e, lv, g in zip(plan.clips, results, entries, levels, gains):
        clips_json.append(
            {
                "index": w.index,
                "title": w.title,
                "phase": w.phase,
                "start_s": round(w.start_s, 6),
                "duration_s": round(w.duration_s, 6),
                "target": w.emotion.to_dict(),
                "measured": None if r.measured is None else r.measured.to_dict(),
                "distance": None if r.distance is None else round(r.distance, 4),
                "within_tolerance": None if r.distance is None else bool(r.distance <= settings["tolerance"]),
                "tempo": round(w.tempo, 3),
                "key": key_to_dict(w.key),
                "key_name": w.key_name,
                "loudness_target_db": round(w.loudness_db, 3),
                "loudness_db": round(lv, 3),
                "gain_db": round(g, 3),
                "seed": r.seed,
                "backend": backend,
                "retries": r.retries,
                "attempts": r.attempts,
                "files": e,
                "info": r.info,
            }
        )
    dists = [c["distance"] for c in clips_json if c["distance"] is not None]
    summary = {
        "emomusic_session": 1,
        "emomusic_version": __version__,
        "duration_s": plan.total_seconds,
        "frames": total_frames,
        "sample_rate": sample_rate,
        "clips_count": n,
        "backend": backend,
        "estimator": estimator_name,
        "measured_on": measured_on,
        "settings": settings,
        "session_peak": round(peak, 4),
        "session_level_offset_db": round(offset, 3),
        "adherence": {
            "mean_distance": round(float(np.mean(dists)), 4) if dists else None,
            "max_distance": round(float(np.max(dists)), 4) if dists else None,
            "within_tolerance": sum(1 for c in clips_json if c["within_tolerance"]),
            "quadrant_match": sum(1 for w, r in zip(plan.clips, results)
                                  if r.measured is not None and r.measured.quadrant == w.emotion.quadrant),
        },
        "files": {
            "session_wav": "session.wav",
            "session_mid": "session.mid" if midi_ok else None,
            "playlist": "playlist.m3u8",
            "trajectory": "trajectory.png",
            "readme": "README.md",
            "plan": "plan.json",
        },
        "plan": plan.to_dict(),
        "clips": clips_json,
    }
    write_playlist(out / "playlist.m3u8", plan, [e["wav"] for e in entries])
    _json_dump(out / "plan.json", plan.to_dict())
    plot_trajectory(out / "trajectory.png", plan, [r.measured for r in results])
    write_readme(out / "README.md", plan, summary)
    timings["files"] = time.perf_counter() - t0
    summary["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    _json_dump(out / "session.json", summary)
    _public_permissions(out)
    return summary


def _public_permissions(folder: Path) -> None:
    """Temporary files are created private (0600/0700); give the finished folder the
    permissions a normal file written by this user would get (umask applies)."""
    mask = os.umask(0)
    os.umask(mask)
    for p in [folder, *folder.rglob("*")]:
        try:
            os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)
        except OSError:
            pass


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def build_session(
    plan: SessionPlan,
    out_dir: str | os.PathLike,
    backend: str = "symbolic",
    model=None,
    adapter=None,
    soundfont=None,
    resume: bool = False,
    max_retries: int = DEFAULT_MAX_RETRIES,
    tolerance: float = DEFAULT_TOLERANCE,
    progress: bool = False,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    engine: ClipEngine | None = None,
    estimator: Callable[[Piece], Emotion] | None | str = "default",
    threads: int | None = 1,
) -> dict:
    """Build ``plan`` into the folder ``out_dir``; return the session summary (session.json).

    ``engine`` overrides ``backend`` with any :class:`ClipEngine` (tests, custom engines).
    ``estimator``: ``"default"`` (the project's estimator, or the template-inverse fallback
    when its parameters are missing), a callable ``Piece -> Emotion``, or None (no closed
    loop: nothing is measured or retried). ``tolerance`` is the largest accepted
    valence-arousal distance between a clip's measured emotion and its waypoint.
    ``threads``: torch threads while the clips are generated (restored afterwards; None
    leaves torch alone). The engines' models are small: on a shared 2-core CPU one thread
    composes a clip in about 0.05 s, two threads 4-6x slower (benchmarks/session.py).
    """
    if not isinstance(plan, SessionPlan):
        raise EmomusicError(f"build_session needs a SessionPlan, got {type(plan).__name__}")
    plan.validate()
    if isinstance(max_retries, bool) or int(max_retries) != max_retries or max_retries < 0:
        raise EmomusicError(f"max retries must be a whole number >= 0, got {max_retries}")
    max_retries = int(max_retries)
    if not (isinstance(tolerance, (int, float)) and tolerance >= 0 and math.isfinite(tolerance)):
        raise EmomusicError(f"tolerance must be a number >= 0, got {tolerance}")
    if int(sample_rate) != sample_rate or not 8000 <= sample_rate <= 192000:
        raise EmomusicError(f"sample rate must be 8000..192000 Hz, got {sample_rate}")
    sample_rate = int(sample_rate)
    if threads is not None and (isinstance(threads, bool) or int(threads) != threads or threads < 1):
        raise EmomusicError(f"threads must be a whole number >= 1, got {threads}")
    out = Path(out_dir)
    _check_output(out)
    if engine is None:
        engine = make_engine(backend, model=model, adapter=adapter, soundfont=soundfont)
    backend_name = getattr(engine, "name", backend)
    engine.check()
    if estimator == "default":
        est_fn, est_name = default_estimator()
    elif estimator is None:
        est_fn, est_name = None, "none (closed loop off)"
    elif callable(estimator):
        est_fn, est_name = estimator, getattr(estimator, "__name__", "custom")
    else:
        raise EmomusicError(f"estimator must be 'default', a callable or None, got {estimator!r}")

    settings = {
        "backend": backend_name,
        "model": None if model is None else str(model),
        "adapter": None if adapter is None else str(adapter),
        "soundfont": None if soundfont is None else str(soundfont),
        "sample_rate": sample_rate,
        "max_retries": max_retries,
        "tolerance": float(tolerance),
        "estimator": est_name,
    }
    work = work_dir_for(out)
    state = {"emomusic_session_work": WORK_VERSION, "plan": plan.to_dict(), "settings": settings}
    if work.exists() and resume:
        try:
            old = json.loads((work / "build.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            old = None
        if old != json.loads(json.dumps(state)):
            raise EmomusicError(
                f"the unfinished build in {work} was for another plan or other settings; "
                "run without --resume to start over"
            )
    else:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        _json_dump(work / "build.json", state)

    old_threads = None
    if threads is not None and "torch" in sys.modules:  # only engines that use torch import it
        import torch

        old_threads = torch.get_num_threads()
        torch.set_num_threads(int(threads))
    try:
        return _build(plan, out, work, engine, est_fn, est_name, settings, backend_name, resume, max_retries,
                      tolerance, progress, sample_rate)
    finally:
        if old_threads is not None:
            import torch

            torch.set_num_threads(old_threads)


def _build(plan, out, work, engine, est_fn, est_name, settings, backend_name, resume, max_retries, tolerance,
           progress, sample_rate) -> dict:
    timings = {"generate": 0.0, "estimate": 0.0, "render": 0.0, "write": 0.0}
    bounds = frame_bounds(plan, sample_rate)
    results: list[ClipResult] = []
    reused = 0
    t_start = time.perf_counter()
    for i in _progress(range(len(plan.clips)), progress, len(plan.clips), "session clips"):
        w = plan.clips[i]
        cdir = work / f"clip_{w.index:03d}"
        done = cdir / "result.json"
        if resume and done.is_file() and (cdir / "audio.wav").is_file():
            try:
                results.append(ClipResult.from_dict(json.loads(done.read_text(encoding="utf-8"))))
                reused += 1
                continue
            except (OSError, KeyError, ValueError, json.JSONDecodeError):
                pass  # a damaged record: make the clip again
        if cdir.exists():
            shutil.rmtree(cdir)
        try:
            results.append(
                _make_clip(plan, i, engine, est_fn, tolerance, max_retries, sample_rate, bounds, cdir, timings)
            )
        except Exception as exc:
            done_n = len(results)
            msg = f"{exc}" if isinstance(exc, EmomusicError) else f"{type(exc).__name__}: {exc}"
            raise EmomusicError(
                f"clip {w.index} of {len(plan.clips)} failed ({msg}); {done_n} finished clips are kept in "
                f"{work}: run again with --resume to continue"
            ) from exc
    timings["clips_total"] = time.perf_counter() - t_start
    settings_out = dict(settings, resumed_clips=reused)

    from emomusic.atomic import atomic_dir

    with atomic_dir(out) as tmp:
        summary = _assemble(
            plan, results, work, tmp, sample_rate, backend_name, est_name,
            getattr(engine, "measured_on", "piece"), settings_out, timings,
        )
    shutil.rmtree(work, ignore_errors=True)
    summary["output"] = str(out)
    return summary


__all__ = ["ClipResult", "build_session", "frame_bounds", "ramp_tempo", "work_dir_for"]
