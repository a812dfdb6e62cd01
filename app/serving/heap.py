"""Keep the cyclic garbage collector off the long-lived heap of a serving process.

A loaded model brings a few hundred thousand long-lived Python objects (the id
maps of the catalog, torch and pandas internals). Requests in flight survive
young collections and get promoted, so under load CPython runs a full
(generation 2) collection every few seconds, and each one walks that whole heap:
its pauses set the tail latency of every endpoint. ``gc.freeze()`` moves
everything alive now into a permanent generation the collector skips; those
objects are still freed by reference counting when dropped (a replaced model
is), only cycles among them would be kept.
"""

from __future__ import annotations

import gc


def freeze_heap() -> int:
    """Collect once, then exempt every surviving object from later collections.

    The model registry calls it after every swap (start-up included); the one
    full collection costs a pause once per swap instead of one every few
    seconds. Returns how many objects are frozen now.
    """
    gc.unfreeze()  # a swap: what the last freeze kept (the old model's cycles) is collectable again
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
