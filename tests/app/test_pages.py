"""The demo page and the dashboard as files served, the catalog API they browse, and the
admin views they read (the process's metrics summary, training curves). Over HTTP against a
live server; what the pages do in a browser is in ``test_browser.py``."""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
import torch

from app.api.pages import WEB
from app.metrics_summary import bucket_quantile
from app.serving.roster import roster_key
from app.settings import Settings
from models.gru4rec import GRU4Rec
from models.registry import retrainable_kinds
from tests.app.support import LiveServer, write_tiny_checkpoint
from tests.app.test_admin import wait_for
from training.checkpoint import set_current, write_checkpoint

TOKEN = "pages-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PAGES = ("demo", "dashboard")


def write_catalog_checkpoint(
    model_dir: Path, *, categories: bool = True, curve: Path | None = None
) -> str:
    """40 items, ids 'sku-00'..'sku-39', categories 'shoes'/'hats' alternating, and the
    popularity rising with the row, so the most clicked order is the catalog order reversed."""
    torch.manual_seed(0)
    model = GRU4Rec(40, layers=[8])
    path = write_checkpoint(
        model_dir,
        "gru4rec",
        model.hyperparameters(),
        model.checkpoint_weights(),
        item_ids=np.array([f"sku-{r:02d}" for r in range(40)]),
        popularity=np.arange(1, 41).astype(float),
        categories=np.array(["shoes" if r % 2 == 0 else "hats" for r in range(40)])
        if categories
        else None,
        attachments={"training.png": curve} if curve else None,
    )
    set_current(model_dir, path.name)
    return path.name


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    model_dir = tmp_path_factory.mktemp("pages") / "models"
    write_catalog_checkpoint(model_dir)
    with LiveServer(Settings(model_dir=model_dir, admin_token=TOKEN)) as srv:
        yield srv


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url) as c:
        yield c


# ---- the pages and their files --------------------------------------------------------------


class _Page(HTMLParser):
    """The ids, labels, form controls and referenced URLs of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.label_for: set[str] = set()
        self.controls: list[dict[str, str | None]] = []
        self.urls: list[str] = []
        self._labels_open = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "label":
            self._labels_open += 1
            if a.get("for"):
                self.label_for.add(str(a["for"]))
        if tag in ("input", "select", "textarea") and a.get("type") != "hidden":
            self.controls.append({**a, "_wrapped": "yes" if self._labels_open else None})
        for key in ("src", "href"):
            if a.get(key):
                self.urls.append(str(a[key]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._labels_open -= 1


def parsed(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def test_root_points_to_the_demo_page(client: httpx.Client) -> None:
    r = client.get("/")
    assert r.status_code == 307 and r.headers["location"] == "/demo"
    assert client.get("/", follow_redirects=True).url.path == "/demo"


@pytest.mark.parametrize("page", PAGES)
def test_pages_are_revalidated_html_that_loads_nothing_from_elsewhere(
    client: httpx.Client, page: str
) -> None:
    r = client.get(f"/{page}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "http" not in csp
    again = client.get(f"/{page}", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    urls = parsed(r.text).urls
    assert urls and all(u.startswith(("/", "#", "data:")) for u in urls), urls


@pytest.mark.parametrize("page", PAGES)
def test_assets_are_versioned_kept_a_year_and_gzipped(client: httpx.Client, page: str) -> None:
    assets = [u for u in parsed(client.get(f"/{page}").text).urls if u.startswith("/static/")]
    assert {"style.css", "common.js", f"{page}.js"} == {
        u.split("/")[2].split("?")[0] for u in assets
    }
    for url in assets:
        plain = client.get(url, headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200 and "content-encoding" not in plain.headers
        assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"
        version = url.split("?v=")[1]
        assert plain.headers["etag"] == f'"{version}"'  # the URL changes with the content
        name = url.split("/")[2].split("?")[0]
        assert plain.content == (WEB / name).read_bytes()
        zipped = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert int(zipped.headers["content-length"]) < len(plain.content) / 2
        assert zipped.content == plain.content  # httpx unzips
    assert client.get("/static/nope.js").status_code == 404
    assert client.get("/static/..%2Fapi%2Fpages.py").status_code == 404


def test_web_files_name_no_other_origin_and_no_font() -> None:
    for path in WEB.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://|//[\w.-]+\.\w+/", text), path.name
        assert "@import" not in text and "@font-face" not in text and "url(" not in text, path.name


@pytest.mark.parametrize("page", PAGES)
def test_every_form_control_has_a_label_and_every_id_a_script_uses_exists(
    client: httpx.Client, page: str
) -> None:
    html = parsed(client.get(f"/{page}").text)
    for control in html.controls:
        labelled = (
            control.get("id") in html.label_for
            or control.get("_wrapped")
            or control.get("aria-label")
        )
        assert labelled, f"{page}: a form control without a label: {control}"
    script = (WEB / f"{page}.js").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\(\"([\w-]+)\"\)", script))
    assert used and used <= html.ids, used - html.ids


def test_the_dashboard_offers_every_retrainable_model(client: httpx.Client) -> None:
    html = client.get("/dashboard").text
    offered = re.findall(r'<option value="([\w-]+)">', html)
    assert offered == list(retrainable_kinds())


def test_pages_stay_small() -> None:
    """The pages' own files, gzipped, as a browser fetches them on a first visit."""
    for page in PAGES:
        names = [f"{page}.html", "style.css", "common.js", f"{page}.js"]
        sent = sum(len(gzip.compress((WEB / n).read_bytes())) for n in names)
        assert sent < 20_000, (page, sent)


