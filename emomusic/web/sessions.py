"""Every call the web layer makes into :mod:`emomusic.session`, in one module.

Plans come from :func:`plan_session` with :class:`PlanSettings` fields as overrides (or from a
preset through :func:`load_preset`); builds go through :func:`build_session` with a
:class:`BuildSettings`. Progress comes from ``on_clip``; cancellation is checked there and,
for finer steps, before every candidate the clip engine generates.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from emomusic.emotion import Emotion
from emomusic.errors import EmomusicError

from .jobs import Job

# Backends a request may name: the registry's, less those that need a server-side model path.
NEEDS_MODEL = ("musicgen",)


def web_backends() -> tuple[str, ...]:
    from emomusic.session import BuildSettings

    return tuple(b for b in BuildSettings.backends if b not in NEEDS_MODEL)


# -- presets -------------------------------------------------------------------------------------
def _check_preset_name(name: str) -> str:
    """Only the installed presets by name: a request never names a file."""
    from emomusic.session import preset_names

    names = preset_names()
    if name not in names:
        raise EmomusicError(f"unknown session preset {name!r}; available: {', '.join(names) or 'none installed'}")
    return name


def preset_info(name: str) -> dict:
    """A preset as the page shows it: start, via points and target as emotions, minutes."""
    from emomusic.session import load_preset

    start, target, s = load_preset(_check_preset_name(name))
    return {"name": name, "description": s.description, "start": start.to_dict(), "target": target.to_dict(),
            "via": [v.to_dict() for v in s.via_emotions()], "minutes": s.minutes}


def presets() -> list[dict]:
    from emomusic.session import preset_names

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
    """A :class:`SessionPlan`. ``options`` are :class:`PlanSettings` fields (minutes,
    clip_seconds, seed, path, strategy); None leaves the preset's value or the default."""
    from emomusic.session import load_preset, plan_session

    opts = {k: v for k, v in options.items() if v is not None}
    if via is not None:
        opts["via"] = list(via)
    if preset is not None:
        start, target, settings = load_preset(_check_preset_name(preset), start=start, target=target, **opts)
        return plan_session(start, target, settings)
    if start is None or target is None:
        raise EmomusicError("a session needs a start and a target (or a preset)")
    return plan_session(start, target, **opts)


# -- building ------------------------------------------------------------------------------------
def build_settings(backend: str, soundfont: Path | None = None):
    from emomusic.session import BuildSettings

    if backend not in web_backends():
        raise EmomusicError(f"backend must be one of {', '.join(web_backends())}, got {backend!r}")
    return BuildSettings(backend=backend, soundfont=None if soundfont is None else str(soundfont)).validate()


def check_backend(backend: str, soundfont: Path | None = None) -> None:
    """Raise (before a job is queued) if ``backend`` cannot run here."""
    from emomusic.session.engines import engine_for

    engine_for(build_settings(backend, soundfont)).check()


class _CancellableEngine:
    """A clip engine that stops when the job is cancelled, before each candidate it makes."""

    def __init__(self, inner, job: Job):
        self.inner, self.job = inner, job
        self.name = getattr(inner, "name", "custom")
        self.measured_on = getattr(inner, "measured_on", "piece")

    def check(self) -> None:
        self.inner.check()

    def generate(self, request):
        self.job.check_cancelled()
        return self.inner.generate(request)

    def render(self, candidate, request, sample_rate: int):
        self.job.check_cancelled()
        return self.inner.render(candidate, request, sample_rate)


def build(job: Job, session_plan, backend: str, *, soundfont: Path | None = None, engine=None) -> dict:
    """Build ``session_plan`` into the job's folder; the session folder's files and a zip of it
    become the job's files."""
    from emomusic.session import build_session
    from emomusic.session.engines import engine_for

    settings = build_settings(backend, soundfont)
    inner = engine if engine is not None else engine_for(settings)
    total = len(session_plan.clips)
    job.report(0.0, f"clip 1 of {total}")

    def on_clip(done: int, total: int, result) -> None:
        job.report(0.9 * done / total, f"clip {min(done + 1, total)} of {total}" if done < total else "joining the clips")

    out = job.folder / "session"
    try:
        summary = build_session(session_plan, out, settings, engine=_CancellableEngine(inner, job), on_clip=on_clip)
    except EmomusicError:
        job.check_cancelled()  # a cancel inside a clip surfaces as a failed clip: report it as cancelled
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
    clips = [{k: c.get(k) for k in ("index", "title", "phase", "start_s", "duration_s", "target", "measured", "distance",
                                    "within_tolerance", "tempo", "key_name")} for c in summary.get("clips") or []]
    return {"id": job.id, "kind": "session", "files": files, "clips": clips, "duration_s": summary.get("duration_s"),
            "backend": summary.get("backend"), "estimator": summary.get("estimator"),
            "adherence": summary.get("adherence"), "start": session_plan.start.to_dict(),
            "target": session_plan.target.to_dict()}
