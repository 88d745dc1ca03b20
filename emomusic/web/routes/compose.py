from __future__ import annotations

from functools import partial

from fastapi import APIRouter

from ..deps import EnginesDep, JobsDep, run_job
from ..models import ComposeRequest, ErrorAnswer, PieceAnswer

router = APIRouter(tags=["generate"])


@router.post("/api/compose", summary="Compose multi-track piano music for an emotion", response_model=PieceAnswer,
             responses={422: {"model": ErrorAnswer}, 429: {"model": ErrorAnswer}})
async def compose(req: ComposeRequest, jobs: JobsDep, engines: EnginesDep) -> dict:
    """Answers the measured emotion and ``files``: URLs of the MIDI, WAV and MusicXML
    (relative to this server; kept for the server's time-to-live)."""
    emotion = req.emotion()
    engines.check_key(req.key)
    engines.check_form(req.form, req.bars)
    work = partial(_compose, engines, emotion, req)
    return await run_job(jobs, "compose", work)


def _compose(engines, emotion, req: ComposeRequest, job):
    return engines.compose(job, emotion, bars=req.bars, seed=req.seed, tempo=req.tempo, key=req.key, form=req.form)
