"""Jobs: every generation runs in a bounded worker pool, never on the event loop.

A :class:`Job` owns one folder under the server's work directory and a table of the files
it made (name -> path): URLs name a job id (random, unguessable) and a name from that
table, never a path. The :class:`JobManager` bounds the work (``workers`` running, at most
``max_queue`` waiting: one more raises :class:`QueueFull`, HTTP 429), removes a failed or
cancelled job's folder at once, cancels jobs nobody asks about (``abandon_s``) or that run
too long (``max_job_s``), and removes finished jobs ``ttl_s`` after they ended.
"""

from __future__ import annotations

import secrets
import shutil
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from emomusic.errors import EmomusicError

STATES = ("queued", "running", "done", "failed", "cancelled")


class QueueFull(EmomusicError):
    """Every worker is busy and the queue is full."""


class JobCancelled(Exception):
    """Raised inside a job's work when the job was cancelled (client gone, too slow, shutdown)."""


@dataclass
class Job:
    id: str
    kind: str
    folder: Path
    background: bool
    state: str = "queued"
    progress: float = 0.0
    message: str = "waiting for a worker"
    created: float = field(default_factory=time.monotonic)
    started: float | None = None
    finished: float | None = None
    last_seen: float = field(default_factory=time.monotonic)
    result: dict | None = None
    error: str | None = None
    status_code: int = 200
    files: dict[str, Path] = field(default_factory=dict)
    future: Future | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    cancel_reason: str = ""
    producers: dict[str, Callable[[Path], None]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- called from the work function (worker thread) ---------------------------------------
    def check_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise JobCancelled(self.cancel_reason or "cancelled")

    def report(self, progress: float, message: str | None = None) -> None:
        self.check_cancelled()
        self.progress = max(0.0, min(1.0, float(progress)))
        if message is not None:
            self.message = message

    def add_file(self, name: str, path: Path, producer: Callable[[Path], None] | None = None) -> str:
        """Register ``path`` (inside the job folder) under ``name``; returns its URL. With
        ``producer`` the file is written on its first download (``producer(path)``): formats
        few people fetch do not slow the answer down."""
        path = Path(path)
        if not path.resolve().is_relative_to(self.folder.resolve()):
            raise EmomusicError("a job's files live in its folder")
        self.files[name] = path
        if producer is not None:
            self.producers[name] = producer
        return self.url(name)

    def url(self, name: str) -> str:
        return f"/api/files/{self.id}/{name}"

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    def to_dict(self) -> dict:
        d = {"id": self.id, "kind": self.kind, "state": self.state, "progress": round(self.progress, 4),
             "message": self.message}
        if self.state == "done":
            d["result"] = self.result
        if self.error is not None:
            d["error"] = self.error
        return d


class JobManager:
    """A thread pool of ``workers`` plus a queue of ``max_queue``, and the jobs it ran."""

    def __init__(self, root: Path, workers: int = 1, max_queue: int = 8, ttl_s: float = 3600.0,
                 abandon_s: float = 300.0, max_job_s: float = 1800.0, max_kept: int = 256):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.workers = int(workers)
        self.max_queue = int(max_queue)
        self.ttl_s = float(ttl_s)
        self.abandon_s = float(abandon_s)
        self.max_job_s = float(max_job_s)
        self.max_kept = int(max_kept)
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="emomusic-web")
        self._on_demand = threading.BoundedSemaphore(self.workers)  # files made at download: as many at once
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._closed = False

    # -- submitting ------------------------------------------------------------------------------
    def active_count(self) -> int:
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.active)

    def submit(self, kind: str, work: Callable[[Job], dict], *, background: bool = False) -> Job:
        """Queue ``work(job) -> result`` and return the job; raises :class:`QueueFull`."""
        with self._lock:
            if self._closed:
                raise QueueFull("the server is shutting down")
            active = sum(1 for j in self._jobs.values() if j.active)
            if active >= self.workers + self.max_queue:
                raise QueueFull(f"the server is busy ({active} jobs running or waiting); try again in a minute")
            done = sorted((j for j in self._jobs.values() if not j.active), key=lambda j: j.finished or 0.0)
            for old in done[: max(0, len(self._jobs) + 1 - self.max_kept - active)]:
                self._jobs.pop(old.id, None)  # disk stays bounded: the oldest results go first
                shutil.rmtree(old.folder, ignore_errors=True)
            job_id = secrets.token_urlsafe(12)
            folder = self.root / job_id
            folder.mkdir()
            job = Job(job_id, kind, folder, background)
            self._jobs[job_id] = job
        job.future = self._pool.submit(self._run, job, work)
        return job

    def _run(self, job: Job, work: Callable[[Job], dict]) -> None:
        if job.cancel_event.is_set():
            self._end(job, "cancelled", error=job.cancel_reason or "cancelled")
            return
        job.state, job.started, job.message = "running", time.monotonic(), "working"
        try:
            result = work(job)
        except JobCancelled as exc:
            self._end(job, "cancelled", error=f"cancelled: {exc}")
        except EmomusicError as exc:
            self._end(job, "failed", error=self._public(job, str(exc)), status=422)
        except Exception as exc:  # a bug, not bad input: one line, no traceback for the client
            self._end(job, "failed", error=f"internal error ({type(exc).__name__}: {self._public(job, str(exc))})",
                      status=500)
        else:
            job.result = result
            job.progress, job.message = 1.0, "done"
            self._end(job, "done")

    @staticmethod
    def _public(job: Job, text: str) -> str:
        """One line without the server's paths (a message may quote the file it failed on)."""
        for prefix in (str(job.folder.resolve()), str(job.folder)):
            text = text.replace(prefix + "/", "").replace(prefix, "")
        return one_line(text)

    def _end(self, job: Job, state: str, error: str | None = None, status: int = 200) -> None:
        job.error, job.status_code, job.finished = error, status, time.monotonic()
        if state != "done":
            job.files.clear()  # nothing left behind: a failed job's partial files go
            shutil.rmtree(job.folder, ignore_errors=True)
        job.state = state

    # -- reading ---------------------------------------------------------------------------------
    def get(self, job_id: str, touch: bool = True) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is not None and touch:
            job.last_seen = time.monotonic()
        return job

    def file(self, job_id: str, name: str) -> Path | None:
        """The path of a finished job's file, written now if it is made on demand (call
        from a worker thread: that can take a moment)."""
        job = self.get(job_id, touch=False)
        if job is None or job.state != "done":
            return None
        path = job.files.get(name)
        if path is None:
            return None
        producer = job.producers.get(name)
        if producer is not None and not path.is_file():
            with self._on_demand, job.lock:
                if not path.is_file() and job.folder.is_dir():
                    producer(path)
        return path if path.is_file() else None

    # -- ending ------------------------------------------------------------------------------------
    def cancel(self, job: Job, reason: str) -> None:
        if not job.cancel_event.is_set():  # the first reason is the one reported
            job.cancel_reason = reason
            job.cancel_event.set()
        if job.future is not None and job.future.cancel():  # never started
            self._end(job, "cancelled", error=f"cancelled: {reason}")

    def forget(self, job: Job) -> None:
        """Drop a job and its folder now (a one-shot request whose result was sent or failed)."""
        if job.active:
            self.cancel(job, "no longer needed")
            return  # the worker ends it; sweep() removes it after the TTL
        with self._lock:
            self._jobs.pop(job.id, None)
        shutil.rmtree(job.folder, ignore_errors=True)

    def sweep(self, now: float | None = None) -> list[str]:
        """Cancel abandoned or overlong jobs; remove jobs that ended ``ttl_s`` ago. Returns
        the ids removed."""
        now = time.monotonic() if now is None else now
        removed = []
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            if job.active:
                if job.background and now - job.last_seen > self.abandon_s:
                    self.cancel(job, f"nobody asked about it for {self.abandon_s:g} s")
                elif job.started is not None and now - job.started > self.max_job_s:
                    self.cancel(job, f"it ran longer than {self.max_job_s:g} s")
            elif job.finished is not None and now - job.finished > self.ttl_s:
                with self._lock:
                    self._jobs.pop(job.id, None)
                shutil.rmtree(job.folder, ignore_errors=True)
                removed.append(job.id)
        return removed

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            jobs = list(self._jobs.values())
        for job in jobs:
            if job.active:
                self.cancel(job, "the server is shutting down")
        self._pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.root, ignore_errors=True)


def one_line(text: str, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
