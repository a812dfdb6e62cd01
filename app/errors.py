"""The one place where errors become HTTP answers.

Modules raise what went wrong in their own terms: the session store or job
store is unreachable, no model is loaded, a thing asked for does not exist, a
request is too large, a checkpoint cannot be served, a bound is reached.
``install`` maps each to its status and a ``{"detail": ...}`` body, so a
status code is decided here and nowhere else. Unreachable stores, a missing
model and a reached bound (``app.overload``) are 503 with ``Retry-After``: the
client retries (the store's errors say whether anything may have been
recorded). (Two answers are given before a handler runs and so stay where
they are: the body-size limit of ``app.api.middleware`` and the fast path's
copy of the 503s.)
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import Scope

from app.jobs.store import RetrainRunning
from app.overload import Overloaded
from app.serving.registry import ModelLoadError
from app.serving.service import NoModel, UnknownItem
from app.sessions.store import StoreUnavailable
from app.settings import Settings


class NotFound(LookupError):
    """The session, item, job or checkpoint a request names does not exist."""


class TooLarge(ValueError):
    """A request carries more than the configured limit (events in a batch, items)."""


class Unauthorized(PermissionError):
    """A call without its credentials (an admin call without a bearer token); ``challenge``
    is the ``WWW-Authenticate`` answer that says which credentials."""

    challenge = "Bearer"


class Forbidden(PermissionError):
    """A call with wrong credentials, or admin calls disabled."""


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route of ``app`` serves at the request's path.

    Why not the framework's answer: a 405 names the methods of the first route whose path
    matches, and ``GET`` and ``DELETE /v1/sessions/{id}`` are two routes. Each method is
    asked of the routes themselves, as routing would.
    """
    return [
        method
        for method in _METHODS
        if any(r.matches({**scope, "method": method})[0] is Match.FULL for r in app.router.routes)
    ]


def install(app: FastAPI, settings: Settings) -> None:
    """Register the handler of every error the service raises on ``app``."""
    retry = {"Retry-After": str(settings.retry_after_seconds)}

    @app.exception_handler(StoreUnavailable)
    async def _store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        return _problem(503, exc.detail, retry)

    @app.exception_handler(Overloaded)
    async def _overloaded(request: Request, exc: Overloaded) -> JSONResponse:
        return _problem(503, exc.detail, retry)

    @app.exception_handler(RedisError)
    async def _redis_down(request: Request, exc: RedisError) -> JSONResponse:
        return _problem(503, f"the job store (Redis) is unreachable: {exc}", retry)

    @app.exception_handler(NoModel)
    async def _no_model(request: Request, exc: NoModel) -> JSONResponse:
        return _problem(503, f"no model is being served: {exc}", retry)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return _problem(404, str(exc))

    @app.exception_handler(UnknownItem)
    async def _unknown_item(request: Request, exc: UnknownItem) -> JSONResponse:
        return _problem(404, f"item {exc.args[0]!r} is not in the catalog")

    @app.exception_handler(TooLarge)
    async def _too_large(request: Request, exc: TooLarge) -> JSONResponse:
        return _problem(413, str(exc))

    @app.exception_handler(ModelLoadError)
    async def _cannot_serve(request: Request, exc: ModelLoadError) -> JSONResponse:
        return _problem(409, str(exc))

    @app.exception_handler(RetrainRunning)
    async def _retrain_running(request: Request, exc: RetrainRunning) -> JSONResponse:
        return _problem(409, str(exc))

    @app.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, exc: Unauthorized) -> JSONResponse:
        return _problem(401, str(exc), {"WWW-Authenticate": exc.challenge})

    @app.exception_handler(405)
    async def _method_not_allowed(request: Request, exc: HTTPException) -> JSONResponse:
        allow = ", ".join(allowed_methods(request.app, request.scope))
        return _problem(405, "Method Not Allowed", {"Allow": allow})

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> JSONResponse:
        return _problem(403, str(exc))