# ---- GET /v1/items, GET /v1/categories ------------------------------------------------------


def ids(page: dict) -> list[str]:
    return [i["item_id"] for i in page["items"]]


def test_catalog_pages_searches_and_filters(client: httpx.Client) -> None:
    first = client.get("/v1/items", params={"limit": 3}).json()
    assert first["total"] == 40 and first["offset"] == 0
    assert first["items"] == [
        {"item_id": "sku-00", "category": "shoes", "popularity": 1.0},
        {"item_id": "sku-01", "category": "hats", "popularity": 2.0},
        {"item_id": "sku-02", "category": "shoes", "popularity": 3.0},
    ]
    last = client.get("/v1/items", params={"offset": 38, "limit": 10}).json()
    assert ids(last) == ["sku-38", "sku-39"] and last["total"] == 40
    popular = client.get("/v1/items", params={"order": "popular", "limit": 2}).json()
    assert ids(popular) == ["sku-39", "sku-38"]
    found = client.get("/v1/items", params={"query": "SKU-1"}).json()  # any case
    assert found["total"] == 10 and ids(found) == [f"sku-{r}" for r in range(10, 20)]
    hats = client.get("/v1/items", params={"category": "hats", "limit": 200}).json()
    assert hats["total"] == 20 and {i["category"] for i in hats["items"]} == {"hats"}
    both = client.get("/v1/items", params={"query": "-3", "category": "shoes"}).json()
    assert ids(both) == ["sku-30", "sku-32", "sku-34", "sku-36", "sku-38"]
    none = client.get("/v1/items", params={"category": "socks"}).json()
    assert none["total"] == 0 and none["items"] == []


def test_catalog_looks_items_up_in_the_order_asked(client: httpx.Client) -> None:
    r = client.get("/v1/items", params=[("ids", "sku-07"), ("ids", "nope"), ("ids", "sku-02")])
    assert r.status_code == 200
    assert ids(r.json()) == ["sku-07", "sku-02"] and r.json()["total"] == 2


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"limit": 0}, 422),
        ({"limit": 201}, 422),
        ({"offset": -1}, 422),
        ({"offset": "x"}, 422),
        ({"query": "x" * 129}, 422),
        ({"query": "a\x00b"}, 422),
        ({"category": ""}, 422),
        ({"order": "random"}, 422),
        ([("ids", f"sku-{r:02d}") for r in range(40)] * 3, 413),  # above max_n (100)
    ],
)
def test_catalog_refuses_bad_input(client: httpx.Client, params, status: int) -> None:
    r = client.get("/v1/items", params=params)
    assert r.status_code == status, r.text
    assert "detail" in r.json()


