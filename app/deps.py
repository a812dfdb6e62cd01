"""Typed dependencies of the handlers."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from fastapi.exceptions import RequestValidationError

from app.schemas import _ID_PATTERN
from app.service import Service
from app.settings import Settings


def get_service(request: Request) -> Service:
    return request.app.state.service


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


ServiceDep = Annotated[Service, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionIdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=_ID_PATTERN)]
ItemIdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=_ID_PATTERN)]


def check_n(n: int, settings: Settings, where: str = "query") -> None:
    """``n`` above the configured ``max_n`` fails like any other validation error (422)."""
    if n > settings.max_n:
        raise RequestValidationError(
            [
                {
                    "type": "less_than_equal",
                    "loc": (where, "n"),
                    "msg": f"Input should be less than or equal to {settings.max_n}",
                    "input": n,
                    "ctx": {"le": settings.max_n},
                }
            ]
        )


def json_response(body: dict[str, Any]) -> Response:
    """A JSON answer already in the shape of its response model (no second validation)."""
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")
