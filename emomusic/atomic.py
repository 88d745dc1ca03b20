"""Atomic writes: outputs appear whole or not at all.

Write to a temporary file (or folder) beside the target, then rename over it. A failure
or interruption leaves no half-written output behind, and a write that fails because the
disk is full, the file system refuses it or the target is a device reports one line
(:class:`EmomusicError`), never a traceback.

Folders are also locked: :func:`target_lock` takes an exclusive ``fcntl`` lock on a hidden
``.NAME.lock`` file beside the target for as long as a build writes it, so two builds of
the same folder (two CLI runs, two web requests) never share or clobber each other's work;
the second gets a one-line "busy" error at once. Holding the lock also makes the clean-up
of what a killed build left behind safe: :func:`atomic_dir` removes stale
``.NAME.XXXXXXXX.partial`` folders (and ``.NAME.old``) of its target before it starts.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
import threading
from pathlib import Path
from typing import Iterator

from emomusic.errors import EmomusicError

# Below this much free space a failed write is reported as a full disk (libraries such as
# libsndfile report ENOSPC as an unspecific "System error").
_FULL_DISK_BYTES = 1 << 20


def _swap_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK_AT_IMPORT = _swap_umask()  # read once, while the process has one thread


def current_umask() -> int:
    """The process umask, read without changing it (``os.umask`` can only be read by setting
    it, and a file another thread creates in between would be world-writable): Linux shows
    it in /proc/self/status; elsewhere the value at import. For callers that give finished
    files the permissions a normal write would (``0o666 & ~current_umask()``)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _UMASK_AT_IMPORT


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


