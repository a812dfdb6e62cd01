"""SessionStore semantics, the same for Redis and the embedded store: appends, the state
compare-and-set, trimming, deletion; and the Redis memory of a live GRU4Rec-sized session."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis

from app.events.log import FileEventLog, LoggedEvent
from app.events.snapshot import file_snapshot
from app.sessions.store import EventIdsFull, MemorySessionStore, RedisSessionStore


@pytest.fixture(params=["memory", "redis"])
def store(request, tmp_path: Path):
    if request.param == "memory":
        s = MemorySessionStore(FileEventLog(tmp_path / "log.jsonl"), 60, 4, 60)
    else:
        url = request.getfixturevalue("redis_url")
        s = RedisSessionStore(url, request.getfixturevalue("redis_prefix"), 60, 4, 60)
    return s  # each test closes it inside its own event loop


async def closing(store, body) -> None:
    try:
        await body
    finally:
        await store.close()


def ev(session: str, item: str, event_id: str | None = None) -> LoggedEvent:
    return LoggedEvent(session, item, 1.5, "view", event_id)


def test_append_trim_and_compare_and_set(store) -> None:
    async def run() -> None:
        assert await store.get("s") is None
        assert await store.ingest([ev("s", str(i)) for i in range(6)]) == [True] * 6
        rec = await store.get("s")
        # all six counted, the four most recent kept (max_items=4), oldest first
        assert (rec.n_events, rec.items, rec.last_event) == (6, ["2", "3", "4", "5"], 1.5)
        assert rec.state is None and rec.state_covers == 0
        assert await store.save_state("s", "v1", b"\x00" * 8, 6)
        # a state covering no more items of the same version never replaces it
        assert not await store.save_state("s", "v1", b"\x01" * 8, 5)
        assert not await store.save_state("s", "v1", b"\x01" * 8, 6)
        rec = await store.get("s")
        assert (rec.state, rec.state_version, rec.state_covers) == (b"\x00" * 8, "v1", 6)
        # another model version replaces it whatever it covers (rebuilt after a swap)
        assert await store.save_state("s", "v2", b"\x02" * 8, 6)
        assert (await store.get("s")).state == b"\x02" * 8
        # no state for a session that does not exist (never resurrect a deleted one)
        assert await store.delete("s")
        assert not await store.save_state("s", "v2", b"\x02" * 8, 7)
        assert await store.get("s") is None and not await store.delete("s")

    asyncio.run(closing(store, run()))


def test_duplicate_event_ids_within_and_across_calls(store) -> None:
    async def run() -> None:
        first = await store.ingest([ev("s", "a", "e1"), ev("s", "b", "e1"), ev("s", "c")])
        assert first == [True, False, True]
        assert await store.ingest([ev("t", "a", "e1")]) == [False]
        assert (await store.get("s")).items == ["a", "c"]
        assert await store.get("t") is None

    asyncio.run(closing(store, run()))


def test_redis_memory_of_a_live_gru4rec_session(redis_url: str, redis_prefix: str) -> None:
    """GRU4Rec layers=[100]: a 400-byte state plus five clicks of diginetica-like ids."""
    store = RedisSessionStore(redis_url, redis_prefix, 1800, 50, 60)
    version = "20260101T000000Z-gru4rec-abcdef"

    async def run() -> None:
        await store.ingest([ev("live", str(100_000 + i)) for i in range(5)])
        assert await store.save_state("live", version, bytes(400), 5)
        await store.close()

    asyncio.run(run())
    client = redis.Redis.from_url(redis_url)
    used = sum(
        client.memory_usage(k, samples=0) for k in (store.key("live"), store.state_key("live"))
    )
    assert client.object("encoding", store.key("live")) == b"listpack"
    assert used <= 1024, used
    # the cached state expires at the very millisecond its session does
    expires_at = client.execute_command("PEXPIRETIME", store.key("live"))
    assert expires_at > 0
    assert client.execute_command("PEXPIRETIME", store.state_key("live")) == expires_at


def test_concurrent_calls_each_get_their_own_answer(store) -> None:
    """Concurrent requests share round trips on Redis; every caller still sees its own part."""

    async def run() -> None:
        acks = await asyncio.gather(
            *(store.ingest([ev(f"c{k}", str(i)) for i in range(k + 1)]) for k in range(5))
        )
        assert acks == [[True] * (k + 1) for k in range(5)]
        calls_before = store._gets.calls if isinstance(store, RedisSessionStore) else 0
        recs = await asyncio.gather(*(store.get(f"c{k}") for k in range(5)), store.get("none"))
        assert recs[5] is None
        assert [r.n_events for r in recs[:5]] == [1, 2, 3, 4, 5]
        # max_items=4: c4's five clicks keep the last four
        assert recs[4].items == ["1", "2", "3", "4"] and recs[1].items == ["0", "1"]
        saved = await asyncio.gather(
            *(store.save_state(f"c{k}", "v1", bytes([k]) * 4, k + 1) for k in range(5)),
            store.save_state("none", "v1", b"\x00" * 4, 1),
        )
        assert saved == [True] * 5 + [False]
        assert [(await store.get(f"c{k}")).state for k in range(5)] == [
            bytes([k]) * 4 for k in range(5)
        ]
        if isinstance(store, RedisSessionStore):
            # the six concurrent reads went out in one script call
            assert store._gets.calls == calls_before + 1 + 5

    asyncio.run(closing(store, run()))


# ---- the embedded store's bounds ----------------------------------------------------------------


class _NoLog:
    """An event log that keeps nothing: these tests are about the store's tables in memory."""

    def append(self, events) -> None:
        for _ in events:
            pass

    def close(self) -> None:
        pass


