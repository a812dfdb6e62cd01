"""Group commit: concurrent calls of one kind share a single Redis round trip.

Every round trip costs the event loop two system calls and a pass through the
client library, whatever the command carries; under load that, not Redis, was
the ceiling of the hot endpoints. A ``Coalescer`` collects the requests of
concurrent callers: when none is in flight, a call goes out on the next turn
of the event loop (taking whatever else arrived in the same turn); while one
is in flight, the requests arriving meanwhile wait and go together in the next
one. A lone caller therefore waits for nothing, and under load each round trip
carries as many requests as arrived during the previous one.

Results are handed back per request, in order; a failed round trip fails every
request it carried with the same kind of exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[Sequence[R]]],
        max_items: int = 256,
        in_flight: int = 1,
    ) -> None:
        """``run`` maps the items of all waiting callers to one result per item.

        ``max_items`` bounds one call (a single caller with more items still goes
        alone, whole); ``in_flight`` is how many calls may be outstanding at once.
        """
        self._run = run
        self.max_items = max_items
        self.in_flight = in_flight
        self._waiting: list[tuple[Sequence[T], asyncio.Future[list[R]]]] = []
        self._active = 0  # drainers running
        self._tasks: set[asyncio.Task[None]] = set()  # strong references while they run
        self.calls = 0  # round trips made (for tests and benchmarks)

    async def submit(self, items: Sequence[T]) -> list[R]:
        """One result per item of ``items``, from a call shared with concurrent callers."""
        future: asyncio.Future[list[R]] = asyncio.get_running_loop().create_future()
        self._waiting.append((items, future))
        if self._active < self.in_flight:
            self._active += 1
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    def _take(self) -> list[tuple[Sequence[T], asyncio.Future[list[R]]]]:
        taken, size = 0, 0
        for items, _ in self._waiting:
            if taken and size + len(items) > self.max_items:
                break
            taken += 1
            size += len(items)
        batch, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return batch

    async def _drain(self) -> None:
        try:
            await self._drain_waiting()
        finally:
            # no await between the last look at ``_waiting`` and this: a caller
            # arriving later sees the drainer gone and starts one
            self._active -= 1

    async def _drain_waiting(self) -> None:
        while self._waiting:
            batch = self._take()
            self.calls += 1
            try:
                results = await self._run([item for items, _ in batch for item in items])
            except asyncio.CancelledError:  # the loop is going away: nobody will drain
                for _, future in batch + self._waiting:
                    future.cancel()
                self._waiting = []
                raise
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(_copy(exc))
                continue
            start = 0
            for items, future in batch:
                end = start + len(items)
                if not future.done():  # the caller may have been cancelled meanwhile
                    future.set_result(list(results[start:end]))
                start = end


def _copy(exc: Exception) -> Exception:
    """A fresh exception of the same kind per waiter (one instance raised in many tasks
    would collect all their tracebacks)."""
    try:
        fresh = type(exc)(*exc.args)
    except Exception:
        return exc
    fresh.__cause__ = exc
    return fresh
