"""Shared fixtures. Tests build their tiny data in code; the few that need the real data
sets are marked ``data`` and skip, with the reason, when ../shared/data is absent."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from emomusic.paths import data_dir

os.environ.setdefault("MPLBACKEND", "Agg")
# tests/helpers.py (load_file: benchmarks, scripts and test helper files by path) is imported as `helpers`
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def shared_data():
    d = data_dir()
    if not (d / "emopia").is_dir():
        pytest.skip(f"real data sets not found at {d} (set EMOMUSIC_DATA to run data tests)")
    return d


@pytest.fixture
def piano_piece():
    """A small two-part piece in C major at 100 BPM built in code."""
    from emomusic.piece import KeySignature, Note, Piece, Tempo, TimeSignature, Track

    melody = [Note(p, i * 1.0, 0.9, 90) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72] * 2)]
    bass = [Note(p, i * 4.0, 3.8, 70) for i, p in enumerate([48, 53, 55, 48])]
    return Piece(
        tracks=[Track("Melody", 0, False, melody), Track("Bass", 32, False, bass)],
        tempos=[Tempo(100.0)],
        keys=[KeySignature(0, "major")],
        time_signatures=[TimeSignature(4, 4)],
        title="fixture",
    )


@pytest.fixture
def unwritable_dir(tmp_path):
    """A folder this process cannot write into. Root ignores permission bits, so as root
    (as in CI) use sysfs, which refuses new files even to root."""
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        yield ro
        ro.chmod(0o700)
        return
    from pathlib import Path

    sys_dir = Path("/sys")
    try:
        probe = sys_dir / "emomusic-probe"
        probe.open("w").close()
    except OSError:
        yield sys_dir
        return
    pytest.skip("no unwritable folder available as root")


@pytest.fixture(scope="session")
def one_torch_thread():
    """torch on one thread for the session's remaining tests, restored at the end."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


HEAVY_MODULES = ("torch", "transformers", "peft", "music21", "matplotlib", "sklearn")


@pytest.fixture
def cli_imports():
    """Run ``emomusic`` argument lists in one fresh interpreter and report what they imported.

    Returns an object with ``codes`` (exit status per argument list), ``imported`` (the set of
    :data:`HEAVY_MODULES` in ``sys.modules`` afterwards), ``stdout`` and ``stderr``. Used to
    check that light commands never import torch and friends."""
    import json
    import subprocess
    import sys
    from types import SimpleNamespace

    def run(*arg_lists):
        lists = [[str(a) for a in args] for args in arg_lists]
        code = (
            "import json, sys\nfrom emomusic.cli import main\ncodes = []\n"
            f"for args in {lists!r}:\n"
            "    try:\n        main(args)\n        codes.append(0)\n"
            "    except SystemExit as e:\n        codes.append(e.code or 0)\n"
            f"print('IMPORTED', json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))\n"
            "print('CODES', json.dumps(codes))\n"
        )
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        tail = dict(line.split(" ", 1) for line in res.stdout.splitlines()[-2:])
        return SimpleNamespace(
            codes=json.loads(tail["CODES"]), imported=set(json.loads(tail["IMPORTED"])), stdout=res.stdout, stderr=res.stderr
        )

    return run
