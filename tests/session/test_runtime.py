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
