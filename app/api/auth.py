"""Bearer-token guard of the /admin endpoints.

The token comes from ``NEXTITEM_ADMIN_TOKEN``; there is no built-in default.
The embedded service (no Redis: one process on a developer's machine) makes a
random token at start and prints it once; a Redis-backed deployment without a
token refuses every admin call. Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.errors import Forbidden, Unauthorized
from app.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="NEXTITEM_ADMIN_TOKEN")


def admin_token(settings: Settings) -> tuple[str | None, bool]:
    """The token admin calls must carry, and whether it was generated for this run."""
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value(), False
    if settings.embedded:
        return secrets.token_urlsafe(24), True
    return None, False


def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    expected: str | None = request.app.state.admin_token
    if expected is None:
        raise Forbidden("admin endpoints are disabled: set NEXTITEM_ADMIN_TOKEN")
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("admin endpoints need 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise Forbidden("wrong admin token")


AdminDep = Depends(require_admin)
