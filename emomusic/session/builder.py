"""Build a planned session into a folder: the pipeline's coordinator.

Two stages, so an interrupted build can resume and a failed one leaves no half output:

1. **Clips** (:class:`~emomusic.session.clips.ClipMaker`), in a work folder beside the
   output (``.<name>.session-work/``): generate candidates, let the acceptance policy
   (:mod:`~emomusic.session.policy`) keep one, render it, store it. ``resume=True`` reuses
   the finished clips of an interrupted build of the same plan and settings.
2. **Outputs**, inside :func:`emomusic.atomic.atomic_dir`: the writers of
   :mod:`~emomusic.session.writers` (clips/, session.wav streamed by
   :mod:`~emomusic.session.assemble`, session.mid, playlist, plan, plot, README,
   session.json). The work folder is deleted when the output is in place.

The library never changes process-wide settings (torch threads): the caller does, e.g.
with :func:`emomusic.session.runtime.torch_threads`.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from emomusic import __version__
from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError
from emomusic.piece import Piece
from emomusic.session.assemble import (CEILING_DBTP, JOIN_MAX_DB, JOIN_RAMP_S, JOIN_WINDOW_S, clip_dir, clip_gains,
                                       clip_levels, join_ramp, session_gains)
from emomusic.session.clip_engine import ClipEngine
from emomusic.session.clips import ClipMaker, ClipResult, frame_bounds, json_dump, ramp_tempo
from emomusic.session.engines import default_estimator, engine_for
from emomusic.session.keys import key_to_dict
from emomusic.session.plan import SessionPlan
from emomusic.session.schedule import REFERENCE_LOUDNESS_DB
from emomusic.session.policy import AcceptancePolicy
from emomusic.session.settings import BuildSettings
from emomusic.session.writers import Output, write_outputs

WORK_VERSION = 2  # 2: phrased clips, LUFS levels
RENDER_WORKERS = 2  # threads rendering and storing kept takes while the next clips are chosen
OnClip = Callable[[int, int, ClipResult], None]
Estimator = Callable[[Piece], Emotion]


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


def _estimator(estimator) -> tuple[Estimator | None, str]:
    if isinstance(estimator, str) and estimator == "default":
        return default_estimator()
    if estimator is None:
        return None, "none (closed loop off)"
    if callable(estimator):
        return estimator, getattr(estimator, "__name__", "custom")
    raise EmomusicError(f"estimator must be 'default', a callable or None, got {estimator!r}")


def _prepare_work(work: Path, state: dict, resume: bool) -> None:
    """Check (resume) or start the work folder; ``build.json`` records the plan and settings."""
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
        return
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    json_dump(work / "build.json", state)


def build_session(
    plan: SessionPlan,
    out_dir: str | os.PathLike,
    settings: BuildSettings | None = None,
    *,
    engine: ClipEngine | None = None,
    estimator: Estimator | None | str = "default",
    resume: bool = False,
    on_clip: OnClip | None = None,
    **overrides,
) -> dict:
    """Build ``plan`` into the folder ``out_dir``; return the session summary (session.json).

    ``settings`` (default :class:`BuildSettings`) with ``overrides`` applied (keywords named
    like its fields: ``backend="rules", sample_rate=22050``). ``engine`` overrides the
    backend with any :class:`ClipEngine` (tests, custom engines). ``estimator``:
    ``"default"`` (the project's estimator, or the template-inverse fallback when its
    parameters are missing), a callable ``Piece -> Emotion``, or None (no closed loop:
    nothing is measured or retried). ``on_clip(done, total, result)`` is called after each
    clip (progress bars, job progress). Everything is checked before any work is done.
    """
    if not isinstance(plan, SessionPlan):
        raise EmomusicError(f"build_session needs a SessionPlan, got {type(plan).__name__}")
    plan.validate()
    s = (settings if settings is not None else BuildSettings()).replace(**overrides).settled()
    out = Path(out_dir)
    _check_output(out)
    if engine is None:
        engine = engine_for(s)
    engine.check()
    est_fn, est_name = _estimator(estimator)
    recorded = dict(s.to_dict(), backend=getattr(engine, "name", s.backend), estimator=est_name)
    from emomusic.atomic import target_lock

    with target_lock(out):  # one build per folder at a time: a second gets a one-line "busy" error
        return _build_locked(plan, out, s, engine, est_fn, est_name, recorded, resume, on_clip)


def _build_locked(plan, out, s, engine, est_fn, est_name, recorded, resume, on_clip) -> dict:
    """The build itself, while this thread holds the output folder's lock."""
    work = work_dir_for(out)
    _prepare_work(work, {"emomusic_session_work": WORK_VERSION, "plan": plan.to_dict(), "settings": recorded}, resume)
    from emomusic.session.timing import Timings, timed

    timings = Timings("generate", "estimate", "render", "write")
    maker = ClipMaker(plan, engine, est_fn, AcceptancePolicy.from_settings(s), s.sample_rate, timings)
    with timed(timings, "clips_total"):  # stage 1, wall; its _cpu: this thread's part only
        results, reused = _make_clips(maker, work, resume, on_clip)

    from emomusic.atomic import atomic_dir

    summary, gains = _summary(plan, results, dict(recorded, resumed_clips=reused), est_name,
                              getattr(engine, "measured_on", "piece"), s)
    _import_for_workers(s.sample_rate)  # done by a render worker, unless every clip was resumed
    with atomic_dir(out) as tmp:
        write_outputs(Output(plan, results, work, tmp, s.sample_rate, gains, summary, timings))
        _public_permissions(tmp)
    shutil.rmtree(work, ignore_errors=True)
    summary["output"] = str(out)
    return summary


