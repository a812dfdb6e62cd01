"""The serving process freezes its long-lived heap (app.gc_policy)."""

from __future__ import annotations

import gc

from app.gc_policy import freeze_heap


class _Node:
    pass


def test_freeze_heap_keeps_live_objects_out_of_collections() -> None:
    try:
        live = _Node()
        frozen = freeze_heap()
        assert frozen == gc.get_freeze_count() and frozen > 0
        # the object alive at the freeze is no longer tracked by any generation
        assert not any(o is live for o in gc.get_objects())
        # garbage made after the freeze is still collected
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        del a, b
        assert gc.collect() >= 2
    finally:
        gc.unfreeze()
