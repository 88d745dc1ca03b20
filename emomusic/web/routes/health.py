from __future__ import annotations

from fastapi import APIRouter

from emomusic import __version__

from ..deps import JobsDep, SettingsDep

router = APIRouter(tags=["health"])


@router.get("/api/health", summary="Is the server up, and how busy is it?")
def health(settings: SettingsDep, jobs: JobsDep) -> dict:
    from emomusic.io.engrave import engraver_available

    return {"status": "ok", "version": __version__, "workers": settings.workers, "max_queue": settings.max_queue,
            "active_jobs": jobs.active_count(), "engraver": engraver_available(), "ttl_s": settings.ttl_s}