def test_categories_with_their_item_counts(client: httpx.Client) -> None:
    body = client.get("/v1/categories").json()
    assert body["categories"] == [
        {"category": "shoes", "n_items": 20},
        {"category": "hats", "n_items": 20},
    ]
    assert body["model_version"] == client.get("/readyz").json()["model"]


def test_a_catalog_without_categories(tmp_path: Path) -> None:
    write_catalog_checkpoint(tmp_path, categories=False)
    with LiveServer(Settings(model_dir=tmp_path)) as srv, httpx.Client(base_url=srv.url) as c:
        assert {i["category"] for i in c.get("/v1/items").json()["items"]} == {None}
        assert c.get("/v1/categories").json()["categories"] == []


def test_the_catalog_needs_a_model(tmp_path: Path) -> None:
    with LiveServer(Settings(model_dir=tmp_path)) as srv, httpx.Client(base_url=srv.url) as c:
        assert c.get("/v1/items").status_code == 503
        assert c.get("/v1/categories").status_code == 503
        assert c.get("/demo").status_code == 200  # the page itself still loads


# ---- GET /admin/metrics/summary, GET /admin/models/{version}/training.png --------------------


def test_bucket_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.001, 0.0), (0.01, 10.0), (0.1, 20.0), (float("inf"), 20.0)]
    assert bucket_quantile(0.5, buckets) == pytest.approx(0.01)
    assert bucket_quantile(0.25, buckets) == pytest.approx(0.001 + 0.009 * 0.5)
    assert bucket_quantile(0.75, buckets) == pytest.approx(0.01 + 0.09 * 0.5)
    assert bucket_quantile(0.99, [(1.0, 0.0), (float("inf"), 4.0)]) == 1.0  # past the last bound
    assert bucket_quantile(0.5, [(1.0, 0.0), (float("inf"), 0.0)]) is None


