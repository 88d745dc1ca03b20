from __future__ import annotations

import re

from fastapi import APIRouter, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from ..deps import JobsDep
from ..models import ErrorAnswer, JobState

router = APIRouter(tags=["jobs"])

_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MEDIA = {".mid": "audio/midi", ".wav": "audio/wav", ".abc": "text/vnd.abc; charset=utf-8",
         ".musicxml": "application/vnd.recordare.musicxml+xml", ".svg": "image/svg+xml", ".png": "image/png",
         ".m3u8": "application/vnd.apple.mpegurl", ".json": "application/json", ".md": "text/markdown; charset=utf-8",
         ".zip": "application/zip"}


def _job(jobs, job_id: str, touch: bool = True):
    job = jobs.get(job_id, touch=touch) if _ID.match(job_id) else None
    if job is None:
        raise HTTPException(404, "no such job (it may have expired)")
    return job


@router.get("/api/jobs/{job_id}", summary="A job's state, progress and (when done) result", response_model=JobState,
            responses={404: {"model": ErrorAnswer}})
def job_state(job_id: str, jobs: JobsDep) -> dict:
    return _job(jobs, job_id).to_dict()


@router.delete("/api/jobs/{job_id}", summary="Cancel a job (or drop a finished one and its files)")
def cancel_job(job_id: str, jobs: JobsDep) -> dict:
    job = _job(jobs, job_id)
    if job.active:
        jobs.cancel(job, "cancelled by the client")
    else:
        jobs.forget(job)
    return {"id": job.id, "state": job.state}


@router.get("/api/files/{job_id}/{name}", summary="Download a file a job made", response_class=FileResponse)
async def get_file(job_id: str, name: str, jobs: JobsDep):
    """Files are named by the job's answer (``files``); names are not paths."""
    ok = _ID.match(job_id) and _NAME.match(name)
    path = await run_in_threadpool(jobs.file, job_id, name) if ok else None
    if path is None:
        raise HTTPException(404, "no such file (it may have expired)")
    return FileResponse(path, media_type=MEDIA.get(path.suffix, "application/octet-stream"), filename=name)
