"""Atomic writes: outputs appear whole or not at all.

Write to a temporary file (or folder) beside the target, then rename over it. A failure
or interruption leaves no half-written output behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from emomusic.errors import EmomusicError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_writable_dir(directory: Path) -> None:
    """Raise a clear error if ``directory`` cannot receive a new file."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise EmomusicError(f"cannot write into {directory}: it is a file, not a folder")
    probe = directory
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise EmomusicError(f"cannot write to {directory}: permission denied")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success rename it onto ``target``.

    The temporary name keeps the target's extension (or ``suffix``) so libraries that
    pick a format by extension behave the same.
    """
    target = Path(target)
    if target.exists() and target.is_dir():
        raise EmomusicError(f"cannot write {target}: a folder of that name exists")
    parent = target.parent if str(target.parent) else Path(".")
    check_writable_dir(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix, dir=parent
        )
    except OSError as exc:
        raise EmomusicError(f"cannot write {target}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes 0600 files; give the output the permissions a plain open() would.
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; on success it replaces ``target``."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise EmomusicError(f"cannot write folder {target}: a file of that name exists")
    parent = target.parent if str(target.parent) else Path(".")
    check_writable_dir(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp_path = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=parent))
    except OSError as exc:
        raise EmomusicError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o777 & ~_umask())
        if target.exists():
            old = target.with_name(f".{target.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp_path, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp_path, target)
    except BaseException:
        shutil.rmtree(tmp_path, ignore_errors=True)
        raise


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