def test_metrics_summary_reads_this_process_metrics(tmp_path: Path) -> None:
    version = write_tiny_checkpoint(tmp_path)
    with (
        LiveServer(Settings(model_dir=tmp_path, admin_token=TOKEN)) as srv,
        httpx.Client(base_url=srv.url) as c,
    ):
        assert c.get("/admin/metrics/summary").status_code == 401
        wrong = c.get("/admin/metrics/summary", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403
        for item in (1000, 1001, 99999):
            assert (
                c.post("/v1/events", json={"session_id": "v", "item_id": item}).status_code == 202
            )
        c.post("/v1/events", json={"session_id": "v", "item_id": 1000, "event_id": "e"})
        c.post("/v1/events", json={"session_id": "v", "item_id": 1000, "event_id": "e"})
        assert c.get("/v1/sessions/new/recommendations").json()["fallback"] == "new_session"
        for _ in range(4):
            assert c.get("/v1/sessions/v/recommendations").json()["fallback"] is None

        s = c.get("/admin/metrics/summary", headers=AUTH).json()
        assert s["model_version"] == version and s["model_kind"] == "gru4rec"
        assert s["index_items"] == 60 and s["store"] == "ok"
        assert s["index"] == "flat (exact) on cpu"
        assert s["process"] == srv.app.state.roster.process
        assert s["events"] == {"logged": 4, "unknown_item": 1, "duplicate": 1}
        assert s["fallbacks"] == {"new_session": 1}
        assert s["swaps"] == {"swapped": 1}
        routes = {(r["method"], r["route"]): r for r in s["routes"]}
        recs = routes[("GET", "/v1/sessions/{session_id}/recommendations")]
        assert recs["requests"] == 5 and recs["errors"] == 0
        assert 0 < recs["p50_ms"] <= recs["p95_ms"] <= recs["p99_ms"]
        assert routes[("POST", "/v1/events")]["requests"] == 5
        # the histogram behind the percentiles: cumulative, one count per bound and one for all
        bounds = s["latency_bounds_ms"]
        assert bounds == sorted(bounds) and len(recs["histogram"]) == len(bounds) + 1
        assert recs["histogram"] == sorted(recs["histogram"]) and recs["histogram"][-1] == 5
        pairs = list(
            zip([b / 1000 for b in bounds] + [float("inf")], recs["histogram"], strict=True)
        )
        assert recs["p95_ms"] == round(bucket_quantile(0.95, pairs) * 1000, 3)
        assert [r["requests"] for r in s["routes"]] == sorted(
            (r["requests"] for r in s["routes"]), reverse=True
        )
        later = c.get("/admin/metrics/summary", headers=AUTH).json()
        assert later["taken_at"] > s["taken_at"]
        assert {(r["method"], r["route"]): r for r in later["routes"]}[
            ("GET", "/admin/metrics/summary")
        ]["requests"] >= 1


def test_training_curve_for_admins_only(tmp_path: Path) -> None:
    png = tmp_path / "curve.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with_curve = write_catalog_checkpoint(tmp_path / "models", curve=png)
    without = write_tiny_checkpoint(tmp_path / "models", activate=False)
    s = Settings(model_dir=tmp_path / "models", admin_token=TOKEN)
    with LiveServer(s) as srv, httpx.Client(base_url=srv.url) as c:
        url = f"/admin/models/{with_curve}/training.png"
        assert c.get(url).status_code == 401
        r = c.get(url, headers=AUTH)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.content == png.read_bytes()
        assert c.get(f"/admin/models/{without}/training.png", headers=AUTH).status_code == 404
        assert c.get("/admin/models/nope/training.png", headers=AUTH).status_code == 404
        assert c.get("/admin/models/..%2F..%2Fx/training.png", headers=AUTH).status_code in (
            404,
            422,
        )


# ---- GET /admin/processes -----------------------------------------------------------------------


def test_the_embedded_service_lists_itself(tmp_path: Path) -> None:
    version = write_tiny_checkpoint(tmp_path)
    with LiveServer(Settings(model_dir=tmp_path, admin_token=TOKEN)) as srv:
        assert httpx.get(f"{srv.url}/admin/processes").status_code == 401
        procs = httpx.get(f"{srv.url}/admin/processes", headers=AUTH).json()
    assert len(procs) == 1
    assert procs[0]["this"] and procs[0]["pid"] == os.getpid() and procs[0]["version"] == version
    assert procs[0]["model_error"] is None and procs[0]["seen"] >= procs[0]["started"]


def test_every_process_sharing_redis_is_listed_with_what_it_serves(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    version = write_tiny_checkpoint(tmp_path)
    s = Settings(
        model_dir=tmp_path,
        admin_token=TOKEN,
        redis_url=redis_url,
        key_prefix=redis_prefix,
        model_poll_seconds=0.2,
    )
    client = redis.Redis.from_url(redis_url)
    gone = {"process": "old-host:1:abc", "host": "old-host", "pid": 1, "version": "v0"}
    client.hset(roster_key(redis_prefix), "old-host:1:abc", json.dumps({**gone, "seen": 0}))
    with LiveServer(s) as a, LiveServer(s) as b:
        wait_for(lambda: len(httpx.get(f"{a.url}/admin/processes", headers=AUTH).json()) == 2)
        seen_by_a = httpx.get(f"{a.url}/admin/processes", headers=AUTH).json()
        seen_by_b = httpx.get(f"{b.url}/admin/processes", headers=AUTH).json()
        assert {p["process"] for p in seen_by_a} == {p["process"] for p in seen_by_b}
        assert seen_by_a[0]["this"] and not seen_by_a[1]["this"]
        assert seen_by_a[0]["process"] == seen_by_b[1]["process"]
        assert {p["version"] for p in seen_by_a} == {version}
        # a process that stopped beating (here: long ago) is dropped from the hash
        assert not client.hexists(roster_key(redis_prefix), "old-host:1:abc")
    # a process that stops cleanly takes itself off
    assert client.hlen(roster_key(redis_prefix)) == 0
