"""Fixtures of the web tests: an app per test on a temp work dir, and engines to swap in."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from emomusic.web.config import Settings  # noqa: E402
from emomusic.web.deps import get_engines  # noqa: E402
from emomusic.web.engines import Engines  # noqa: E402
from emomusic.web.main import create_app  # noqa: E402


@pytest.fixture
def make_client(tmp_path):
    """``make_client(engines=None, **settings)`` -> a started TestClient (closed at teardown).
    ``engines`` replaces the app's engines through ``dependency_overrides``."""
    import torch

    threads = torch.get_num_threads()
    clients = []

    def make(engines: Engines | None = None, **kw):
        kw.setdefault("work_dir", tmp_path / f"work{len(clients)}")
        app = create_app(Settings(**kw))
        if engines is not None:
            app.dependency_overrides[get_engines] = lambda: engines
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.__exit__(None, None, None)
    torch.set_num_threads(threads)


@pytest.fixture
def client(make_client):
    return make_client()


def job_dirs(client) -> list:
    """The job folders the server holds now."""
    root = client.app.state.jobs.root
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def wait_job(client, url: str, timeout: float = 60.0) -> dict:
    t0 = time.monotonic()
    while True:
        r = client.get(url)
        assert r.status_code == 200, r.text
        j = r.json()
        if j["state"] not in ("queued", "running"):
            return j
        assert time.monotonic() - t0 < timeout, f"job still {j['state']} after {timeout} s"
        time.sleep(0.1)


class BlockingEngines(Engines):
    """Real engines whose session build waits for ``release`` (queue, abandon and cancel tests);
    its clip generator checks the job's cancel flag while it waits."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()
        self.started = threading.Event()

    def session(self, job, plan, backend):
        self.started.set()
        while not self.release.wait(0.02):
            job.check_cancelled()
        return {"id": job.id, "kind": "session", "files": {}, "clips": []}


@pytest.fixture
def blocking_engines():
    e = BlockingEngines()
    yield e
    e.release.set()


@pytest.fixture(name="wait_job")
def _wait_job():
    return wait_job


@pytest.fixture(name="job_dirs")
def _job_dirs():
    return job_dirs
