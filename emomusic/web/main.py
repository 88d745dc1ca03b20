"""``create_app(settings)``: the emomusic web app (FastAPI)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import logging
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from emomusic import __version__
from emomusic.errors import EmomusicError

from .config import Settings
from .engines import Engines
from .jobs import JobManager, QueueFull, one_line
from .routes import analyze, compose, health, jobs, melody, moods, sessions

STATIC = Path(__file__).resolve().parent / "static"


def set_torch_threads(n: int) -> None:
    """torch's intra-op threads are process-wide and OpenMP threads spin-wait: set them once,
    before any worker runs (each worker then uses ``n``)."""
    if importlib.util.find_spec("torch") is None:  # pragma: no cover - torch is a dependency
        return
    import torch

    torch.set_num_threads(int(n))


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = list(err.get("loc", ()))
        if loc and loc[0] in ("body", "query", "path", "header"):  # where, not which field
            loc = loc[1:]
        loc = ".".join(str(x) for x in loc)
        msg = str(err.get("msg", "invalid value"))
        parts.append(f"{loc}: {msg}" if loc else msg)
    return one_line("; ".join(parts) or "invalid request")


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (HTTP 413) before they are parsed or spooled."""

    class TooLarge(BaseException):
        """A BaseException, so no body parser turns it into its own 400 on the way out."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, int(limit)

    async def _refuse(self, send) -> None:
        body = json.dumps({"detail": f"the request is larger than {self.limit // 2**20} MB"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self._refuse(send)
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise BodyLimit.TooLarge()
            return msg

        async def tracking_send(msg):
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyLimit.TooLarge:
            if not started:
                await self._refuse(send)


def create_app(settings: Settings | None = None, engines: Engines | None = None) -> FastAPI:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        set_torch_threads(settings.torch_threads)
        task = asyncio.create_task(_sweeper(app))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.get_running_loop().run_in_executor(None, app.state.jobs.shutdown)

    app = FastAPI(title="emomusic", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Turn an emotion into music: compose, melody, listening sessions, analysis. "
                              "Every generation runs in a bounded worker pool; files are kept for the server's "
                              "time-to-live. Not a medical device.")
    app.state.settings = settings
    app.state.jobs = JobManager(settings.make_jobs_dir(), settings.workers, settings.max_queue, settings.ttl_s,
                                settings.abandon_s, settings.max_job_s, settings.max_kept)
    app.state.engines = engines or Engines(settings.soundfont, settings.compose_checkpoint, settings.melody_checkpoint)

    for r in (health, moods, compose, melody, analyze, sessions, jobs):
        app.include_router(r.router)

    @app.exception_handler(EmomusicError)
    async def _emomusic_error(request: Request, exc: EmomusicError):
        code = 429 if isinstance(exc, QueueFull) else 422
        return JSONResponse({"detail": one_line(str(exc))}, status_code=code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": _validation_message(exc)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return JSONResponse({"detail": one_line(str(exc.detail))}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        return JSONResponse({"detail": f"internal error ({type(exc).__name__})"}, status_code=500)

    # -- the page and the offline API docs ------------------------------------------------------
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    docs_assets = _swagger_assets()
    if docs_assets is not None:
        app.mount("/docs-assets", StaticFiles(directory=docs_assets), name="docs-assets")

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    def docs():
        if docs_assets is None:  # pragma: no cover - swagger-ui-py is a dependency
            return HTMLResponse('<p>The API schema is at <a href="/openapi.json">/openapi.json</a>.</p>')
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="emomusic API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon-32x32.png",
                                   swagger_ui_parameters={"validatorUrl": None})

    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes + 64 * 1024)
    return app


def _swagger_assets() -> Path | None:
    """Swagger UI's files from the swagger-ui-py wheel (Apache-2.0), served by the app: /docs
    works offline."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.origin:
        return None
    d = Path(spec.origin).parent / "static"
    return d if (d / "swagger-ui-bundle.js").is_file() else None


async def _sweeper(app: FastAPI) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(app.state.settings.sweep_s)
        try:
            await loop.run_in_executor(None, app.state.jobs.sweep)
        except Exception:  # pragma: no cover - keep sweeping whatever one pass hit
            logging.getLogger("emomusic.web").exception("job sweep failed")
