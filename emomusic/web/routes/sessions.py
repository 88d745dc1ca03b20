from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from emomusic.errors import EmomusicError

from ..config import MAX_SESSION_MINUTES
from ..deps import EnginesDep, JobsDep
from ..models import ErrorAnswer, SessionRequest, SessionStarted, to_emotion

router = APIRouter(tags=["session"])


@router.post("/api/session", status_code=202, summary="Start building a listening session (a job)",
             response_model=SessionStarted, responses={422: {"model": ErrorAnswer}, 429: {"model": ErrorAnswer}})
async def start_session(req: SessionRequest, jobs: JobsDep, engines: EnginesDep) -> dict:
    """Plans the journey (start, via points, target, or a preset from ``GET /api/presets``)
    and queues the build; answers the job id. Poll ``GET /api/jobs/{id}`` for progress; a
    job nobody polls for a while is cancelled. HTTP 429 when the queue is full."""
    start, target = to_emotion(req.start), to_emotion(req.target)
    via = None if req.via is None else [to_emotion(v) for v in req.via]
    plan = await run_in_threadpool(engines.session_plan, start, target, via, preset=req.preset, **req.plan_options())
    if plan.minutes > MAX_SESSION_MINUTES:
        raise EmomusicError(f"sessions here are at most {MAX_SESSION_MINUTES:g} minutes, this one is {plan.minutes:g}")
    await run_in_threadpool(engines.check_backend, req.backend)
    job = jobs.submit("session", lambda job: engines.session(job, plan, req.backend), background=True)
    return {"id": job.id, "state": job.state, "url": f"/api/jobs/{job.id}", "clips": len(plan.clips),
            "minutes": plan.minutes,
            "plan": [{"index": c.index, "start_s": c.start_s, "duration_s": c.duration_s,
                      "target": c.emotion.to_dict(), "phase": c.phase} for c in plan.clips]}
