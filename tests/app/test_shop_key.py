"""The shop's API key on ``/v1/*``: off by default; when set, every ``/v1`` call needs it,
on the fast path as on the routes, and nothing else does (health, metrics, admin)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.api.shop_key import HEADER, key_matches, shop_keys
from app.main import create_app
from app.settings import Settings
from tests.app.support import LiveServer, item_id, write_tiny_checkpoint

KEY = "shop-key-0123456789"
NEXT_KEY = "shop-key-rotated-abcdef"
ADMIN = {"Authorization": "Bearer admin-token"}


@pytest.fixture(params=[True, False], ids=["fast-path", "routes-only"])
def keyed(request, tmp_path: Path) -> Settings:
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    return Settings(
        model_dir=model_dir,
        api_key=f"{KEY},{NEXT_KEY}",
        admin_token="admin-token",
        fast_path=request.param,
    )


def test_every_v1_call_needs_the_key(keyed: Settings) -> None:
    click = {"session_id": "visit", "item_id": item_id(3)}
    with LiveServer(keyed) as srv, httpx.Client(base_url=srv.url) as http:
        good, other, wrong = ({HEADER: k} for k in (KEY, NEXT_KEY, "shop-key-guessed"))
        # plain requests, the ones the fast path answers by itself
        calls = [
            ("POST", "/v1/events", {"json": click}),
            ("GET", "/v1/sessions/visit/recommendations", {}),
            ("GET", "/v1/sessions/visit", {}),
            ("DELETE", "/v1/sessions/visit", {}),
            ("POST", "/v1/events/batch", {"json": {"events": [click]}}),
            ("POST", "/v1/recommendations", {"json": {"items": [item_id(3)]}}),
            ("GET", f"/v1/items/{item_id(3)}/similar", {}),
            ("GET", "/v1/items", {}),
            ("GET", "/v1/categories", {}),
        ]
        for method, path, kw in calls:
            missing = http.request(method, path, **kw)
            assert missing.status_code == 401, (method, path, missing.text)
            assert missing.headers["www-authenticate"] == f'ApiKey header="{HEADER}"'
            refused = http.request(method, path, headers=wrong, **kw)
            assert refused.status_code == 403, (method, path, refused.text)
            assert refused.json() == {"detail": "wrong API key"}
        # nothing of the refused calls reached the store: no visit, no event
        assert http.get("/v1/sessions/visit", headers=good).status_code == 404
        assert http.post("/v1/events", json=click, headers=good).status_code == 202
        assert http.post("/v1/events", json=click, headers=other).status_code == 202  # rotation
        assert http.get("/v1/sessions/visit", headers=good).json()["n_events"] == 2
        recs = http.get("/v1/sessions/visit/recommendations", headers=good)
        assert recs.status_code == 200 and recs.json()["fallback"] is None
        assert http.delete("/v1/sessions/visit", headers=wrong).status_code == 403
        assert http.get("/v1/sessions/visit", headers=good).status_code == 200  # not deleted
        # the key is the shop's, not the operator's: health and admin do not take it
        assert http.get("/healthz").status_code == 200
        assert http.get("/readyz").status_code == 200
        assert http.get("/admin/models", headers=ADMIN).status_code == 200
        assert http.get("/admin/models", headers=good).status_code == 401


def test_the_key_is_off_by_default(tmp_path: Path) -> None:
    write_tiny_checkpoint(tmp_path)
    with LiveServer(Settings(model_dir=tmp_path)) as srv, httpx.Client(base_url=srv.url) as http:
        assert http.post("/v1/events", json={"session_id": "s", "item_id": 5}).status_code == 202
        assert http.get("/v1/sessions/s", headers={HEADER: "anything"}).status_code == 200


def test_the_spec_declares_the_key_and_its_answers() -> None:
    """With a key, every /v1 call needs it (test_openapi.py: without one, none does)."""
    spec = create_app(Settings(api_key=KEY)).openapi()
    scheme = spec["components"]["securitySchemes"]["ShopApiKey"]
    assert scheme == {
        "type": "apiKey",
        "in": "header",
        "name": HEADER,
        "description": scheme["description"],
    }
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            shop = {"ShopApiKey": []} in op.get("security", [])
            assert shop == path.startswith("/v1/"), (method, path)
            if shop:
                assert {"401", "403"} <= set(op["responses"]), (method, path)


def test_keys_are_read_and_compared_whole() -> None:
    keys = shop_keys(Settings(api_key=f" {KEY} , {NEXT_KEY},"))
    assert keys == (KEY.encode(), NEXT_KEY.encode())
    assert key_matches(KEY.encode(), keys) and key_matches(NEXT_KEY.encode(), keys)
    for bad in (b"", KEY[:-1].encode(), KEY.encode() + b"x", f"{KEY},{NEXT_KEY}".encode()):
        assert not key_matches(bad, keys)
    assert shop_keys(Settings()) == ()
    with pytest.raises(ValueError, match="NEXTITEM_API_KEY"):
        Settings(api_key="short")
