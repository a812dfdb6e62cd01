"""The served model's catalog as a shop's developer browses it: search, filter, look up.

Why here: the catalog a model serves (``items.parquet`` of its checkpoint) is
the only catalog the service knows, and its categories are what the diversity
aggregator spreads over. The demo page lists it, and shows each recommended
item's category, through ``GET /v1/items`` and ``GET /v1/categories``.

A ``Catalog`` is built once per model version (numpy arrays of the ids and
category names as text) and answers a search with a few vector operations:
on a catalog of 40k items a substring search is a few milliseconds.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from app.serving.registry import ServingModel

Order = Literal["catalog", "popular"]


@dataclass(frozen=True)
class Catalog:
    version: str
    ids: np.ndarray  # row -> item id as text
    ids_folded: np.ndarray  # row -> item id in lower case, for searching
    categories: np.ndarray  # row -> category code, -1 = none
    category_names: tuple[str, ...]
    popularity: np.ndarray
    by_popularity: np.ndarray
    row_of: dict[str, int]

    def category(self, row: int) -> str | None:
        code = int(self.categories[row])
        return self.category_names[code] if 0 <= code < len(self.category_names) else None

    def entry(self, row: int) -> dict[str, Any]:
        return {
            "item_id": str(self.ids[row]),
            "category": self.category(row),
            "popularity": float(self.popularity[row]),
        }

    def search(
        self, query: str, category: str | None, order: Order, offset: int, limit: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """Items whose id contains ``query`` (any case), of ``category``; total and one page."""
        rows = self.by_popularity if order == "popular" else np.arange(len(self.ids))
        keep = np.ones(len(rows), bool)
        if query:
            keep &= np.char.find(self.ids_folded[rows], query.lower()) >= 0
        if category is not None:
            code = self.category_names.index(category) if category in self.category_names else -2
            keep &= self.categories[rows] == code
        matched = rows[keep]
        return len(matched), [self.entry(int(r)) for r in matched[offset : offset + limit]]

    def lookup(self, item_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The entries of the known items among ``item_ids``, in the order asked."""
        return [self.entry(r) for r in map(self.row_of.get, item_ids) if r is not None]

    def category_counts(self) -> list[dict[str, Any]]:
        """Every category with its number of items, in the catalog's order of first use."""
        counts = np.bincount(
            self.categories[self.categories >= 0], minlength=len(self.category_names)
        )
        return [
            {"category": name, "n_items": int(n)}
            for name, n in zip(self.category_names, counts.tolist(), strict=True)
        ]


_CATALOGS: dict[str, Catalog] = {}
_LOCK = threading.Lock()


def catalog_of(sm: ServingModel) -> Catalog:
    """The catalog of a serving model, built on first use and kept for the last few models.

    Keyed by the checkpoint directory, as the registry keys models: a copied checkpoint keeps
    its manifest version, so the version alone could name another catalog.
    """
    with _LOCK:
        found = _CATALOGS.get(sm.directory)
        if found is not None:
            return found
    ids = np.array([str(i) for i in sm.item_ids], dtype=str)
    built = Catalog(
        version=sm.version,
        ids=ids,
        ids_folded=np.char.lower(ids),
        categories=sm.categories,
        category_names=sm.category_names,
        popularity=sm.popularity,
        by_popularity=sm.by_popularity,
        row_of=sm.row_of,
    )
    with _LOCK:
        if len(_CATALOGS) >= 4:  # old versions after swaps
            _CATALOGS.pop(next(iter(_CATALOGS)))
        _CATALOGS[sm.directory] = built
    return built
