"""Items near an item in the model's retrieval space."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.api import shop_key
from app.api.deps import ItemIdPath, ServiceDep, SettingsDep, check_n, json_response
from app.schemas import Problem, Recommendations

router = APIRouter(prefix="/v1/items", tags=["items"], **shop_key.GUARD)


@router.get(
    "/{item_id}/similar",
    response_model=Recommendations,
    responses={
        404: {"model": Problem, "description": "item not in the model's catalog"},
        503: {
            "model": Problem,
            "description": "no model loaded yet, or the scoring threads are busy: retry after "
            "Retry-After",
        },
    },
)
async def similar_items(
    item_id: ItemIdPath,
    service: ServiceDep,
    settings: SettingsDep,
    n: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> Response:
    check_n(n, settings)
    return json_response(await service.similar(item_id, n))
