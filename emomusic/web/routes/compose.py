from __future__ import annotations

from functools import partial

from fastapi import APIRouter

from ..deps import EnginesDep, JobsDep, run_job
from ..models import ComposeRequest, MelodyRequest

router = APIRouter(tags=["generate"])


@router.post("/api/compose", summary="Compose multi-track piano music for an emotion")
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


@router.post("/api/melody", summary="Write an ABC melody for an emotion")
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
