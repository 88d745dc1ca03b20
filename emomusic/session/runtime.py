"""Process-wide settings for the *caller* of a build (the CLI, a server worker).

The library never changes them from inside :func:`~emomusic.session.build_session`: in a
server several builds may share the process. The engines' models are small: on a shared
2-core CPU one torch thread composes a clip in about 0.05 s, two threads 4-6x slower
(benchmarks/session.py), so the CLI runs builds with one thread by default.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from emomusic.errors import EmomusicError

TORCH_BACKENDS = frozenset({"symbolic", "melody", "musicgen"})  # the backends whose engines run torch


@contextmanager
def torch_threads(threads: int | None, backend: str | None = None) -> Iterator[None]:
    """torch's intra-op thread count set to ``threads`` inside the block, restored after.
    None, or a backend that does not use torch, leaves torch alone (and unimported)."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise EmomusicError(f"threads must be a whole number >= 1, got {threads}")
    if threads is None or (backend is not None and backend not in TORCH_BACKENDS):
        yield
        return
    try:
        import torch
    except ImportError:  # an install without torch: the torch backends fail on their own
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(old)


# glibc's malloc hands large freed blocks back to the kernel (munmap / trimming the heap) and
# gets fresh zeroed pages for the next one: a build allocates and frees clip-sized arrays
# (10-25 MB) hundreds of times, which cost 1.3-2 s of system CPU (page faults, clearing pages)
KEEP_BELOW = 256 << 20  # blocks up to this size come from (and go back to) malloc's own heap
TRIM_ABOVE = 1 << 30  # the heap is given back to the kernel only when this much of its top is free
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc malloc.h)


def keep_freed_memory() -> bool:
    """For a process that runs one build and exits (the CLI): let glibc's malloc keep freed
    memory for reuse instead of returning it to the kernel (``mallopt`` M_MMAP_THRESHOLD
    256 MiB, M_TRIM_THRESHOLD 1 GiB). Same results, about 1.5 s less system CPU per
    15-minute session, peak memory up to ~150 MB higher. Process-wide and not undone (a
    long-running server keeps the default). True when set; False where the C library is not
    glibc (nothing changed)."""
    import ctypes
    import ctypes.util
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, KEEP_BELOW)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_ABOVE))


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Objects that exist now (imported modules, loaded models) are left out of the cyclic
    garbage collector's full passes inside the block (:func:`gc.freeze`), and put back after
    (:func:`gc.unfreeze`): a build's full collections then scan only what the build made."""
    import gc

    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


__all__ = ["TORCH_BACKENDS", "frozen_heap", "keep_freed_memory", "torch_threads"]
