"""Typed dependencies of the routes (swapped in tests through ``app.dependency_overrides``)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Callable

from fastapi import Depends, HTTPException, Request

from .config import Settings
from .engines import Engines
from .jobs import Job, JobManager


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_jobs(request: Request) -> JobManager:
    return request.app.state.jobs


def get_engines(request: Request) -> Engines:
    return request.app.state.engines


SettingsDep = Annotated[Settings, Depends(get_settings)]
JobsDep = Annotated[JobManager, Depends(get_jobs)]
EnginesDep = Annotated[Engines, Depends(get_engines)]


async def run_job(jobs: JobManager, kind: str, work: Callable[[Job], dict], keep: bool = True) -> dict:
    """Run ``work`` in the worker pool and wait for it without blocking the event loop.
    A failure becomes an HTTP error with the job's one-line message (its folder is gone);
    ``keep=False`` drops the job (and its files) once the result is in hand."""
    job = jobs.submit(kind, work)
    try:
        await asyncio.wrap_future(job.future)
    except asyncio.CancelledError:
        if job.future.cancelled():  # the job was cancelled before it started (shutdown), not this request
            detail = f"cancelled: {job.cancel_reason or 'by the server'}"
            jobs.forget(job)
            raise HTTPException(status_code=503, detail=detail) from None
        jobs.forget(job)  # the request was cancelled (client gone): stop the work if it has not started
        raise
    if job.state != "done":
        code, detail = (job.status_code if job.state == "failed" else 503), job.error or job.state
        jobs.forget(job)
        raise HTTPException(status_code=code, detail=detail)
    if not keep:
        jobs.forget(job)
    return job.result
