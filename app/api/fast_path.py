"""The two hottest requests, ``GET /v1/sessions/{id}/recommendations`` and ``POST
/v1/events``, answered without the framework's per-request machinery when they are plain.

Why: under load both were bound by the interpreter lock, and a large share of
their time went to routing, dependency solving and request parsing, the same
work for every call. This ASGI layer recognises the common requests and calls
the service directly:

- a recommendation request with a printable session id and ``n``,
  ``diversity`` and ``exclude_seen`` each at most once, written as plain
  decimals and ``true``/``false``/``1``/``0``, inside their limits;
- an event posted as ``application/json`` with a Content-Length, whose body
  the route's own schema (``Event``) validates as the route would: the same
  ``json.loads`` and the same pydantic model in the same mode.

Only a call with the shop's API key, when the service requires one, is
answered here. Anything else, however rare (another spelling pydantic would accept, an
unknown or repeated parameter, a value out of range, an invalid event, no
model loaded), goes to the FastAPI route unchanged, with the body it already
read handed on, and the route answers it or gives the canonical 422 or 503.
The fast path accepts a strict subset of what the route accepts and gives the
same answer for it (tests hold both paths equal), so the OpenAPI spec, the
error shapes and the metrics stay the route's.
"""

from __future__ import annotations

import json
import re

from pydantic_core import to_json
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import events
from app.api.recommendations import DIVERSITY_MAX, SESSION_PATH, router
from app.api.shop_key import header_key, key_matches, keys_of
from app.overload import Overloaded
from app.schemas import Event
from app.serving.service import Query, Service
from app.sessions.store import StoreUnavailable

# The routes this path stands in for, named in ``scope`` as routing would (metrics label by them).
_ROUTE = next(r for r in router.routes if r.path == SESSION_PATH)
_EVENTS_PATH = "/v1/events"
_EVENT_ROUTE = next(r for r in events.router.routes if r.path == _EVENTS_PATH)
# An event is a few hundred bytes; larger bodies (and chunked ones) take the route.
_EVENT_BODY_MAX = 4096
# The route's own rules: a path segment of 1 to 128 characters, no control characters.
_PLAIN_PATH = re.compile(r"/v1/sessions/([^/\x00-\x1f\x7f]{1,128})/recommendations")
_INT = re.compile(rb"[0-9]{1,4}")
_FLOAT = re.compile(rb"[0-9]{1,2}(?:\.[0-9]{1,9})?")
_BOOL = {b"true": True, b"false": False, b"1": True, b"0": False}


def _refusal(exc: StoreUnavailable | Overloaded) -> bytes:
    """The body of the 503 the application's handler gives, byte for byte."""
    return json.dumps({"detail": exc.detail}, ensure_ascii=False, separators=(",", ":")).encode()


async def _unavailable(send: Send, service: Service, exc: StoreUnavailable | Overloaded) -> None:
    """The application's 503: the store is down, or a bound is reached (``app.errors``)."""
    retry = str(service.settings.retry_after_seconds).encode()
    await _respond(send, 503, _refusal(exc), [(b"retry-after", retry)])


def plain_query(query_string: bytes, max_n: int) -> Query | None:
    """The parameters when every one is plainly written and in range, else None."""
    n, diversity, exclude_seen = 20, 0.0, True
    if query_string:
        seen: set[bytes] = set()
        for part in query_string.split(b"&"):
            key, eq, value = part.partition(b"=")
            if not eq or key in seen:
                return None
            seen.add(key)
            if key == b"n" and _INT.fullmatch(value):
                n = int(value)
            elif key == b"diversity" and _FLOAT.fullmatch(value):
                diversity = float(value)
            elif key == b"exclude_seen" and value in _BOOL:
                exclude_seen = _BOOL[value]
            else:
                return None
    if not 1 <= n <= max_n or diversity > DIVERSITY_MAX:
        return None
    return Query(n, diversity, exclude_seen)


def plain_event(body: bytes) -> Event | None:
    """The event when the route would accept this JSON body, else None (the route answers)."""
    try:
        return Event.model_validate(json.loads(body))
    except Exception:  # invalid JSON or UTF-8, not an object, not a valid event
        return None


def _json_body_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length of an ``application/json`` request, else None."""
    length, json_type = None, False
    for name, value in headers:
        if name == b"content-length":
            length = int(value) if value.isdigit() else None
        elif name == b"content-type":
            json_type = value.lower() == b"application/json"
    return length if json_type else None


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client went away meanwhile."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` again first, then whatever the client sends next."""
    sent = False

    async def again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again


async def _respond(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [
        (b"content-length", str(len(body)).encode()),
        (b"content-type", b"application/json"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _key_ok(scope: Scope) -> bool:
    """No API key is required, or the request carries a right one; else the route answers
    (401 or 403, see ``app.api.shop_key``)."""
    keys = keys_of(scope["app"])
    if not keys:
        return True
    presented = header_key(scope["headers"])
    return presented is not None and key_matches(presented, keys)


class FastPath:
    """ASGI middleware: plain recommendation requests and events answered here, the rest
    passed on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            service: Service | None = getattr(scope["app"].state, "service", None)
            if service is not None and _key_ok(scope):
                if scope["method"] == "GET":
                    if await self._recommendations(service, scope, send):
                        return
                elif scope["method"] == "POST" and scope["path"] == _EVENTS_PATH:
                    await self._event(service, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _recommendations(service: Service, scope: Scope, send: Send) -> bool:
        """Answer a plain request; False when it is not one (nothing sent)."""
        match = _PLAIN_PATH.fullmatch(scope["path"])
        if match is None or service.registry.active is None:
            return False
        q = plain_query(scope["query_string"], service.settings.max_n)
        if q is None:
            return False
        scope["route"] = _ROUTE
        try:
            answer = await service.for_session(match.group(1), q)
        except Overloaded as exc:  # the scoring threads' queue is full
            await _unavailable(send, service, exc)
            return True
        await _respond(send, 200, to_json(answer))
        return True

    async def _event(self, service: Service, scope: Scope, receive: Receive, send: Send) -> None:
        length = _json_body_length(scope["headers"])
        if length is None or length > _EVENT_BODY_MAX:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client is gone: nobody to answer
            return
        event = plain_event(body)
        if event is None:
            await self.app(scope, _replay(body, receive), send)
            return
        scope["route"] = _EVENT_ROUTE
        try:
            ack = (await service.ingest([event]))[0]
        except (StoreUnavailable, Overloaded) as exc:
            await _unavailable(send, service, exc)
            return
        await _respond(send, 202, ack.model_dump_json().encode())
