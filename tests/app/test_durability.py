"""Durability levels (``NEXTITEM_DURABILITY``): what "acknowledged" promises about the disk.

``always``: the embedded log is fsynced before each batch is acknowledged; with Redis the
ingest call waits for the server's AOF fsync (``WAITAOF``, Redis 7.2+) in the same round
trip, and a server without it is reported once. ``everysec`` (the default): the embedded
log is fsynced within about a second by a background thread. Either way, archive files are
on disk (file and folder) before the stream entries they hold are trimmed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import redis
from redis.exceptions import ResponseError

from app.events.archive import EventArchive
from app.events.log import FileEventLog, LoggedEvent, stream_key
from app.events.snapshot import redis_snapshot
from app.sessions.store import OutcomeUnknown, RedisSessionStore, fsync_confirmed
from app.settings import Settings
from tests.app.support import LiveServer, OwnRedis, item_id, write_tiny_checkpoint


def ev(item: str, event_id: str | None = None) -> LoggedEvent:
    return LoggedEvent("s", item, 1.5, "view", event_id)


@pytest.fixture
def fsyncs(monkeypatch) -> list[str]:
    """The files and folders fsynced, in order, by what their descriptor names."""
    seen: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        real(fd)
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))

    monkeypatch.setattr(os, "fsync", spy)
    return seen


def test_the_level_is_a_setting() -> None:
    assert Settings().durability == "everysec"
    assert Settings(durability="always").durability == "always"
    with pytest.raises(ValueError):
        Settings(durability="never")


# ---- the embedded log -------------------------------------------------------------------------


def test_always_fsyncs_the_embedded_log_before_each_acknowledgement(
    tmp_path: Path, fsyncs: list[str]
) -> None:
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    settings = Settings(model_dir=model_dir, durability="always")
    log = str(settings.resolved_event_log_path.resolve())
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as http:
        assert fsyncs.count(str(model_dir.resolve())) == 1  # the new log's folder entry
        for n, body in enumerate(
            [
                {"session_id": "s", "item_id": item_id(1)},  # the fast path
                {"session_id": "s", "item_id": item_id(2), "event_type": "cart"},
            ],
            start=1,
        ):
            assert http.post("/v1/events", json=body).status_code == 202
            assert fsyncs.count(log) == n  # on disk when the 202 came
        batch = {"events": [{"session_id": "t", "item_id": item_id(i)} for i in range(5)]}
        assert http.post("/v1/events/batch", json=batch).status_code == 202
        assert fsyncs.count(log) == 3  # one per acknowledged batch, not per event


def test_everysec_fsyncs_the_embedded_log_within_about_a_second(
    tmp_path: Path, fsyncs: list[str]
) -> None:
    path = tmp_path / "log.jsonl"
    log = FileEventLog(path, sync_every=0.2)
    try:
        log.append([ev("1")])
        assert fsyncs.count(str(path)) == 0  # not on the acknowledgement's path
        deadline = time.monotonic() + 5
        while fsyncs.count(str(path)) == 0:
            assert time.monotonic() < deadline, "no fsync within 5 s"
            time.sleep(0.05)
        time.sleep(0.6)
        assert fsyncs.count(str(path)) == 1  # nothing written since: nothing to sync
    finally:
        log.close()


def test_everysec_is_what_the_service_runs_embedded(tmp_path: Path, fsyncs: list[str]) -> None:
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    settings = Settings(model_dir=model_dir)
    log = str(settings.resolved_event_log_path.resolve())
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as http:
        assert http.post("/v1/events", json={"session_id": "s", "item_id": 7}).status_code == 202
        deadline = time.monotonic() + 5
        while log not in fsyncs:
            assert time.monotonic() < deadline, "the log was not fsynced within 5 s"
            time.sleep(0.05)


# ---- Redis ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ([1, 0], True),
        ([0, 0], False),
        (ResponseError("ERR unknown command 'WAITAOF', with args beginning with: "), None),
        (
            ResponseError(
                "WAITAOF cannot be used when numlocal is set but appendonly is disabled."
            ),
            None,
        ),
    ],
)
def test_waitaof_replies(reply: Any, expected: bool | None) -> None:
    assert fsync_confirmed(reply) is expected


class FakePipeline:
    """What ``RedisSessionStore`` sends under ``always``, answered as a Redis 7.2 would."""

    def __init__(self, owner: FakeWriter) -> None:
        self.owner = owner
        self.commands: list[tuple[Any, ...]] = []

    async def __aenter__(self) -> FakePipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> None:
        self.commands.append(("EVALSHA", sha))

    def execute_command(self, *args: Any) -> None:
        self.commands.append(args)

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        self.owner.sent.append(self.commands)
        return [[1], self.owner.waitaof_reply]


class FakeWriter:
    def __init__(self, waitaof_reply: Any) -> None:
        self.waitaof_reply = waitaof_reply
        self.sent: list[list[tuple[Any, ...]]] = []

    async def aclose(self) -> None:
        return None

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        assert transaction is False  # one round trip, not a MULTI
        return FakePipeline(self)


@pytest.mark.parametrize(("local", "acked"), [(1, True), (0, False)])
def test_always_waits_for_the_aof_in_the_same_round_trip(local: int, acked: bool) -> None:
    async def run() -> list[bool]:
        store = RedisSessionStore(
            "redis://127.0.0.1:1/0", "p", 60, 50, 60, timeout_seconds=0.5, durability="always"
        )
        fake = FakeWriter([local, 0])
        store.writer = fake  # type: ignore[assignment]
        try:
            return await store.ingest([ev("1")])
        finally:
            sent = fake.sent
            await store.close()
            assert all(cmds[0][0] == "EVALSHA" for cmds in sent)
            assert all(cmds[1] == ("WAITAOF", 1, 0, 400) for cmds in sent)
            assert len(sent) == (1 if acked else 2)  # an unconfirmed try is tried once more

    if acked:
        assert asyncio.run(run()) == [True]
    else:
        with pytest.raises(OutcomeUnknown, match="WAITAOF") as unknown:
            asyncio.run(run())
        assert "may or may not" in unknown.value.detail  # what the 503 tells the client


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")
def test_always_on_a_redis_without_waitaof_acknowledges_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A server of this test (the shared one is never reconfigured), with the AOF on."""
    server = OwnRedis(tmp_path, "--appendonly", "yes", "--appendfsync", "everysec").start()
    url, client = server.url, server.client
    try:
        version = tuple(int(x) for x in client.info("server")["redis_version"].split(".")[:2])
        if version >= (7, 2):
            pytest.skip("this redis-server has WAITAOF; the fake above covers its answers")

        async def run() -> list[list[bool]]:
            store = RedisSessionStore(url, "p", 60, 50, 60, durability="always")
            try:
                return [await store.ingest([ev(str(i))]) for i in range(3)]
            finally:
                await store.close()

        with caplog.at_level(logging.WARNING, logger="app.sessions.store"):
            assert asyncio.run(run()) == [[True]] * 3
        warned = [r for r in caplog.records if "WAITAOF" in r.getMessage()]
        assert len(warned) == 1 and "appendfsync" in warned[0].getMessage()
        assert client.xlen(stream_key("p")) == 3
    finally:
        server.kill()


