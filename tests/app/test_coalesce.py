"""Group commit (app.sessions.group_commit): concurrent callers share calls, each gets theirs."""

from __future__ import annotations

import asyncio

import pytest

from app.sessions.group_commit import Coalescer
from app.sessions.store import StoreUnavailable


class Doubler:
    """A fake round trip: doubles every item, records each call's items, and can be held."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, items: list[int]) -> list[int]:
        self.calls.append(items)
        await self.gate.wait()
        if -1 in items:
            raise StoreUnavailable("down")
        return [2 * i for i in items]


def test_a_lone_caller_goes_at_once_and_gets_its_results() -> None:
    async def run() -> None:
        run_ = Doubler()
        c = Coalescer(run_)
        assert await c.submit([1, 2, 3]) == [2, 4, 6]
        assert await c.submit([5]) == [10]
        assert run_.calls == [[1, 2, 3], [5]]

    asyncio.run(run())


def test_callers_arriving_during_a_call_share_the_next_one() -> None:
    async def run() -> None:
        run_ = Doubler()
        c = Coalescer(run_, max_items=4)
        run_.gate.clear()
        first = asyncio.ensure_future(c.submit([1]))
        await asyncio.sleep(0)  # the first call goes out and waits at the gate
        await asyncio.sleep(0)
        later = [asyncio.ensure_future(c.submit([10 * k, 10 * k + 1])) for k in range(1, 4)]
        await asyncio.sleep(0)
        run_.gate.set()
        assert await first == [2]
        assert await asyncio.gather(*later) == [[20, 22], [40, 42], [60, 62]]
        # three waiting callers of two items each, at most four items a call: 2 + 1
        assert run_.calls == [[1], [10, 11, 20, 21], [30, 31]]
        assert c.calls == 3

    asyncio.run(run())


def test_a_caller_larger_than_max_items_goes_whole_and_alone() -> None:
    async def run() -> None:
        run_ = Doubler()
        c = Coalescer(run_, max_items=2)
        got = await asyncio.gather(c.submit([1, 2, 3]), c.submit([4]))
        assert got == [[2, 4, 6], [8]]
        assert run_.calls == [[1, 2, 3], [4]]

    asyncio.run(run())


def test_a_failed_call_fails_only_the_callers_it_carried() -> None:
    async def run() -> None:
        run_ = Doubler()
        c = Coalescer(run_, max_items=2)
        got = await asyncio.gather(
            c.submit([7, -1]), c.submit([3]), c.submit([4]), return_exceptions=True
        )
        assert isinstance(got[0], StoreUnavailable) and str(got[0]) == "down"
        # the second call carried the other two callers and succeeded
        assert got[1:] == [[6], [8]] and run_.calls == [[7, -1], [3, 4]]
        failed = await asyncio.gather(c.submit([-1]), c.submit([-1]), return_exceptions=True)
        # each waiter gets its own exception object
        assert all(isinstance(e, StoreUnavailable) for e in failed)
        assert failed[0] is not failed[1]

    asyncio.run(run())


def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    async def run() -> None:
        run_ = Doubler()
        c = Coalescer(run_)
        run_.gate.clear()
        first = asyncio.ensure_future(c.submit([1]))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        gone = asyncio.ensure_future(c.submit([2]))
        kept = asyncio.ensure_future(c.submit([3]))
        await asyncio.sleep(0)
        gone.cancel()
        run_.gate.set()
        assert await first == [2] and await kept == [6]
        with pytest.raises(asyncio.CancelledError):
            await gone
        # a new caller after everything drained starts a new call
        assert await c.submit([4]) == [8]

    asyncio.run(run())
