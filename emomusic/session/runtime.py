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


# glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -2, -3, -8
RETAINED = ((M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, 32 << 20), (M_TRIM_THRESHOLD, 1 << 30), (M_TOP_PAD, 64 << 20))
GLIBC_DEFAULTS = ((M_ARENA_MAX, 0), (M_MMAP_THRESHOLD, 128 << 10), (M_TRIM_THRESHOLD, 128 << 10), (M_TOP_PAD, 128 << 10))


def _mallopt():
    """glibc's ``mallopt`` (ctypes), or None (another C library)."""
    import ctypes

    try:
        fn = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


@contextmanager
def retained_heap() -> Iterator[None]:
    """Inside the block, memory that is freed stays with the process for the next allocation
    (glibc only; elsewhere nothing changes): one malloc arena for all threads, blocks up to
    32 MiB from the heap instead of fresh mmaps, no trimming below 1 GiB, the heap grown 64 MiB
    at a time. A session build allocates and frees clip-sized float arrays (5-11 MB) hundreds of
    times; each fresh mapping costs a page fault per 4 KiB touched: 270 k minor faults and
    3.7 s of system CPU per 15-minute session, 110 k and 2.2 s with this (peak RSS unchanged,
    docs/benchmarks.md "Session speed 3"). After the block glibc's documented defaults are set
    back (the mmap threshold stays fixed at 128 KiB: glibc's sliding threshold cannot be
    restored) and the free heap is trimmed."""
    fn = _mallopt()
    if fn is None:
        yield
        return
    for param, value in RETAINED:
        fn(param, value)
    try:
        yield
    finally:
        for param, value in GLIBC_DEFAULTS:
            fn(param, value)
        import ctypes

        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (AttributeError, OSError):  # pragma: no cover - glibc has it whenever it has mallopt
            pass


__all__ = ["TORCH_BACKENDS", "frozen_heap", "retained_heap", "torch_threads"]