class _Now(float):
    """A clock reading that counts how often it is compared with.

    Every entry a sweep looks at is compared with the time now, whatever the sweep's
    data structure, so the count is the sweep's work, free of the machine's load.
    """

    compared = 0

    def _count(self, other: object, op) -> bool:
        _Now.compared += 1
        return op(float(self), other)

    def __lt__(self, other):
        return self._count(other, float.__lt__)

    def __le__(self, other):
        return self._count(other, float.__le__)

    def __gt__(self, other):
        return self._count(other, float.__gt__)

    def __ge__(self, other):
        return self._count(other, float.__ge__)


class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> _Now:
        return _Now(self.t)


def _fill(store: MemorySessionStore, sessions: int, start: int = 0, with_ids: bool = False):
    """One click of each of ``sessions`` new visits, in batches as the service sends them."""

    async def run() -> None:
        for at in range(start, start + sessions, 1000):
            end = min(at + 1000, start + sessions)
            await store.ingest(
                [ev(f"v{k}", "1", f"e{k}" if with_ids else None) for k in range(at, end)]
            )

    asyncio.run(run())


def test_embedded_store_keeps_at_most_max_sessions_dropping_the_least_recently_clicked() -> None:
    """200k distinct visits into a store capped at 5,000: never more than 5,000 held; the
    visit clicked again is kept, the others go oldest first."""
    store = MemorySessionStore(_NoLog(), 1800, 4, 60, max_sessions=5_000)

    async def run() -> None:
        for at in range(0, 200_000, 1000):
            await store.ingest([ev(f"v{k}", "1") for k in range(at, at + 1000)])
            await store.ingest([ev("regular", str(at))])  # clicks now and then
            assert store.sessions_held <= 5_000
        assert await store.get("v0") is None and await store.get("v190000") is None
        assert (await store.get("v199999")).n_events == 1
        assert (await store.get("regular")).n_events == 200

    asyncio.run(run())


def test_embedded_sweep_work_does_not_grow_with_the_number_of_entries() -> None:
    """A tick of the expiry sweep with 200k sessions and event ids held does the work of one
    with 2k: the comparisons with the clock, counted, not timed."""

    def sweep_work(held: int) -> int:
        clock = _Clock()
        store = MemorySessionStore(
            _NoLog(), 60, 4, 60, clock=clock, max_sessions=10**6, max_event_ids=10**6
        )
        _fill(store, held, with_ids=True)
        clock.t += 30  # a later tick: nothing has expired yet
        _Now.compared = 0
        asyncio.run(store.ingest([ev("one-more", "1", "e-one-more")]))
        return _Now.compared

    assert sweep_work(200_000) <= sweep_work(2_000) + 2


def test_embedded_sweep_drops_expired_entries_a_bounded_number_per_tick() -> None:
    """When 200k visits expire at once, no tick takes them all: each drops a bounded number,
    the following ticks the rest, and an expired visit is gone from the first moment."""
    clock = _Clock()
    store = MemorySessionStore(_NoLog(), 60, 4, 60, clock=clock, max_sessions=10**6)
    _fill(store, 200_000)
    clock.t += 61
    assert asyncio.run(store.get("v5")) is None  # expired, whether swept or not

    ticks = []
    while store.sessions_held > 1:
        _Now.compared = 0
        asyncio.run(store.ingest([ev("ticker", "1")]))
        ticks.append(_Now.compared)
        assert len(ticks) < 10_000, "the sweep never catches up"
    assert max(ticks) <= 2_000, max(ticks)
    assert len(ticks) > 1  # spread over several ticks


def test_embedded_store_refuses_new_event_ids_beyond_its_cap_and_forgets_none(
    tmp_path: Path,
) -> None:
    """Event ids are kept for their whole window: at the cap, an event with a new id is
    refused whole (503), nothing logged, rather than an older id forgotten (its resend
    would then be logged twice). Events without an id, and repeats, still go in."""
    clock = _Clock()
    path = tmp_path / "log.jsonl"
    store = MemorySessionStore(FileEventLog(path), 1800, 4, 60, clock=clock, max_event_ids=3)

    async def run() -> None:
        three = [ev("s", "a", "e1"), ev("s", "b", "e2"), ev("s", "c", "e3")]
        assert await store.ingest(three) == [True] * 3
        with pytest.raises(EventIdsFull) as refused:
            await store.ingest([ev("s", "d"), ev("s", "e", "e4")])
        assert "nothing was recorded" in refused.value.detail
        assert (await store.get("s")).n_events == 3  # the batch left no trace
        assert await store.ingest([ev("s", "f")]) == [True]  # no id to remember
        assert await store.ingest([ev("t", "g", "e1")]) == [False]  # a repeat needs no room
        assert store.event_ids_held == 3
        clock.t += 61  # the first ids' window is over: room again
        assert await store.ingest([ev("s", "h", "e4"), ev("s", "i", "e1")]) == [True, True]

    asyncio.run(closing(store, run()))
    logged = file_snapshot(path).events
    assert logged["item_id"].tolist() == ["a", "b", "c", "f", "h", "i"]
