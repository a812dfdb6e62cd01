"""The served model's catalog: browse and search it, look items up, list its categories.

Why: a shop's developer trying the service (the demo page at ``/demo``) needs
to see which items the model knows and their categories, the categories the
diversity setting spreads recommendations over.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from app.api import shop_key
from app.api.deps import ServiceDep, SettingsDep
from app.errors import TooLarge
from app.schemas import _ID_PATTERN, CatalogItem, CatalogPage, CategoryList, Problem
from app.serving.catalog import Order, catalog_of

router = APIRouter(prefix="/v1", tags=["catalog"], **shop_key.GUARD)

_ERRORS = {503: {"model": Problem, "description": "no model loaded yet"}}
#: items of one page at most
MAX_LIMIT = 200
Text = Annotated[str, Query(max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")]


@router.get(
    "/items",
    responses={**_ERRORS, 413: {"model": Problem, "description": "more ids than max_n"}},
)
async def list_items(
    service: ServiceDep,
    settings: SettingsDep,
    query: Text = "",
    category: Annotated[
        str | None, Query(min_length=1, max_length=128, pattern=_ID_PATTERN)
    ] = None,
    ids: Annotated[
        list[Annotated[str, Query(min_length=1, max_length=128, pattern=_ID_PATTERN)]] | None,
        Query(description="look these items up (repeat the parameter); the rest is ignored"),
    ] = None,
    order: Order = "catalog",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> CatalogPage:
    """Items whose id contains ``query`` (any case), in ``category``, one page at a time.

    ``order=popular`` lists the most clicked first. With ``ids``, those items
    (the known ones, in the order asked) instead of a search.
    """
    cat = await asyncio.to_thread(catalog_of, service.model())  # built once per version
    if ids is not None:
        if len(ids) > settings.max_n:
            raise TooLarge(f"{len(ids)} ids; at most {settings.max_n} per lookup")
        found = cat.lookup(ids)
        return CatalogPage(
            model_version=cat.version,
            total=len(found),
            offset=0,
            items=[CatalogItem(**e) for e in found],
        )
    total, page = await asyncio.to_thread(cat.search, query, category, order, offset, limit)
    return CatalogPage(
        model_version=cat.version,
        total=total,
        offset=offset,
        items=[CatalogItem(**e) for e in page],
    )


@router.get("/categories", responses=_ERRORS)
async def list_categories(service: ServiceDep) -> CategoryList:
    """Every category of the served catalog with its number of items."""
    cat = await asyncio.to_thread(catalog_of, service.model())  # built once per version
    return CategoryList(model_version=cat.version, categories=cat.category_counts())
