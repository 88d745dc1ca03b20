from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, UploadFile

from emomusic.errors import EmomusicError

from ..deps import EnginesDep, JobsDep, SettingsDep, run_job
from ..engines import READ_SUFFIXES
from ..models import AnalyzeAnswer, ErrorAnswer

router = APIRouter(tags=["analyze"])


@router.post("/api/analyze", summary="Measure an uploaded MIDI / ABC / MusicXML file and estimate its emotion",
             response_model=AnalyzeAnswer, responses={413: {"model": ErrorAnswer}, 422: {"model": ErrorAnswer}})
async def analyze(file: UploadFile, jobs: JobsDep, engines: EnginesDep, settings: SettingsDep) -> dict:
    """The format comes from the file name's extension (.mid, .midi, .abc, .musicxml, .xml,
    .mxl); the file may be at most the server's upload limit (5 MB by default). The upload
    is deleted once it has been measured."""
    suffix = Path(file.filename or "").suffix.lower()
    fmt = READ_SUFFIXES.get(suffix)
    if fmt is None:
        raise EmomusicError(f"cannot tell the format of {file.filename!r}; upload a .mid, .abc or .musicxml file")
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise HTTPException(413, f"the file is larger than {settings.max_upload_bytes // 2**20} MB")
    if not data:
        raise EmomusicError("the uploaded file is empty")

    def work(job):
        path = job.folder / f"upload{suffix}"  # a name of ours: the client's never reaches the disk
        path.write_bytes(data)
        try:
            return engines.analyze(job, path, fmt)
        finally:
            path.unlink(missing_ok=True)

    result = await run_job(jobs, "analyze", work, keep=False)
    result["file"] = Path(file.filename or "").name
    return result