def _make_clips(maker: ClipMaker, work: Path, resume: bool, on_clip: OnClip | None) -> tuple[list[ClipResult], int]:
    """Stage 1: every clip made (or, resuming, read back) in order; (results, reused).

    Clips are chosen (generate, estimate, accept) on this thread, one after the other, and
    each kept take is rendered and stored on a worker thread (``RENDER_WORKERS``) while the
    next clips are being chosen: the SoundFont player, the reverb and numpy release the GIL, so on two cores
    the rendering hides behind the generation. Results, ``on_clip`` calls and errors come in
    clip order, exactly as without the worker."""
    from concurrent.futures import Future, ThreadPoolExecutor

    plan = maker.plan
    results: list[ClipResult] = []
    reused = 0
    pending: list[tuple[int, Future]] = []

    def fail(i: int, exc: BaseException) -> EmomusicError:
        w = plan.clips[i]
        msg = f"{exc}" if isinstance(exc, EmomusicError) else f"{type(exc).__name__}: {exc}"
        return EmomusicError(
            f"clip {w.index} of {len(plan.clips)} failed ({msg}); {len(results)} finished clips are kept in "
            f"{work}: run again with --resume to continue"
        )

    def collect(block: bool) -> None:
        while pending and (block or pending[0][1].done()):
            i, fut = pending.pop(0)
            try:
                result = fut.result()
            except Exception as exc:
                raise fail(i, exc) from exc
            results.append(result)
            if on_clip is not None:
                on_clip(len(results), len(plan.clips), result)

    with ThreadPoolExecutor(max_workers=RENDER_WORKERS, thread_name_prefix="emomusic-render") as pool:
        # the workers' imports (scipy, ~1.2 s) start now on the first worker, beside the first
        # clip's composing, not after it (a failure there shows again in the first _finish)
        pool.submit(_import_for_workers, maker.sample_rate)
        try:
            for i, w in enumerate(plan.clips):
                cdir = clip_dir(work, w.index)
                result = _finished(cdir) if resume else None
                fut: Future = Future()
                if result is not None:
                    reused += 1
                    fut.set_result(result)
                else:
                    if cdir.exists():
                        shutil.rmtree(cdir)
                    try:
                        take, attempts = maker.choose(i)
                    except Exception as exc:
                        collect(True)  # the clips before it are finished (or fail first)
                        raise fail(i, exc) from exc
                    fut = pool.submit(_finish, maker, i, take, attempts, cdir)
                pending.append((i, fut))
                collect(False)
            collect(True)
        finally:
            for _, fut in pending:
                fut.cancel()
    return results, reused


_WORKER_IMPORTS = threading.Lock()
_WORKERS_READY: set[int] = set()  # sample rates whose filters are built


def _finish(maker: ClipMaker, i: int, take, attempts, cdir: Path) -> ClipResult:
    """A worker thread's job: the modules it needs, then the clip rendered and stored."""
    _import_for_workers(maker.sample_rate)
    return maker.finish(i, take, attempts, cdir)


def _import_for_workers(sample_rate: int) -> None:
    """Import the lazily imported modules the worker threads use (scipy's signal and ndimage,
    and the filters built from them), once, by one thread at a time: two threads importing
    scipy's submodules at once can fail with a circular-import error. The first render
    worker does it (about 1.2 s of CPU), submitted as the pool starts, while this build's main
    thread composes the first clips (it imports no scipy); the others wait for it here."""
    with _WORKER_IMPORTS:
        if int(sample_rate) in _WORKERS_READY:
            return
        import scipy.ndimage  # noqa: F401  (the limiter)
        import scipy.signal  # noqa: F401  (true peak filter, K-weighting)

        from emomusic.audio import interpolation_phases, k_sos

        interpolation_phases(4)
        k_sos(int(sample_rate))
        _WORKERS_READY.add(int(sample_rate))


