"""``emomusic serve``: the local web app (FastAPI + uvicorn) over the Python API."""

from __future__ import annotations

from pathlib import Path

import click

from emomusic.errors import EmomusicError


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. 0.0.0.0 opens the server to the network (prints a warning).")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to listen on.")
@click.option("--workers", type=int, default=1, show_default=True,
              help="Generation jobs that run at once (one thread and one torch thread each).")
@click.option("--queue", "max_queue", type=int, default=8, show_default=True,
              help="Jobs that may wait for a worker; more get HTTP 429.")
@click.option("--ttl", "ttl_minutes", type=float, default=60.0, show_default=True,
              help="Minutes a result's files are kept after it is made.")
@click.option("--soundfont", type=click.Path(path_type=Path), default=None, help="SoundFont for the WAV files.")
@click.option("--work-dir", type=click.Path(path_type=Path), default=None,
              help="Folder for the jobs' files (default: a new temporary folder).")
def serve(host, port, workers, max_queue, ttl_minutes, soundfont, work_dir):
    """Start the web page and HTTP API on this machine (works offline).

    \b
      emomusic serve            then open http://127.0.0.1:8000
    The API is documented at /docs. Stop with Ctrl+C.
    """
    from emomusic.web.config import Settings

    if soundfont is not None and not soundfont.is_file():
        raise EmomusicError(f"SoundFont not found: {soundfont}")
    if not 0.1 <= ttl_minutes <= 7 * 24 * 60:
        raise EmomusicError(f"--ttl must be 0.1..10080 minutes, got {ttl_minutes:g}")
    settings = Settings(host=host, port=port, workers=workers, max_queue=max_queue, ttl_s=ttl_minutes * 60.0,
                        soundfont=soundfont, work_dir=work_dir)
    import uvicorn

    from emomusic.web.main import create_app

    if settings.public:
        click.echo(f"warning: listening on {host}: anyone who can reach this machine can use the server "
                   "(no login); use the default 127.0.0.1 to keep it local", err=True)
    app = create_app(settings)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"emomusic is serving on http://{shown}:{port}  (API docs: /docs; Ctrl+C stops)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", workers=1)