# ---- the archive ------------------------------------------------------------------------------


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def test_archive_files_are_on_disk_before_the_stream_is_trimmed(
    tmp_path: Path, client: redis.Redis, redis_prefix: str, fsyncs: list[str], monkeypatch
) -> None:
    key = stream_key(redis_prefix)
    for i in range(5):
        client.xadd(key, {"session": "s", "item": str(i), "ts": "1.0", "type": "view"})
    steps: list[str] = []
    real_xtrim = client.xtrim

    def xtrim(*args: Any, **kwargs: Any) -> Any:
        steps.extend(fsyncs)
        steps.append("xtrim")
        return real_xtrim(*args, **kwargs)

    monkeypatch.setattr(client, "xtrim", xtrim)
    folder = tmp_path / "event-archive"
    snap = redis_snapshot(client, redis_prefix, EventArchive(folder))
    assert len(snap) == 5 and client.xlen(key) == 0
    (archived,) = EventArchive(folder).files()
    assert len(pd.read_parquet(archived)) == 5
    assert steps[-1] == "xtrim"
    synced = steps[:-1]
    # the file (written under a temporary name, then renamed) and then its folder
    assert any(Path(p).parent == folder.resolve() and p != str(folder.resolve()) for p in synced)
    assert synced[-1] == str(folder.resolve())
