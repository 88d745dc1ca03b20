"""Every call the web layer makes into :mod:`emomusic.session`, in one module.

The session API is being reworked (``PlanSettings`` / ``BuildSettings``, presets returned as
``(start, target, PlanSettings)``); this module speaks both the current and the new form,
so the routes do not change when it lands. Progress and cancellation come from wrapping the
clip engine: each clip request reports progress and checks whether the job was cancelled.
"""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

from emomusic.emotion import Emotion, parse_emotion
from emomusic.errors import EmomusicError

from .jobs import Job


def _new_api() -> bool:
    import emomusic.session as s

    return hasattr(s, "BuildSettings") and hasattr(s, "PlanSettings")


# -- presets -------------------------------------------------------------------------------------
def preset_names() -> list[str]:
    import emomusic.session as s

    if hasattr(s, "preset_names"):
        return list(s.preset_names())
    from emomusic.session.presets import preset_files

    return list(preset_files())


def _check_preset_name(name: str) -> str:
    """Only the installed presets: a request never names a file."""
    names = preset_names()
    if name not in names:
        raise EmomusicError(f"unknown session preset {name!r}; available: {', '.join(names) or 'none installed'}")
    return name


def preset_info(name: str) -> dict:
    """A preset as the page shows it: start, via points and target as emotions, minutes."""
    _check_preset_name(name)
    if _new_api():
        from emomusic.session import load_preset

        start, target, settings = load_preset(name)
        d = settings.to_dict()
        via = [parse_emotion(v) if not isinstance(v, dict) else Emotion.from_dict(v) for v in (d.get("via") or [])]
        return {"name": name, "description": str(d.get("description", "")), "start": start.to_dict(),
                "target": target.to_dict(), "via": [v.to_dict() for v in via], "minutes": d.get("minutes")}
    from emomusic.session.presets import load_preset

    d = load_preset(name)
    return {"name": name, "description": str(d.get("description", "")), "start": parse_emotion(str(d["from"])).to_dict(),
            "target": parse_emotion(str(d["to"])).to_dict(),
            "via": [parse_emotion(str(v)).to_dict() for v in d.get("via") or []], "minutes": d.get("minutes", 15)}


def presets() -> list[dict]:
    out = []
    for name in preset_names():
        try:
            out.append(preset_info(name))
        except EmomusicError:
            continue
    return out


# -- planning ------------------------------------------------------------------------------------
def plan(start: Emotion | None, target: Emotion | None, via: list[Emotion] | None, *, preset: str | None = None,
         **options):
    """A :class:`SessionPlan`. ``options`` are plan_session parameters (minutes, clip_seconds,
    seed, path, strategy); None values are left to the preset or the planner's defaults."""
    from emomusic.session import plan_session

    opts = {k: v for k, v in options.items() if v is not None}
    if via is not None:
        opts["via"] = list(via)
    if preset is not None:
        _check_preset_name(preset)
        if _new_api():
            from emomusic.session import load_preset

            p_start, p_target, settings = load_preset(preset, **opts)
            return plan_session(start or p_start, target or p_target, settings)
        from emomusic.session.presets import load_preset

        cfg = load_preset(preset)
        base = {k: cfg[k] for k in ("minutes", "clip_seconds", "match_minutes", "settle_minutes", "path", "strategy",
                                    "heart_rate", "tonic", "crossfade_s") if cfg.get(k) is not None}
        base["via"] = [parse_emotion(str(v)) for v in cfg.get("via") or []]
        base.update(name=str(cfg.get("name", preset)), description=str(cfg.get("description", "")))
        base.update(opts)
        start = start or parse_emotion(str(cfg["from"]))
        target = target or parse_emotion(str(cfg["to"]))
        return plan_session(start, target, **base)
    if start is None or target is None:
        raise EmomusicError("a session needs a start and a target (or a preset)")
    return plan_session(start, target, **opts)


# -- building ------------------------------------------------------------------------------------
class _ReportingEngine:
    """A clip engine that reports each clip as progress and stops when the job is cancelled."""

    def __init__(self, inner, job: Job, total: int):
        self.inner, self.job, self.total = inner, job, max(1, total)
        self.name = getattr(inner, "name", "custom")
        self.measured_on = getattr(inner, "measured_on", "piece")

    def check(self) -> None:
        self.inner.check()

    def generate(self, request):
        self.job.report(0.85 * (request.index - 1) / self.total, f"clip {request.index} of {self.total}")
        return self.inner.generate(request)

    def render(self, candidate, request, sample_rate: int):
        self.job.check_cancelled()
        return self.inner.render(candidate, request, sample_rate)


def check_backend(backend: str, soundfont: Path | None = None, model: Path | None = None) -> None:
    """Raise (before a job is queued) if ``backend`` cannot run here."""
    from emomusic.session.engines import make_engine

    make_engine(backend, model=model, soundfont=soundfont).check()


def build(job: Job, session_plan, backend: str, *, soundfont: Path | None = None, model: Path | None = None,
          engine=None) -> dict:
    """Build ``session_plan`` into the job's folder; the session folder's files and a zip of it
    become the job's files."""
    from emomusic.session import build_session
    from emomusic.session.engines import make_engine

    inner = engine if engine is not None else make_engine(backend, model=model, soundfont=soundfont)
    wrapped = _ReportingEngine(inner, job, len(session_plan.clips))
    out = job.folder / "session"
    try:
        if _new_api():
            from emomusic.session import BuildSettings

            known = {f.name for f in dataclasses.fields(BuildSettings)}
            wanted = {"backend": backend, "soundfont": None if soundfont is None else str(soundfont),
                      "threads": None}  # torch threads: set once by the server, not per build
            settings = BuildSettings.from_dict({k: v for k, v in wanted.items() if k in known})
            summary = build_session(session_plan, out, settings, engine=wrapped)
        else:
            summary = build_session(session_plan, out, backend=backend, soundfont=soundfont, engine=wrapped,
                                    progress=False, threads=None)
    except EmomusicError:
        job.check_cancelled()  # a cancelled build surfaces as a failed clip: report it as cancelled
        raise
    job.report(0.95, "packing the zip")
    files = {}
    for key, name in (summary.get("files") or {}).items():
        path = out / name
        if path.is_file():
            files[key] = job.add_file(name, path)
    zpath = job.folder / "session.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for p in sorted(out.rglob("*")):
            if p.is_file():
                job.check_cancelled()
                comp = zipfile.ZIP_STORED if p.suffix == ".wav" else zipfile.ZIP_DEFLATED
                z.write(p, Path("session") / p.relative_to(out), compress_type=comp)
    files["zip"] = job.add_file(zpath.name, zpath)
    clips = []
    for c in summary.get("clips") or []:
        clips.append({k: c.get(k) for k in ("index", "title", "phase", "start_s", "duration_s", "target", "measured",
                                            "distance", "within_tolerance", "tempo", "key_name")})
    return {"id": job.id, "kind": "session", "files": files, "clips": clips,
            "duration_s": summary.get("duration_s"), "backend": summary.get("backend"),
            "estimator": summary.get("estimator"), "adherence": summary.get("adherence"),
            "start": session_plan.start.to_dict() if hasattr(session_plan, "start") else None,
            "target": session_plan.target.to_dict() if hasattr(session_plan, "target") else None}

