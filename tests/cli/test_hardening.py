"""Bad input that used to escape the promise (issue #13): every case ends in one line
``Error: ...`` with exit status 2 and leaves nothing behind."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import click
import numpy as np
import pytest

from emomusic.cli import cli, main
from emomusic.errors import EmomusicError
from emomusic.io import write_piece
from emomusic.paths import checkpoint_path

HAVE_COMPOSE = (checkpoint_path("compose") / "diffgan" / "model.safetensors").is_file()
HAVE_MELODY = (checkpoint_path("melody") / "model.safetensors").is_file()


def run_main(args, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    err = capsys.readouterr().err
    return exc.value.code, err


def one_line_error(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip() and "%|" not in ln]  # progress bars aside
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "Traceback" not in err and "internal error" not in err, err
    return lines[0]


@pytest.fixture
def sf2(tmp_path):
    from emomusic.sf2 import write_simple_soundfont

    x = 0.8 * np.sin(2 * np.pi * 440 * np.arange(4400) / 44000)
    return write_simple_soundfont(tmp_path / "sine.sf2", [dict(samples=x, sample_rate=44000, root_key=69, loop=(1000, 3000))])


# -- click's own usage errors --------------------------------------------------------------
@pytest.mark.parametrize("args, text", [
    (["compose", "--bad"], "No such option '--bad'"),
    (["compose", "--bars", "x", "-o", "a.mid"], "'x' is not a valid integer"),
    (["render"], "Missing argument"),
    (["nosuch"], "No such command 'nosuch'"),
    (["clip", "--device", "tpu"], "'tpu' is not one of"),
])
def test_usage_errors_are_one_line(args, text, capsys):
    code, err = run_main(args, capsys)
    assert code == 2
    line = one_line_error(err)
    assert text in line and "--help" in line


# -- one seed rule -------------------------------------------------------------------------
@pytest.mark.parametrize("cmd", [
    ["compose"], ["melody"], ["clip"], ["train", "vae"], ["train", "diffgan"], ["train", "baseline"],
    ["train", "melody"], ["train", "musicgen-lora"],
])
@pytest.mark.parametrize("seed", ["-1", str(2**70), "4294967296"])
def test_every_command_has_the_same_seed_rule(cmd, seed, capsys):
    code, err = run_main([*cmd, "--seed", seed], capsys)
    assert code == 2
    assert one_line_error(err) == f"Error: --seed must be in 0..4294967295, got {int(seed)}"


def test_seed_helper():
    from emomusic.validation import SEED_MAX, check_seed

    assert check_seed(0) == 0 and check_seed(SEED_MAX) == SEED_MAX and check_seed(7.0) == 7
    for bad in (-1, SEED_MAX + 1, 2**70, 1.5, "3", None, True, float("nan")):
        with pytest.raises(EmomusicError):
            check_seed(bad)


def test_fraction_helper():
    from emomusic.validation import check_fraction

    assert check_fraction(0, "x") == 0.0 and isinstance(check_fraction(1, "x"), float) and check_fraction(0.25, "x") == 0.25
    for bad in (-0.01, 1.01, "0.5", None, True, float("nan"), float("inf")):
        with pytest.raises(EmomusicError, match="^share must be a number from 0 to 1, got "):
            check_fraction(bad, "share")


def test_clip_api_refuses_a_huge_seed():
    from emomusic.clip.api import generate_clip
    from emomusic.emotion import Emotion

    with pytest.raises(EmomusicError, match="seed must be in"):
        generate_clip(Emotion(0.1, 0.1), model="/nonexistent", seed=2**70)


def test_clean_text():
    from emomusic.validation import clean_text

    assert clean_text("  Wind down  ", "title") == "Wind down"
    for bad in ("two\nlines", "tab\there", "esc\x1b[2J", "line\u2028sep", "bidi\u202eevil"):
        with pytest.raises(EmomusicError, match="control characters"):
            clean_text(bad, "title")
    with pytest.raises(EmomusicError, match="too long"):
        clean_text("x" * 300, "title")


def test_a_preset_description_with_a_newline_is_refused(tmp_path, monkeypatch):
    import json

    from emomusic.session.presets import load_preset

    (tmp_path / "evil.json").write_text(json.dumps({"from": "anxious", "to": "calm",
                                                    "description": "ok\n#EXTINF:-1,injected\nhttp://x"}))
    monkeypatch.setenv("EMOMUSIC_PLAYLISTS", str(tmp_path))
    with pytest.raises(EmomusicError, match="control characters"):
        load_preset("evil")


# -- interrupts and unexpected failures ----------------------------------------------------
def test_ctrl_c_during_shutdown_is_quiet(tmp_path):
    code = ("import atexit, sys, time\n"
            "atexit.register(time.sleep, 20)\n"  # a slow clean-up, as torch's or a pool's can be
            "sys.argv = ['emomusic', 'emotions', '--quadrant', 'Q4']\n"
            "from emomusic.cli import main\n"
            "main()\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline()  # the command ran and printed
    time.sleep(1.5)  # now in the atexit callback
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 130, err
    assert "Exception ignored" not in err and "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_ctrl_c_during_a_command(monkeypatch, capsys):
    @click.command()
    def slow():
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.commands, "slow", slow)
    code, err = run_main(["slow"], capsys)
    assert code == 130 and err.strip() == "Interrupted."


@pytest.mark.parametrize("exc, text", [
    (OSError(errno.EIO, "Input/output error", "/x/y.wav"), "Error: /x/y.wav: Input/output error"),
    (MemoryError(), "Error: out of memory"),
])
def test_machine_failures_are_one_line_exit_2(monkeypatch, capsys, exc, text):
    @click.command()
    def fail():
        raise exc

    monkeypatch.setitem(cli.commands, "fail", fail)
    code, err = run_main(["fail"], capsys)
    assert code == 2 and one_line_error(err).startswith(text)


def test_multi_line_internal_errors_become_one_line(monkeypatch, capsys):
    @click.command()
    def crash():
        raise ValueError("line one\nline two\nline three")

    monkeypatch.delenv("EMOMUSIC_DEBUG", raising=False)
    monkeypatch.setitem(cli.commands, "crash", crash)
    with pytest.raises(SystemExit):
        main(["crash"])
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


# -- outputs: devices, full disks, atomic folders, odd names -------------------------------
@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def _fifo_args(kind, fifo, tmp_path, sf2, piano_piece):
    link = tmp_path / f"out.{ 'wav' if kind in ('render', 'clip') else 'mid'}"
    link.symlink_to(fifo)
    if kind == "compose":
        return ["compose", "--mood", "calm", "--bars", "4", "-o", link]
    if kind == "melody":
        return ["melody", "--mood", "calm", "--bars", "4", "-o", link]
    if kind == "render":
        return ["render", write_piece(piano_piece, tmp_path / "in.mid"), link, "--soundfont", sf2]
    return ["clip", "--model", tmp_path, "--mood", "calm", "-o", link]


@pytest.mark.parametrize("kind", ["compose", "melody", "render", "clip"])
def test_device_like_targets_are_refused_before_any_work(kind, fifo, tmp_path, sf2, piano_piece, capsys):
    if kind == "compose" and not HAVE_COMPOSE or kind == "melody" and not HAVE_MELODY:
        pytest.skip("shipped checkpoint missing")
    import stat

    code, err = run_main(_fifo_args(kind, fifo, tmp_path, sf2, piano_piece), capsys)
    assert code == 2 and "not a regular file" in one_line_error(err)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@pytest.mark.skipif(not HAVE_COMPOSE, reason="shipped compose checkpoint missing")
def test_compose_n_folder_is_all_or_nothing(tmp_path, monkeypatch, capsys):
    import emomusic.io as io

    real = io.write_piece
    calls = []

    def flaky(piece, path, *a, **k):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(piece, path, *a, **k)

    monkeypatch.setattr(io, "write_piece", flaky)
    out = tmp_path / "set"
    code, err = run_main(["compose", "--mood", "tense", "--bars", "4", "--n", "3", "-o", out], capsys)
    assert code == 2 and one_line_error(err) == f"Error: cannot write {out}: no space left on device"
    assert list(tmp_path.iterdir()) == []  # no folder, no partial, no lock
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    calls.clear()
    code, err = run_main(["compose", "--mood", "tense", "--bars", "4", "--n", "3", "-o", out], capsys)
    assert code == 2
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and sorted(p.name for p in tmp_path.iterdir()) == ["set"]
    monkeypatch.setattr(io, "write_piece", real)
    main([str(a) for a in ["compose", "--mood", "tense", "--bars", "4", "--n", "3", "-o", out]])  # success returns
    assert sorted(p.name for p in out.iterdir()) == ["compose_001.mid", "compose_002.mid", "compose_003.mid",
                                                     "notes.txt"]


def test_output_names_that_are_not_utf8(tmp_path, sf2, piano_piece, capsys):
    src = write_piece(piano_piece, tmp_path / os.fsdecode(b"in\xff.mid"))
    out = tmp_path / os.fsdecode(b"out\xfe.wav")
    main([str(a) for a in ["render", src, out, "--soundfont", sf2, "--json"]])  # success returns
    assert out.stat().st_size > 1000
    assert sorted(os.listdir(os.fsencode(tmp_path))) == [b"in\xff.mid", b"out\xfe.wav", b"sine.sf2"]


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs filled to the brim (needs root and permission to mount)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    mnt = tmp_path / "full"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with open(mnt / "fill", "wb", buffering=0) as fh:
            try:
                while True:
                    fh.write(b"\0" * 4096)
            except OSError:
                pass
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_full_disk_is_one_line_for_every_writing_command(full_disk, tmp_path, sf2, piano_piece, capsys):
    src = write_piece(piano_piece, tmp_path / "in.mid")
    cases = [["render", src, full_disk / "r.wav", "--soundfont", sf2]]
    if HAVE_COMPOSE:
        cases += [["compose", "--mood", "calm", "--bars", "4", "-o", full_disk / "c.mid"],
                  ["compose", "--mood", "calm", "--bars", "4", "-o", full_disk / "c.wav", "--soundfont", sf2],
                  ["compose", "--mood", "calm", "--bars", "4", "-o", full_disk / "c.musicxml"],
                  ["compose", "--mood", "calm", "--bars", "4", "--n", "3", "-o", full_disk / "set"]]
    if HAVE_MELODY:
        cases += [["melody", "--mood", "calm", "--bars", "4", "-o", full_disk / "t.abc"],
                  ["melody", "--mood", "calm", "--bars", "4", "-o", full_disk / "t.mid"],
                  ["melody", "--mood", "calm", "--bars", "4", "--n", "2", "-o", full_disk / "tunes"]]
    for args in cases:
        code, err = run_main(args, capsys)
        assert code == 2, (args, err)
        line = one_line_error(err)
        assert "no space left on device" in line.lower(), line
        assert ".partial" not in line
        assert sorted(p.name for p in full_disk.iterdir()) == ["fill"], args


def test_a_closed_pipe_is_quiet():
    p = subprocess.Popen([sys.executable, "-m", "emomusic", "emotions"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    assert p.stdout.readline()
    p.stdout.close()  # `emomusic emotions | head -1`
    err = p.stderr.read()
    assert p.wait(timeout=60) in (0, 1, 141) and err == b"", err  # click exits 1 on EPIPE, quietly
