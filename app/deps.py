"""Typed dependencies of the handlers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

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
