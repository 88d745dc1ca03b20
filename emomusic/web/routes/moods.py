from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

router = APIRouter(tags=["moods"])


@router.get("/api/moods", summary="The mood words and their valence-arousal points")
def moods() -> dict:
    from emomusic.moods import mood_table

    rows = [m.to_dict() for m in mood_table().values()]
    return {"count": len(rows), "moods": rows}


@router.get("/api/presets", summary="The session presets (journeys) installed with emomusic")
async def presets() -> dict:
    from .. import sessions

    items = await run_in_threadpool(sessions.presets)
    return {"count": len(items), "presets": items}
