"""Session-parallel mini-batches (GRU4Rec, ICLR 2016, section 3.1.1), precomputed per run.

B sessions run side by side, one slot each; a slot whose session ends takes
the next session in order and its hidden state restarts from zero. Sessions
are ordered by the time of their first event (``time_sort``), not shuffled,
so the schedule is the same every epoch: it is built once, as index arrays,
and the train loop only slices them (no Python work per event).

Assignment follows the official iterator: when several slots free up at the
same step they take the next sessions in slot order; when the sessions run out
a finished slot is dropped and the mini-batch shrinks (``active``). Sessions
with fewer than two events give no training example and are skipped.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import torch

from training.data.sessions import Sessions


@dataclass(frozen=True)
class Schedule:
    """Step ``t`` feeds ``inputs[t]`` and predicts ``targets[t]`` (item rows, [T, B])."""

    inputs: torch.Tensor  # int64 [T, B]
    targets: torch.Tensor  # int64 [T, B]
    keep: torch.Tensor  # float32 [T, B, 1]: 0 where a slot starts a new session (reset)
    active: torch.Tensor  # bool [T, B]: False once a slot has no session left
    n_full: int  # steps 0 .. n_full - 1 have every slot active

    @property
    def n_steps(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def n_events(self) -> int:
        """Training examples (predicted events) per epoch."""
        return int(self.active.sum())


def session_order(sessions: Sessions, time_sort: bool = True) -> np.ndarray:
    """Row order: by first-event time (stable, so file order breaks ties) or file order."""
    if not time_sort or sessions.times is None:
        return np.arange(sessions.n_sessions)
    starts = sessions.offsets[:-1]
    first = np.where(
        sessions.lengths > 0,
        sessions.times[np.minimum(starts, max(sessions.n_events - 1, 0))],
        np.inf,
    )
    return np.argsort(first, kind="stable")


def build_schedule(
    sessions: Sessions, batch_size: int, time_sort: bool = True, min_active: int = 1
) -> Schedule:
    """Lay out every training example of an epoch on the (step, slot) grid.

    ``min_active`` cuts the tail once fewer slots are active (the official code
    stops at 2 when there are no extra samples, as one row alone has no negative).
    """
    order = session_order(sessions, time_sort)
    order = order[sessions.lengths[order] >= 2]
    n_steps_of = sessions.lengths[order] - 1
    # Greedy slot assignment: the slot that frees first (lowest index on ties) takes
    # the next session. One heap operation per session, once per training run.
    heap = [(0, b) for b in range(batch_size)]
    start = np.empty(len(order), dtype=np.int64)
    slot = np.empty(len(order), dtype=np.int64)
    for k, n in enumerate(n_steps_of.tolist()):
        t, b = heapq.heappop(heap)
        start[k], slot[k] = t, b
        heapq.heappush(heap, (t + n, b))
    n_total = int(n_steps_of.sum())
    horizon = int((start + n_steps_of).max()) if len(order) else 0

    rep = np.repeat(np.arange(len(order)), n_steps_of)
    within = np.arange(n_total) - np.repeat(np.cumsum(n_steps_of) - n_steps_of, n_steps_of)
    step = start[rep] + within
    event = sessions.offsets[order][rep] + within
    inputs = np.zeros((horizon, batch_size), dtype=np.int64)
    targets = np.zeros((horizon, batch_size), dtype=np.int64)
    active = np.zeros((horizon, batch_size), dtype=bool)
    keep = np.ones((horizon, batch_size), dtype=np.float32)
    inputs[step, slot[rep]] = sessions.items[event]
    targets[step, slot[rep]] = sessions.items[event + 1]
    active[step, slot[rep]] = True
    keep[start, slot] = 0.0

    counts = active.sum(axis=1)
    enough = np.flatnonzero(counts < max(min_active, 1))
    horizon = int(enough[0]) if len(enough) else horizon
    full = np.flatnonzero(counts[:horizon] < batch_size)
    n_full = int(full[0]) if len(full) else horizon
    return Schedule(
        inputs=torch.from_numpy(inputs[:horizon]),
        targets=torch.from_numpy(targets[:horizon]),
        keep=torch.from_numpy(keep[:horizon]).unsqueeze(2),
        active=torch.from_numpy(active[:horizon]),
        n_full=n_full,
    )