def _finished(cdir: Path) -> ClipResult | None:
    """The record of a clip an earlier (interrupted) build finished, or None."""
    done = cdir / "result.json"
    if not (done.is_file() and (cdir / "audio.wav").is_file()):
        return None
    try:
        return ClipResult.from_dict(json.loads(done.read_text(encoding="utf-8")))
    except (OSError, KeyError, ValueError, json.JSONDecodeError):
        return None  # a damaged record: make the clip again


def _summary(plan: SessionPlan, results: list[ClipResult], settings: dict, est_name: str, measured_on: str,
             s: BuildSettings) -> tuple[dict, list[float]]:
    """session.json without the parts the writers add (files, session_peak, timings), and
    each clip's gain in dB (:func:`~emomusic.session.assemble.clip_gains`)."""
    target = s.loudness_lufs
    gains, offset = session_gains(plan, results, target)
    policy = AcceptancePolicy.from_settings(s)
    shift = 0.0 if target is None else target - REFERENCE_LOUDNESS_DB
    clips = [_clip_entry(w, r, lv, g, settings["backend"], policy, shift)
             for w, r, lv, g in zip(plan.clips, results, clip_levels(results, gains), gains)]
    dists = [c["distance"] for c in clips if c["distance"] is not None]
    summary = {
        "emomusic_session": 1,
        "emomusic_version": __version__,
        "duration_s": plan.total_seconds,
        "frames": int(round(plan.total_seconds * s.sample_rate)),
        "sample_rate": s.sample_rate,
        "clips_count": len(plan.clips),
        "backend": settings["backend"],
        "estimator": est_name,
        "measured_on": measured_on,
        "settings": settings,
        "session_peak": None,
        "session_true_peak_dbtp": None,
        "session_level_offset_db": round(offset, 3),
        "loudness": {
            "target_lufs": target,  # a clip at the plan's reference level (neutral arousal) sits here; None: off
            "measure": "integrated LUFS (ITU-R BS.1770-4) per clip; joins: short-term LUFS (3 s) either side",
            "true_peak_ceiling_dbtp": CEILING_DBTP,
            "session_offset_db": round(offset, 3),
        },
        "joins": [],
        "adherence": {
            "mean_distance": round(float(np.mean(dists)), 4) if dists else None,
            "max_distance": round(float(np.max(dists)), 4) if dists else None,
            "within_tolerance": sum(1 for c in clips if c["within_tolerance"]),
            "quadrant_match": sum(1 for w, r in zip(plan.clips, results)
                                  if r.measured is not None and r.measured.quadrant == w.emotion.quadrant),
        },
        "files": {},
        "plan": plan.to_dict(),
        "clips": clips,
    }
    return summary, gains


def _clip_entry(w, r: ClipResult, level: float, gain: float, backend: str, policy: AcceptancePolicy,
                shift: float = 0.0) -> dict:
    return {
        "index": w.index,
        "title": w.title,
        "phase": w.phase,
        "start_s": round(w.start_s, 6),
        "duration_s": round(w.duration_s, 6),
        "target": w.emotion.to_dict(),
        "measured": None if r.measured is None else r.measured.to_dict(),
        "distance": None if r.distance is None else round(r.distance, 4),
        "within_tolerance": policy.within(r.distance),
        "tempo": round(w.tempo, 3),
        "key": key_to_dict(w.key),
        "key_name": w.key_name,
        "loudness_target_db": round(w.loudness_db, 3),  # as planned (relative to the plan's reference level)
        "loudness_target_lufs": round(w.loudness_db + shift, 3),  # at the session's stated level
        "loudness_db": round(level, 3),  # as heard: integrated LUFS of the clip with its gain
        "gain_db": round(gain, 3),
        "seed": r.seed,
        "backend": backend,
        "retries": r.retries,
        "attempts": r.attempts,
        "files": None,
        "phrasing": r.phrasing,  # bars, played tempo (nudge), form, where the final cadence begins (s)
        "info": r.info,
    }


def _public_permissions(folder: Path) -> None:
    """Temporary files are created private (0600/0700); give the finished folder the
    permissions a normal file written by this user would get (umask applies)."""
    from emomusic.atomic import current_umask

    mask = current_umask()  # read without setting it: other threads may be creating files
    for p in [folder, *folder.rglob("*")]:
        try:
            os.chmod(p, (0o777 if p.is_dir() else 0o666) & ~mask)
        except OSError:
            pass


__all__ = ["ClipResult", "build_session", "clip_gains", "frame_bounds", "join_ramp", "ramp_tempo", "work_dir_for",
           "JOIN_MAX_DB", "JOIN_RAMP_S", "JOIN_WINDOW_S"]
