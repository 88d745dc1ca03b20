"""Where a build's time goes: wall-clock and CPU seconds per stage, from any thread.

:class:`Timings` is the ``timings`` dict a build records in ``session.json``
(``timings_s``): per stage the wall-clock seconds (``generate``, ``render``, ...) and the
CPU seconds of the thread that did the work (``generate_cpu``, ``render_cpu``, ...;
:func:`time.thread_time`). Stages that run on worker threads add up over the workers, so
their wall seconds may exceed the build's; the CPU seconds are the honest number on a
shared machine (waiting for a core or for the GIL is not counted). Updates are locked:
worker threads add to the same stages.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

CPU_SUFFIX = "_cpu"


class Timings(dict):
    """A dict of stage -> seconds with a thread-safe :meth:`stage` timer."""

    def __init__(self, *stages: str):
        super().__init__()
        self._lock = threading.Lock()
        for s in stages:
            self[s] = 0.0
            self[s + CPU_SUFFIX] = 0.0

    def add(self, stage: str, wall: float, cpu: float | None = None) -> None:
        with self._lock:
            self[stage] = self.get(stage, 0.0) + wall
            if cpu is not None:
                self[stage + CPU_SUFFIX] = self.get(stage + CPU_SUFFIX, 0.0) + cpu

    @contextmanager
    def stage(self, name: str):
        """Time the block: its wall seconds to ``name``, this thread's CPU seconds to ``name_cpu``."""
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0, time.thread_time() - c0)


def add_timing(timings: dict | None, stage: str, wall: float, cpu: float | None = None) -> None:
    """Add to ``timings`` (a :class:`Timings` or a plain dict; None: nothing)."""
    if timings is None:
        return
    if isinstance(timings, Timings):
        timings.add(stage, wall, cpu)
        return
    timings[stage] = timings.get(stage, 0.0) + wall
    if cpu is not None:
        timings[stage + CPU_SUFFIX] = timings.get(stage + CPU_SUFFIX, 0.0) + cpu


@contextmanager
def timed(timings: dict | None, stage: str):
    """:meth:`Timings.stage` for any timings dict (or None)."""
    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        yield
    finally:
        add_timing(timings, stage, time.perf_counter() - t0, time.thread_time() - c0)


__all__ = ["CPU_SUFFIX", "Timings", "add_timing", "timed"]
