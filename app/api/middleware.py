"""One pure-ASGI middleware for every request: the body size limit (413) and latency metrics.

Pure ASGI rather than ``BaseHTTPMiddleware``, which would add a task and a
copy per request on the hottest paths.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics import Metrics


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ServiceMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        # (method, route, status) -> its histogram child: ``labels()`` checks and locks
        # on every call, a dictionary lookup does not
        self._latency: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"request body larger than {self.max_body} bytes"
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    await _reply(send, 400, "malformed Content-Length")
                    return
                if int(value) > self.max_body:
                    await _reply(send, 413, too_large)
                    return
        start = time.perf_counter()
        status = {"code": 500}
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:  # a chunked body without Content-Length
                    raise HTTPException(413, too_large)
            return message

        async def tracked_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        finally:
            route: Any = scope.get("route")
            key = (scope["method"], getattr(route, "path", "unmatched"), status["code"])
            child = self._latency.get(key)
            if child is None:
                child = self._latency[key] = self.metrics.latency.labels(*key[:2], str(key[2]))
            child.observe(time.perf_counter() - start)
