from __future__ import annotations

from functools import partial

from fastapi import APIRouter

from ..deps import EnginesDep, JobsDep, run_job
from ..models import ErrorAnswer, MelodyRequest, PieceAnswer

router = APIRouter(tags=["generate"])


@router.post("/api/melody", summary="Write an ABC melody for an emotion", response_model=PieceAnswer,
             responses={422: {"model": ErrorAnswer}, 429: {"model": ErrorAnswer}})
async def melody(req: MelodyRequest, jobs: JobsDep, engines: EnginesDep) -> dict:
    """Like /api/compose; ``files`` also has ``abc``, and ``svg`` (sheet music) when the
    engraver (abcm2ps) is installed."""
    emotion = req.emotion()
    engines.check_melody(req.bars, req.meter, req.key, req.tempo)
    engines.check_form(req.form, req.bars)
    work = partial(_melody, engines, emotion, req)
    return await run_job(jobs, "melody", work)


def _melody(engines, emotion, req: MelodyRequest, job):
    return engines.melody(job, emotion, bars=req.bars, seed=req.seed, chords=req.chords, meter=req.meter,
                          key=req.key, tempo=req.tempo, form=req.form)
