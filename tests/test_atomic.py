
import pytest

from emomusic.atomic import atomic_dir, atomic_path, write_text_atomic
from emomusic.errors import EmomusicError


def test_atomic_path_success_and_failure(tmp_path):
    target = tmp_path / "out.mid"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".mid" and tmp.parent == tmp_path
        tmp.write_bytes(b"abc")
        assert not target.exists()
    assert target.read_bytes() == b"abc"

    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "fail.mid") as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mid"]


def test_atomic_dir_replaces_whole(tmp_path):
    target = tmp_path / "session"
    with atomic_dir(target) as d:
        (d / "a.txt").write_text("1")
    assert (target / "a.txt").read_text() == "1"
    with pytest.raises(ValueError):
        with atomic_dir(target) as d:
            (d / "b.txt").write_text("2")
            raise ValueError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["session"]
    assert not (target / "b.txt").exists()


def test_unwritable_dir(unwritable_dir):
    d = unwritable_dir
    with pytest.raises(EmomusicError) as exc:
        write_text_atomic(f"{d}/x.txt", "no")
    assert "cannot write" in str(exc.value)


def test_target_is_a_dir_or_parent_is_a_file(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(EmomusicError):
        write_text_atomic(tmp_path / "d", "x")
    (tmp_path / "f").write_text("")
    with pytest.raises(EmomusicError):
        write_text_atomic(tmp_path / "f" / "x.txt", "x")


def test_outputs_get_normal_permissions(tmp_path):
    import stat

    write_text_atomic(tmp_path / "a.txt", "x")
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert mode & 0o044 == 0o044  # readable by group and others (umask 022)
    with atomic_dir(tmp_path / "d") as d:
        (d / "f").write_text("1")
    assert stat.S_IMODE((tmp_path / "d").stat().st_mode) & 0o055 == 0o055


# -- hardening: devices, full disks, locks, stale partial folders --------------------------
import errno  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402

from emomusic import atomic  # noqa: E402


def test_non_regular_targets_are_refused_and_left_alone(tmp_path):
    fifo = tmp_path / "pipe.mid"
    os.mkfifo(fifo)
    with pytest.raises(EmomusicError, match="not a regular file"):
        write_text_atomic(fifo, "x")
    link = tmp_path / "link.mid"  # a link to a device is as bad as the device
    link.symlink_to(fifo)
    with pytest.raises(EmomusicError, match="not a regular file"):
        write_text_atomic(link, "x")
    import stat

    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.mid", "pipe.mid"]


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path):
    with pytest.raises(EmomusicError) as exc:
        with atomic_path(tmp_path / "out.wav") as tmp:
            tmp.write_bytes(b"half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert str(exc.value) == f"cannot write {tmp_path / 'out.wav'}: no space left on device"
    assert list(tmp_path.iterdir()) == []


def test_library_errors_on_a_full_disk_are_reported_as_such(tmp_path, monkeypatch):
    # libsndfile says "System error" when the disk is full: the free space decides.
    class Full:
        f_bavail, f_frsize = 0, 4096

    monkeypatch.setattr(atomic.os, "statvfs", lambda p: Full())
    with pytest.raises(EmomusicError, match="no space left on device"):
        with atomic_path(tmp_path / "out.wav"):
            raise RuntimeError("Error opening 'x.wav': System error.")
    with pytest.raises(EmomusicError, match="no space left on device"):
        with atomic_dir(tmp_path / "folder") as d:
            (d / "a").write_text("1")
            raise RuntimeError("System error")
    assert list(tmp_path.iterdir()) == []


def test_bugs_are_not_disguised_when_there_is_space(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with atomic_path(tmp_path / "out.mid"):
            raise ZeroDivisionError
    assert list(tmp_path.iterdir()) == []


def test_names_that_are_not_utf8_get_a_safe_temporary_name(tmp_path):
    name = os.fsdecode(b"bad\xff.wav")
    with atomic_path(tmp_path / name) as tmp:
        str(tmp).encode("utf-8")  # libraries that encode strictly (libsndfile) can open it
        assert tmp.suffix == ".wav"
        tmp.write_bytes(b"RIFF")
    assert (tmp_path / name).read_bytes() == b"RIFF"


def test_merge_keeps_other_files_and_is_all_or_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    (out / "a.mid").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(out, merge=True) as d:
            (d / "a.mid").write_text("new")
            raise RuntimeError("killed half way")
    assert sorted(p.name for p in out.iterdir()) == ["a.mid", "mine.txt"]
    assert (out / "a.mid").read_text() == "old"
    with atomic_dir(out, merge=True) as d:
        (d / "a.mid").write_text("new")
        (d / "b.mid").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["a.mid", "b.mid", "mine.txt"]
    assert (out / "a.mid").read_text() == "new" and (out / "mine.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


_HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from emomusic.atomic import atomic_dir
    with atomic_dir(sys.argv[1]) as d:
        (d / "part.bin").write_bytes(b"x" * 1000)
        print("holding", flush=True)
        time.sleep(60)
""")


def _holder(target):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    p = subprocess.Popen([sys.executable, "-c", _HOLD, str(target)], stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().strip() == "holding"
    return p


def test_a_second_build_of_the_same_folder_is_refused_while_the_first_runs(tmp_path):
    target = tmp_path / "session"
    p = _holder(target)
    try:
        with pytest.raises(EmomusicError, match="being written by another emomusic run"):
            with atomic_dir(target):
                pass
        with atomic_dir(tmp_path / "other") as d:  # other folders are free
            (d / "f").write_text("1")
    finally:
        p.kill()
        p.wait()


def test_sigkill_leftovers_are_cleaned_by_the_next_build(tmp_path):
    target = tmp_path / "session"
    p = _holder(target)
    p.kill()  # SIGKILL: no clean-up ran
    p.wait()
    left = sorted(x.name for x in tmp_path.iterdir())
    assert any(n.startswith(".session.") and n.endswith(".partial") for n in left), left
    # a partial of another target whose name starts the same is not touched
    other = tmp_path / ".session.b.abcdefgh.partial"
    other.mkdir()
    (tmp_path / ".session.old").mkdir()
    with atomic_dir(target) as d:
        (d / "ok").write_text("1")
    assert sorted(x.name for x in tmp_path.iterdir()) == [".session.b.abcdefgh.partial", "session"]
    assert (target / "ok").read_text() == "1"


def test_lock_is_reentrant_in_one_thread_and_exclusive_across_threads(tmp_path):
    import threading

    target = tmp_path / "out"
    seen = []
    with atomic.target_lock(target):
        with atomic_dir(target) as d:  # the builder holds the lock around its whole run
            (d / "f").write_text("1")

        def other():
            try:
                with atomic.target_lock(target):
                    seen.append("got it")
            except EmomusicError as exc:
                seen.append(str(exc))

        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert "being written by another" in seen[0]
    assert not atomic.lock_path_for(target).exists()  # released and removed
    with atomic.target_lock(target):
        assert atomic.lock_path_for(target).exists()


def test_umask_is_read_without_changing_it(monkeypatch):
    """os.umask can only be read by setting it; a file created by another thread in between
    would get 0666. The umask is read from /proc/self/status (or the value at import)."""
    import os

    from emomusic import atomic

    old = os.umask(0o027)
    try:
        calls = []
        monkeypatch.setattr(os, "umask", lambda m: calls.append(m) or 0o022)
        assert atomic.current_umask() == 0o027
        assert calls == []  # never set, not even for a moment
    finally:
        monkeypatch.undo()
        os.umask(old)
