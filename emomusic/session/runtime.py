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


__all__ = ["TORCH_BACKENDS", "frozen_heap", "torch_threads"]
