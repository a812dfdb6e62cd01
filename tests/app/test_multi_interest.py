"""The multi-interest path over HTTP: K=4 query vectors in one search, the interest of each
item, and the diversity-greedy aggregator (a real ComiRec-SA checkpoint, untrained)."""

from __future__ import annotations

from pathlib import Path

import httpx

from app.settings import Settings
from tests.app.support import LiveServer, item_id, write_comirec_checkpoint


def category(external_id: str) -> int:
    return (int(external_id) - 1000) % 3  # the tiny catalog's categories: row % 3


def test_multi_interest_session_equals_stateless_and_diversity_spreads_categories(
    tmp_path: Path,
) -> None:
    write_comirec_checkpoint(tmp_path / "models")
    clicks = [item_id(r) for r in (1, 4, 7, 10, 13, 16)]  # all category 1; max_len is 5
    with (
        LiveServer(Settings(model_dir=tmp_path / "models")) as srv,
        httpx.Client(base_url=srv.url) as http,
    ):
        http.post(
            "/v1/events/batch", json={"events": [{"session_id": "m", "item_id": c} for c in clicks]}
        )
        for diversity in (0.0, 10.0):
            params = {"n": 12, "diversity": diversity}
            got = http.get("/v1/sessions/m/recommendations", params=params).json()
            same = http.post("/v1/recommendations", json={"items": clicks, **params}).json()
            assert got["fallback"] is None and got["items"] == same["items"]
            assert {r["interest"] for r in got["items"]} <= {0, 1, 2, 3}
            if diversity == 0.0:
                scores = [r["score"] for r in got["items"]]
                assert scores == sorted(scores, reverse=True)
            else:
                # lambda far above any score gap: every step takes a category with the
                # fewest picks so far, so the categories come round-robin
                cats = [category(r["item_id"]) for r in got["items"]]
                assert all(len(set(cats[i : i + 3])) == 3 for i in range(0, 12, 3))
