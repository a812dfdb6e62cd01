"""Which model each API process serves: a heartbeat per process, read by the dashboard.

Why: ``CURRENT`` says what every process should serve, but a process that
cannot load a new version keeps serving the old one, and with several workers
and machines an operator wants to see that. Each process writes what it
serves to one Redis hash, ``<prefix>:procs`` (field: the process, value: a
small JSON record), every ``model_poll_seconds``; a record not refreshed for
``STALE_BEATS`` intervals belongs to a process that is gone and is dropped by
the next reader. A process that stops cleanly removes its own record.
Embedded there is one process, and the roster is that process alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import time
from typing import Any

import redis
from redis.exceptions import RedisError

from app.serving.registry import ModelRegistry

log = logging.getLogger(__name__)

#: intervals without a heartbeat after which a process counts as gone
STALE_BEATS = 3


def roster_key(prefix: str) -> str:
    return f"{prefix}:procs"


class Roster:
    def __init__(
        self,
        registry: ModelRegistry,
        client: redis.Redis | None,
        prefix: str,
        interval_seconds: float,
    ) -> None:
        self.registry = registry
        self.client = client
        self.key = roster_key(prefix)
        self.interval = interval_seconds
        self.host = socket.gethostname()
        self.pid = os.getpid()
        # the suffix tells apart two apps in one process (tests) and a pid reused after a restart
        self.process = f"{self.host}:{self.pid}:{secrets.token_hex(3)}"
        self.started = time.time()
        self._task: asyncio.Task[None] | None = None

    def record(self) -> dict[str, Any]:
        """This process as the roster lists it."""
        sm = self.registry.active
        return {
            "process": self.process,
            "host": self.host,
            "pid": self.pid,
            "version": (sm.directory or sm.version) if sm else None,
            "model_error": self.registry.last_error,
            "started": self.started,
            "seen": time.time(),
        }

    def beat(self) -> None:
        if self.client is not None:
            self.client.hset(self.key, self.process, json.dumps(self.record()))

    def read(self) -> list[dict[str, Any]]:
        """Every live process, this one first; records of processes gone are deleted."""
        own = {**self.record(), "this": True}
        if self.client is None:
            return [own]
        now = time.time()
        live, gone = [own], []
        for field, raw in self.client.hgetall(self.key).items():
            name = field.decode()
            if name == self.process:
                continue
            try:
                rec = json.loads(raw)
                fresh = now - float(rec["seen"]) <= STALE_BEATS * self.interval
            except (ValueError, KeyError, TypeError):
                rec, fresh = None, False
            if fresh and rec is not None:
                live.append({**rec, "process": name, "this": False})
            else:
                gone.append(name)
        if gone:
            self.client.hdel(self.key, *gone)
        live[1:] = sorted(live[1:], key=lambda r: (str(r.get("host")), str(r.get("process"))))
        return live

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.beat)
            except RedisError as exc:  # the roster is informative: the service goes on
                log.warning("roster heartbeat failed: %s", exc)
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self.client is not None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        with contextlib.suppress(RedisError):
            await asyncio.to_thread(self.client.hdel, self.key, self.process)  # type: ignore[union-attr]
