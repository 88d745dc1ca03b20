"""write_outputs: the early writers run on a helper thread beside the others, and the files,
the summary and the errors are those of running every writer in order."""

from __future__ import annotations

import threading
import time

import pytest

from emomusic.session.timing import Timings
from emomusic.session.writers import WRITERS, Output, Writer, write_outputs


def _out(tmp_path) -> Output:
    return Output(None, [], tmp_path, tmp_path, 8000, [], {}, Timings())


def _writer(key: str, write, early: bool = False) -> Writer:
    return Writer(key, key, write, lambda o: "", early=early)


def _main() -> bool:
    return threading.current_thread() is threading.main_thread()


def test_an_early_writer_runs_beside_the_writers_before_it(tmp_path):
    """The first writer waits for the early one, which can only have run beside it (in order,
    it would come after); its False ("not written") is recorded at its own place."""
    log, ran = [], threading.Event()

    def first(o):
        assert ran.wait(10), "the early writer did not run beside the first one"
        log.append(("first", _main()))
        return True

    def early(o):
        log.append(("early", _main()))
        ran.set()
        return False

    def last(o):
        log.append(("last", _main()))
        return True

    out = _out(tmp_path)
    write_outputs(out, (_writer("a", first), _writer("b", early, early=True), _writer("c", last)))
    assert log == [("early", False), ("first", True), ("last", True)]
    assert out.summary["files"] == {"a": "a", "b": None, "c": "c"}
    assert out.timings["files"] > 0 and "files_cpu" in out.timings


def test_an_error_leaves_nothing_running_and_drops_the_early_writers_not_begun(tmp_path):
    log = []

    def slow(o):
        time.sleep(0.3)
        log.append("slow done")
        return True

    def fails(o):
        raise OSError("disk full")

    writers = (_writer("a", fails), _writer("b", slow, early=True), _writer("c", lambda o: log.append("c") or True, early=True))
    with pytest.raises(OSError, match="disk full"):
        write_outputs(_out(tmp_path), writers)
    assert log == ["slow done"]  # waited for, not left writing into a folder about to be removed
    time.sleep(0.1)
    assert log == ["slow done"]


def test_an_early_writers_error_comes_at_its_turn(tmp_path):
    log = []

    def fails(o):
        raise ValueError("bad plot")

    writers = (_writer("a", lambda o: log.append("a") or True), _writer("b", fails, early=True),
               _writer("c", lambda o: log.append("c") or True))
    with pytest.raises(ValueError, match="bad plot"):
        write_outputs(_out(tmp_path), writers)
    assert log == ["a"]


def test_the_early_writers_need_nothing_session_wav_makes():
    """session.mid and trajectory.png read the plan, the clips' MIDI and results only; the
    README (file list) and session.json (timings) come after everything."""
    early = [w.key for w in WRITERS if w.early]
    assert early == ["session_mid", "trajectory"]
    assert [w.key for w in WRITERS][-2:] == ["readme", "session_json"]
