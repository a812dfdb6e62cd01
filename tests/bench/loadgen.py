"""A small closed-loop HTTP load generator that keeps every request's time, latency and outcome.

wrk gives one latency distribution per run. The swap benchmark needs more:
latency before, during and after a model swap, which model answered each
request, and the exact set of events the service acknowledged (to compare with
the event log after the API process was killed). So each of ``connections``
virtual visitors replays real visits over one keep-alive HTTP/1.1 connection:
post a click (with a unique ``event_id``), ask for recommendations, next click.
A click whose request fails is sent again with the same ``event_id`` until the
service acknowledges it, as a shop's client should; the service accepts a
repeated id once.

Run as ``python -m tests.bench.loadgen SPEC.json OUT.npz`` (``tests.bench.swap`` does);
the spec names the URL, duration, connections and the visits to replay.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_VERSION = re.compile(rb'"model_version":"([^"]*)"')
KINDS = ("event", "rec")


@dataclass
class Log:
    start: list[float] = field(default_factory=list)  # wall-clock time (Unix seconds)
    latency: list[float] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)  # index into KINDS
    status: list[int] = field(default_factory=list)  # 0 = no answer (connection failed)
    version: list[int] = field(default_factory=list)  # index into versions, -1 = none
    versions: dict[bytes, int] = field(default_factory=dict)
    acked: list[str] = field(default_factory=list)

    def add(self, start: float, latency: float, kind: int, status: int, body: bytes) -> None:
        self.start.append(start)
        self.latency.append(latency)
        self.kind.append(kind)
        self.status.append(status)
        v = -1
        if kind == 1 and status == 200:
            m = _VERSION.search(body)
            if m:
                v = self.versions.setdefault(m.group(1), len(self.versions))
        self.version.append(v)


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        assert self.reader is not None
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def drop(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def visitor(slot: int, url: str, visits: list[list[str]], deadline: float, log: Log) -> None:
    host, port = url.removeprefix("http://").split(":")
    conn = Connection(host, int(port))
    n = 0
    while time.perf_counter() < deadline:
        clicks = visits[(slot + n * 997) % len(visits)]
        session = f"lg{slot}-{n}"
        n += 1
        for j, item in enumerate(clicks):
            event_id = f"{session}-{j}"
            body = json.dumps({"session_id": session, "item_id": item, "event_id": event_id})
            while True:  # a click is sent until the service has it
                if time.perf_counter() >= deadline:
                    return
                status, _ = await _timed(conn, "POST", "/v1/events", body.encode(), 0, log)
                if status == 202:
                    log.acked.append(event_id)
                    break
                await asyncio.sleep(0.05)
            path = f"/v1/sessions/{session}/recommendations?n=20"
            await _timed(conn, "GET", path, b"", 1, log)


async def _timed(
    conn: Connection, method: str, path: str, body: bytes, kind: int, log: Log
) -> tuple[int, bytes]:
    wall, start = time.time(), time.perf_counter()
    try:
        status, answer = await conn.request(method, path, body)
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
        conn.drop()
        status, answer = 0, b""
    log.add(wall, time.perf_counter() - start, kind, status, answer)
    return status, answer


async def run(url: str, visits: list[list[str]], seconds: float, connections: int) -> Log:
    log = Log()
    deadline = time.perf_counter() + seconds
    await asyncio.gather(*(visitor(i, url, visits, deadline, log) for i in range(connections)))
    return log


def save(log: Log, path: Path) -> None:
    names = sorted(log.versions, key=log.versions.get)
    np.savez(
        path,
        start=np.asarray(log.start),
        latency=np.asarray(log.latency),
        kind=np.asarray(log.kind, np.int8),
        status=np.asarray(log.status, np.int16),
        version=np.asarray(log.version, np.int16),
        versions=np.asarray([v.decode() for v in names]),
        acked=np.asarray(log.acked),
    )


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    log = asyncio.run(run(spec["url"], spec["visits"], spec["seconds"], spec["connections"]))
    save(log, Path(sys.argv[2]))


if __name__ == "__main__":
    main()
