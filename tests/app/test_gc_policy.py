"""The serving process freezes its long-lived heap (app.serving.heap)."""

from __future__ import annotations

import gc

from app.serving.heap import freeze_heap


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


def test_a_second_freeze_releases_cycles_the_first_one_kept() -> None:
    """After a swap the old model's cyclic garbage must not stay frozen for ever."""
    import weakref

    try:
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        probe = weakref.ref(a)
        freeze_heap()  # a and b are alive: frozen
        del a, b  # now cyclic garbage inside the frozen generation
        gc.collect()
        assert probe() is not None  # a plain collection cannot reach it
        freeze_heap()  # what the registry does after a swap
        assert probe() is None
    finally:
        gc.unfreeze()
