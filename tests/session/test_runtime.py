"""Process-wide settings for the caller of a build (emomusic.session.runtime)."""

from __future__ import annotations

import gc
import weakref

from emomusic.session.runtime import frozen_heap


class _Node:
    def __init__(self):
        self.me = self  # a reference cycle: only the cyclic collector frees it


def test_frozen_heap_leaves_old_objects_out_and_puts_them_back():
    before = gc.get_freeze_count()
    old = _Node()
    old_ref = weakref.ref(old)
    with frozen_heap():
        assert gc.get_freeze_count() > before
        new = _Node()
        new_ref = weakref.ref(new)
        del new, old
        gc.collect()
        assert new_ref() is None  # what the block makes is collected as usual
        assert old_ref() is not None  # what existed before is not scanned
    assert gc.get_freeze_count() == before
    gc.collect()
    assert old_ref() is None  # back in the collector's reach


def test_retained_heap_sets_glibc_malloc_and_puts_the_defaults_back(monkeypatch):
    import numpy as np

    from emomusic.session import runtime

    calls = []
    monkeypatch.setattr(runtime, "_mallopt", lambda: (lambda param, value: calls.append((param, value)) or 1))
    with runtime.retained_heap():
        assert calls == list(runtime.RETAINED)
        assert dict(calls)[runtime.M_ARENA_MAX] == 1 and dict(calls)[runtime.M_MMAP_THRESHOLD] == 32 << 20
        calls.clear()
    assert calls == list(runtime.GLIBC_DEFAULTS)
    monkeypatch.setattr(runtime, "_mallopt", lambda: None)  # not glibc: nothing is called, the block runs
    with runtime.retained_heap():
        pass
    monkeypatch.undo()
    with runtime.retained_heap():  # the real thing on this machine: big blocks come and go as usual
        for _ in range(3):
            a = np.ones((1 << 20, 2), np.float32)
            assert float(a.sum()) == 2 * (1 << 20)
            del a