def check_target(target: str | os.PathLike) -> None:
    """Refuse an existing output that is not a regular file (a device such as /dev/full, a
    pipe, a socket): renaming over it would replace the device with a plain file."""
    target = Path(target)
    try:
        st = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise EmomusicError(f"cannot write {target}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise EmomusicError(f"cannot write {target}: a folder of that name exists")
    if not stat.S_ISREG(st.st_mode):
        raise EmomusicError(f"cannot write {target}: it exists and is not a regular file (a device, pipe or socket)")


def disk_full(path: str | os.PathLike) -> bool:
    """Whether the file system holding ``path`` (or its nearest existing parent) is full."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        st = os.statvfs(probe)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < _FULL_DISK_BYTES


def write_error(target: str | os.PathLike, exc: BaseException) -> EmomusicError | None:
    """The one-line error for a write of ``target`` that failed with ``exc``, or ``None``
    when ``exc`` is not about the file system (a bug, an interrupt: let it through)."""
    if isinstance(exc, EmomusicError) or not isinstance(exc, Exception):
        return None
    if isinstance(exc, OSError) and exc.errno is not None:
        if exc.errno == errno.ENOSPC or (exc.errno in (errno.EIO, errno.EFBIG) and disk_full(Path(target).parent)):
            return EmomusicError(f"cannot write {target}: no space left on device")
        return EmomusicError(f"cannot write {target}: {exc.strerror or os.strerror(exc.errno)}")
    if disk_full(Path(target).parent):
        return EmomusicError(f"cannot write {target}: no space left on device")
    return None


def _parent(target: Path) -> Path:
    return target.parent if str(target.parent) else Path(".")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not valid UTF-8 (surrogate-escaped bytes)
        return False
    return True


def _tmp_affixes(target: Path, suffix: str | None) -> tuple[str, str]:
    """Prefix and suffix of a temporary name beside ``target``; names that are not valid
    UTF-8 get a plain temporary name (libraries such as libsndfile cannot open them),
    the final rename still gives the output the name asked for."""
    suffix = suffix if suffix is not None else target.suffix
    if not _encodable(suffix):
        suffix = ""
    return (f".{target.name}." if _encodable(target.name) else ".emomusic-output."), suffix


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success rename it onto ``target``.

    The temporary name keeps the target's extension (or ``suffix``) so libraries that
    pick a format by extension behave the same. A file-system failure while writing (no
    space left, an I/O error) raises a one-line :class:`EmomusicError`; the temporary file
    is removed in every case.
    """
    target = Path(target)
    check_target(target)
    parent = _parent(target)
    check_writable_dir(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        prefix, suffix = _tmp_affixes(target, suffix)
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=parent)
    except OSError as exc:
        raise EmomusicError(f"cannot write {target}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes 0600 files; give the output the permissions a plain open() would.
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~current_umask())
        check_target(target)  # it may have appeared while we wrote
        os.replace(tmp_path, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        err = write_error(target, exc)
        if err is not None:
            raise err from None
        raise


# -- folder locks ---------------------------------------------------------------------------
_held: dict[str, list] = {}  # lock path -> [owning thread id, depth, fd]
_held_guard = threading.Lock()


def lock_path_for(target: str | os.PathLike) -> Path:
    target = Path(target)
    return _parent(target) / f".{target.name}.lock"


@contextlib.contextmanager
def target_lock(target: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive lock on ``target`` (a folder being built) for the block.

    Another process or thread that asks for the same target gets a one-line "busy"
    :class:`EmomusicError` at once. Re-entrant within one thread, so a builder can hold it
    around its whole run and still use :func:`atomic_dir` inside. The lock dies with its
    process (even on SIGKILL), so a crashed build never blocks the next one; the hidden
    ``.NAME.lock`` file is removed when the lock is released.
    """
    import fcntl

    target = Path(target)
    parent = _parent(target)
    check_writable_dir(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmomusicError(f"cannot write {target}: {exc.strerror or exc}") from None
    lock = lock_path_for(target)
    key = str(lock.resolve())
    me = threading.get_ident()
    with _held_guard:
        entry = _held.get(key)
        if entry is not None and entry[0] == me:
            entry[1] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield lock
        finally:
            with _held_guard:
                _held[key][1] -= 1
        return
    busy = EmomusicError(f"{target} is being written by another emomusic run (lock {lock.name}); "
                         "wait for it to finish or choose another output")
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise EmomusicError(f"cannot lock {target}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise busy from None
        except OSError as exc:
            os.close(fd)
            raise EmomusicError(f"cannot lock {target}: {exc.strerror or exc}") from None
        # The holder before us may have removed the lock file between our open and flock:
        # then we lock a file nobody else sees; open the current one again.
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(lock))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    with _held_guard:
        if key in _held:  # another thread of this process holds it
            os.close(fd)
            raise busy
        _held[key] = [me, 1, fd]
    try:
        yield lock
    finally:
        with _held_guard:
            _held.pop(key, None)
        with contextlib.suppress(OSError):
            os.unlink(lock)  # still holding the lock: no one can be between open and flock on it
        os.close(fd)


def stale_partials(target: str | os.PathLike) -> list[Path]:
    """The ``.NAME.XXXXXXXX.partial`` folders (and ``.NAME.old``) an interrupted build of
    ``target`` left beside it. Only safe to remove while holding :func:`target_lock`."""
    target = Path(target)
    parent = _parent(target)
    pattern = re.compile(rf"\.{re.escape(target.name)}\.[A-Za-z0-9_]{{8}}\.partial")
    try:
        entries = list(parent.iterdir())
    except OSError:
        return []
    return [p for p in entries if (pattern.fullmatch(p.name) or p.name == f".{target.name}.old")
            and p.is_dir() and not p.is_symlink()]


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, merge: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; on success it replaces ``target``.

    The target is locked (:func:`target_lock`) for the whole block, and stale partial
    folders of earlier, killed builds are removed first. With ``merge=True`` an existing
    ``target`` is kept and the new files are renamed into it (replacing same-named
    files) instead of the folder being replaced: for ``-o`` folders a user may already
    keep other files in.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise EmomusicError(f"cannot write folder {target}: a file of that name exists")
    parent = _parent(target)
    check_writable_dir(parent)
    with target_lock(target):
        for stale in stale_partials(target):
            shutil.rmtree(stale, ignore_errors=True)
        try:
            parent.mkdir(parents=True, exist_ok=True)
            tmp_path = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=parent))
        except OSError as exc:
            raise EmomusicError(f"cannot write {target}: {exc.strerror or exc}") from None
        try:
            yield tmp_path
            os.chmod(tmp_path, 0o777 & ~current_umask())
            if merge and target.is_dir():
                for entry in sorted(tmp_path.iterdir()):
                    dest = target / entry.name
                    if dest.is_dir() and not dest.is_symlink():
                        if entry.is_dir():
                            shutil.rmtree(dest)
                        else:
                            raise EmomusicError(f"cannot write {dest}: a folder of that name exists")
                    elif not entry.is_dir():
                        check_target(dest)
                    os.replace(entry, dest)
                shutil.rmtree(tmp_path, ignore_errors=True)
            elif target.exists():
                old = target.with_name(f".{target.name}.old")
                if old.exists():
                    shutil.rmtree(old)
                os.replace(target, old)
                os.replace(tmp_path, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp_path, target)
        except BaseException as exc:
            shutil.rmtree(tmp_path, ignore_errors=True)
            if isinstance(exc, EmomusicError) and str(tmp_path) in str(exc):  # name the folder asked for
                raise EmomusicError(str(exc).replace(str(tmp_path), str(target))) from None
            err = write_error(target, exc)
            if err is not None:
                raise err from None
            raise


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
