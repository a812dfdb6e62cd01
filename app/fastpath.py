"""The hottest read, ``GET /v1/sessions/{id}/recommendations``, answered without the
framework's per-request machinery when its parameters are plain.

Why: under load a recommendation was bound by the interpreter lock, and about a
third of its time went to routing, dependency solving and parameter validation,
the same work for every call. This ASGI layer recognises the common request (a
printable session id; ``n``, ``diversity`` and ``exclude_seen`` each at most
once, written as plain decimals and ``true``/``false``/``1``/``0``, inside
their limits) and answers it from ``Service.for_session`` directly.

Anything else, however rare (another spelling pydantic would accept, an
unknown or repeated parameter, a value out of range, no model loaded), goes to
the FastAPI route unchanged, which answers it or gives the canonical 422 or
503. The fast path accepts a strict subset of what the route accepts and gives
the same answer for it (a test holds both paths equal), so the OpenAPI spec, the
error shapes and the metrics stay the route's.
"""

from __future__ import annotations

import re

from pydantic_core import to_json
from starlette.types import ASGIApp, Receive, Scope, Send

from app.routers.recommendations import DIVERSITY_MAX, SESSION_PATH, router
from app.service import Query

# The route this path stands in for, named in ``scope`` as routing would (metrics label by it).
_ROUTE = next(r for r in router.routes if r.path == SESSION_PATH)
# The route's own rules: a path segment of 1 to 128 characters, no control characters.
_PLAIN_PATH = re.compile(r"/v1/sessions/([^/\x00-\x1f\x7f]{1,128})/recommendations")
_INT = re.compile(rb"[0-9]{1,4}")
_FLOAT = re.compile(rb"[0-9]{1,2}(?:\.[0-9]{1,9})?")
_BOOL = {b"true": True, b"false": False, b"1": True, b"0": False}


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


class RecommendationsFastPath:
    """ASGI middleware: plain recommendation requests answered here, the rest passed on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            match = _PLAIN_PATH.fullmatch(scope["path"])
            if match is not None:
                state = scope["app"].state
                service = getattr(state, "service", None)
                if service is not None and service.registry.active is not None:
                    q = plain_query(scope["query_string"], service.settings.max_n)
                    if q is not None:
                        scope["route"] = _ROUTE
                        body = to_json(await service.for_session(match.group(1), q))
                        await send(
                            {
                                "type": "http.response.start",
                                "status": 200,
                                "headers": [
                                    (b"content-length", str(len(body)).encode()),
                                    (b"content-type", b"application/json"),
                                ],
                            }
                        )
                        await send({"type": "http.response.body", "body": body})
                        return
        await self.app(scope, receive, send)
