"""Stage timers: wall and thread CPU seconds per stage, from several threads at once."""

from __future__ import annotations

import threading
import time

from emomusic.session.timing import Timings, add_timing, timed


def _busy(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def test_cpu_is_counted_and_sleeping_is_not():
    t = Timings("work")
    with t.stage("work"):
        _busy(0.05)
        time.sleep(0.1)  # wall, not CPU
    assert t["work"] >= 0.15
    assert 0.04 <= t["work_cpu"] < 0.1


def test_worker_threads_add_up_without_losing_updates():
    t = Timings("render")

    def work():
        for _ in range(2000):
            t.add("render", 0.001, 0.0005)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert abs(t["render"] - 8.0) < 1e-6 and abs(t["render_cpu"] - 4.0) < 1e-6


def test_plain_dicts_and_none():
    d: dict = {}
    with timed(d, "files"):
        _busy(0.01)
    add_timing(d, "files", 1.0)
    assert d["files"] > 1.0 and d["files_cpu"] > 0.005
    with timed(None, "files"):  # nothing recorded, nothing raised
        pass
