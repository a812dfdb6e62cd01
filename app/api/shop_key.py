"""The shop's API key: an optional guard of every ``/v1`` call.

Why: without it anyone who can reach the service can read, feed or delete a
visit by its id. The key is the shop's (its servers call ``/v1``), separate
from the operator's admin token. Unset (the embedded default) ``/v1`` is open;
set, a call without the ``X-API-Key`` header is refused with 401 and one with
another key with 403, before it touches the store. Several comma-separated
keys let a shop rotate: start with old and new, move the callers, drop the old.

Keys are compared in constant time, each one whatever the others gave, so the
answer's timing tells nothing about a key. The fast path checks the header
with ``key_matches`` too, and hands any call without a right key to the route,
which answers it (``require_shop_key``).
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from app.errors import Forbidden, Unauthorized
from app.schemas import Problem
from app.settings import Settings

HEADER = "X-API-Key"
_HEADER_BYTES = HEADER.lower().encode()

_scheme = APIKeyHeader(
    name=HEADER,
    scheme_name="ShopApiKey",
    description="NEXTITEM_API_KEY, when the service sets one",
    auto_error=False,
)

#: the answers the guard adds to every /v1 route of the spec
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no X-API-Key header (the service requires a key)"},
    403: {"model": Problem, "description": "wrong API key"},
}


class MissingKey(Unauthorized):
    challenge = f'ApiKey header="{HEADER}"'


def shop_keys(settings: Settings) -> tuple[bytes, ...]:
    """The keys a /v1 call may carry; empty: no key is required."""
    if settings.api_key is None:
        return ()
    raw = settings.api_key.get_secret_value().split(",")
    return tuple(k.strip().encode() for k in raw if k.strip())


def key_matches(presented: bytes, keys: tuple[bytes, ...]) -> bool:
    """Whether ``presented`` is one of ``keys``, every key compared in constant time."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(presented, key)
    return found


def header_key(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The X-API-Key of raw ASGI headers (the fast path's view of a request)."""
    for name, value in headers:
        if name == _HEADER_BYTES:
            return value
    return None


def keys_of(app: Any) -> tuple[bytes, ...]:
    """The application's keys, read from its settings once."""
    keys = getattr(app.state, "shop_keys", None)
    if keys is None:
        keys = app.state.shop_keys = shop_keys(app.state.settings)
    return keys


async def require_shop_key(
    request: Request, presented: Annotated[str | None, Depends(_scheme)]
) -> None:
    keys = keys_of(request.app)
    if not keys:
        return
    if not presented:
        raise MissingKey(f"this service needs its API key in the {HEADER} header")
    if not key_matches(presented.encode("latin-1"), keys):  # the header's own bytes
        raise Forbidden("wrong API key")


ShopKeyDep = Depends(require_shop_key)
#: what a /v1 router adds: ``APIRouter(prefix=..., **GUARD)``
GUARD: dict[str, Any] = {"dependencies": [ShopKeyDep], "responses": ERRORS}
