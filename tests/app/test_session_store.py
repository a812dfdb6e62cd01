"""SessionStore semantics, the same for Redis and the embedded store: appends, the state
compare-and-set, trimming, deletion; and the Redis memory of a live GRU4Rec-sized session."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis

from app.events.log import FileEventLog, LoggedEvent
from app.sessions.store import MemorySessionStore, RedisSessionStore


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
