"""Helpers shared by the tests (``from helpers import ...``: tests/conftest.py puts this folder
on ``sys.path``).

:func:`load_file` imports a Python file that is not part of the package - a benchmark
(benchmarks/), a script (scripts/), a helper module of the tests - by its path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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
