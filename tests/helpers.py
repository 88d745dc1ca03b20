"""Helpers shared by the tests (``from helpers import ...``: tests/conftest.py puts this folder
on ``sys.path``).

:func:`load_file` imports a Python file that is not part of the package - a benchmark
(benchmarks/), a script (scripts/), a helper module of the tests - by its path.
:func:`chord_piece` builds a small piece in a clear key (tests/test_attributes.py, tests/test_modes.py).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from emomusic.piece import Piece

REPO = Path(__file__).resolve().parent.parent


def load_file(relpath: str | Path) -> ModuleType:
    """The module in ``relpath`` (relative to the repository root, e.g. ``benchmarks/compose.py``),
    imported once per test session: later calls return the same module. It is registered in
    ``sys.modules`` under a name made from its path (``benchmarks.compose`` -> ``_file_benchmarks_compose``)
    before it runs, as dataclasses defined in it need."""
    path = (REPO / relpath).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such file to load: {path}")
    name = "_file_" + "_".join(path.relative_to(REPO).with_suffix("").parts)
    mod = sys.modules.get(name)
    if mod is not None and Path(mod.__file__).resolve() == path:
        return mod
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def load_benchmark(stem: str) -> ModuleType:
    """``benchmarks/<stem>.py`` as a module."""
    return load_file(f"benchmarks/{stem}.py")


def load_script(stem: str) -> ModuleType:
    """``scripts/<stem>.py`` as a module."""
    return load_file(f"scripts/{stem}.py")


def checkpoint_with(checkpoint, folder, **entries):
    """A copy of ``checkpoint`` in ``folder`` whose config.json has ``entries`` set."""
    import json
    import shutil

    shutil.copytree(checkpoint, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(entries)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def chord_piece(tonic: int, minor: bool, bpm: float = 100.0, bars: int = 4, velocity: int = 80) -> Piece:
    """I-IV-V-I in ``tonic`` with a scale melody; harmonic minor for minor keys."""
    from emomusic.piece import Note, Piece, Tempo, Track

    third = 3 if minor else 4
    steps = [0, 2, 3, 5, 7, 8, 11, 12] if minor else [0, 2, 4, 5, 7, 9, 11, 12]
    chords = [(0, third, 7), (5, 5 + third, 12), (7, 11, 14), (0, third, 7)]
    notes = []
    for bar in range(bars):
        root = chords[bar % 4]
        for p in root:
            notes.append(Note(48 + tonic + p, bar * 4.0, 4.0, velocity))
        for i in range(4):
            notes.append(Note(60 + tonic + steps[(bar * 4 + i) % 8], bar * 4.0 + i, 1.0, velocity))
    return Piece(tracks=[Track("Piano", 0, False, notes)], tempos=[Tempo(bpm)])


def tiny_emopia(root, per_quadrant=6):
    """EMOPIA's layout: midis/Qk_*.mid and split/{train,val}_clip.csv; clips whose texture
    (register, density, chord size) depends on the quadrant."""
    import numpy as np

    from emomusic.io import write_piece
    from emomusic.piece import Note, Piece, Track

    (root / "midis").mkdir(parents=True)
    (root / "split").mkdir()
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        names = []
        for qi, q in enumerate(("Q1", "Q2", "Q3", "Q4")):
            for i in range(per_quadrant):
                step = 0.5 if q in ("Q1", "Q2") else 1.0
                notes = []
                for k in range(int(32 / step)):
                    root_p = int(rng.integers(55, 72))
                    notes += [Note(p, k * step, step, 80) for p in (root_p, root_p + 4, root_p + 7)[: 1 + qi % 3]]
                    if k % 4 == 0:
                        notes.append(Note(root_p - 24, k * step, 2.0, 70))
                name = f"{q}_{split}{i:02d}_0.mid"
                write_piece(Piece(tracks=[Track("Piano", 0, False, notes)]), root / "midis" / name)
                names.append(name)
        (root / "split" / f"{split}_clip.csv").write_text(",clip_name\n" + "".join(f"{i},{n}\n" for i, n in enumerate(names)))
    return root
