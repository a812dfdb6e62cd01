"""Items near an item in the model's retrieval space."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from app.api.deps import ItemIdPath, ServiceDep, SettingsDep, check_n, json_response
from app.schemas import Problem, Recommendations
from app.serving.service import UnknownItem

router = APIRouter(prefix="/v1/items", tags=["items"])


@router.get(
    "/{item_id}/similar",
    response_model=Recommendations,
    responses={404: {"model": Problem, "description": "item not in the model's catalog"}},
)
async def similar_items(
    item_id: ItemIdPath,
    service: ServiceDep,
    settings: SettingsDep,
    n: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> Response:
    check_n(n, settings)
    try:
        return json_response(await service.similar(item_id, n))
    except UnknownItem:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"item {item_id!r} is not in the catalog"
        ) from None
