"""The demo page and the dashboard in a real browser (Playwright driving the system's Chromium).

What a shop's developer and an operator do: a visit of five clicks changes the
recommendations, the diversity slider spreads their categories, a retrain
started from the dashboard ends with its version shown as current, a wrong
token is refused. The service is the real one (embedded, and with Redis for the
demo page) serving a small GRU4Rec trained here on the generated demo shop
(1,000 items in 20 categories of 50), so categories and sequences mean something.

The browser is Chromium from the system (``apt-get install chromium``; Playwright's
own download is not needed): ``NEXTITEM_TEST_CHROMIUM`` names another binary.
Without one these tests skip, loudly; under ``CI=true`` they fail.

Figures: each test measures its page's first paint and transfer size with the
Performance API on a cold cache and writes them, with screenshots, to
``PAGE_FIGURES_DIR`` when set (else a temporary folder): ``page-figures.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.settings import Settings
from tests.app.support import LiveServer
from training.checkpoint import current_version

TOKEN = "browser-admin-token"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
UI_TIMEOUT_MS = 60_000  # generous: the machine may be busy with training
RETRAIN_TIMEOUT_S = 300


def chromium_path() -> str | None:
    explicit = os.environ.get("NEXTITEM_TEST_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium under Playwright; a skip (a failure under CI=true) when either is missing."""
    path = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        path, why = None, "playwright is not installed (pip install -e '.[dev]')"
    else:
        why = "no Chromium found (apt-get install chromium, or set NEXTITEM_TEST_CHROMIUM)"
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests must run in CI: {why}", pytrace=False)
        warnings.warn(f"SKIPPING browser tests: {why}", stacklevel=1)
        pytest.skip(why)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path)
        yield b
        b.close()


@pytest.fixture(scope="module")
def demo_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small GRU4Rec trained on the generated demo shop (about ten seconds), activated."""
    from training.data.demo import demo_dataset
    from training.gru4rec.export import export_model

    model_dir = tmp_path_factory.mktemp("demo") / "models"
    params = {"n_epochs": 1, "layers": [32], "n_sample": 256}
    export_model(demo_dataset(), model_dir, params, activate=True, progress=False)
    return model_dir


@pytest.fixture
def model_dir(browser: Any, demo_models: Path, tmp_path: Path) -> Path:
    """This test's own copy: its event log and retrains touch nobody else's.

    (After ``browser``: without one the test skips before any training.)
    """
    return Path(shutil.copytree(demo_models, tmp_path / "models"))


@pytest.fixture(params=["embedded", "redis"])
def settings(request: pytest.FixtureRequest, model_dir: Path) -> Settings:
    common = {"model_dir": model_dir, "admin_token": TOKEN, "model_poll_seconds": 0.3}
    if request.param == "embedded":
        return Settings(**common)
    url = request.getfixturevalue("redis_url")
    return Settings(**common, redis_url=url, key_prefix=request.getfixturevalue("redis_prefix"))


@pytest.fixture
def figures(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("PAGE_FIGURES_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh context per test: a cold cache, as a first visit."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    p = context.new_page()
    p.set_default_timeout(UI_TIMEOUT_MS)
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    yield p
    context.close()
    assert errors == [], errors  # no script error and no server error behind any page


def record(folder: Path, key: str, values: dict[str, Any]) -> None:
    path = folder / "page-figures.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = values
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def load_figures(page: Any) -> dict[str, Any]:
    """First paint and bytes transferred of the page as loaded so far (Performance API)."""
    page.wait_for_function("() => performance.getEntriesByType('paint').length > 0")
    return page.evaluate(
        """() => {
        const paint = Object.fromEntries(
            performance.getEntriesByType('paint').map(e => [e.name, e.startTime]));
        const nav = performance.getEntriesByType('navigation')[0];
        const resources = performance.getEntriesByType('resource');
        const own = resources.filter(r => new URL(r.name).pathname.startsWith('/static/'));
        const sum = (list) => list.reduce((s, r) => s + r.transferSize, 0);
        return {
            first_paint_ms: paint['first-paint'],
            first_contentful_paint_ms: paint['first-contentful-paint'],
            dom_content_loaded_ms: nav.domContentLoadedEventEnd,
            page_files_bytes: nav.transferSize + sum(own),
            page_files: 1 + own.length,
            all_bytes: nav.transferSize + sum(resources),
            requests: 1 + resources.length,
            other_origins: resources.filter(r => new URL(r.name).origin !== location.origin).length,
        };
    }"""
    )


def cold_loads(browser: Any, url: str, ready: str, n: int = 5) -> dict[str, Any]:
    """The page loaded ``n`` times, each in a fresh context (a cold cache); the median paint.

    One load on a busy machine says little: the median of a few is the figure reported.
    """
    runs = []
    for _ in range(n):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        p = context.new_page()
        p.goto(url)
        p.wait_for_selector(ready)
        runs.append(load_figures(p))
        context.close()
    out = {k: runs[-1][k] for k in ("page_files", "page_files_bytes", "requests", "all_bytes")}
    for key in ("first_paint_ms", "first_contentful_paint_ms", "dom_content_loaded_ms"):
        values = sorted(r[key] for r in runs)
        out[key] = round(values[n // 2], 1)
        out[f"{key}_range"] = [round(values[0], 1), round(values[-1], 1)]
    return {**out, "loads": n, "browser": f"Chromium {browser.version}", "cpus": os.cpu_count()}


def rec_ids(page: Any) -> list[str]:
    return page.eval_on_selector_all("#recs li", "els => els.map(e => e.dataset.itemId)")


def rec_categories(page: Any) -> list[str]:
    return page.eval_on_selector_all("#recs li .chip", "els => els.map(e => e.textContent)")


def wait_recs(page: Any, visit_length: int, diversity: str = "0") -> None:
    page.wait_for_selector(
        f'#recs[data-visit-length="{visit_length}"][data-diversity="{diversity}"] li'
    )


def click_visit(page: Any, category: str, n: int = 5) -> list[str]:
    """Filter the catalog to ``category``, click its first ``n`` items; the ids clicked."""
    page.select_option("#category", category)
    page.wait_for_function(
        "c => [...document.querySelectorAll('#catalog .chip')].every(e => e.textContent === c)"
        " && document.querySelectorAll('#catalog li').length > 0",
        arg=f"category {category}",
    )
    clicked = []
    for k in range(n):
        row = page.locator("#catalog li").nth(k)
        clicked.append(row.get_attribute("data-item-id"))
        row.locator("button[data-action=click]").click()
        wait_recs(page, k + 1)
    return clicked


def test_a_five_click_visit_changes_the_recommendations(
    settings: Settings, browser: Any, page: Any, figures: Path
) -> None:
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as api:
        page.goto(srv.url + "/")
        assert page.url.endswith("/demo")
        wait_recs(page, 0)
        loaded = load_figures(page)
        version = srv.registry.active.version
        assert page.text_content("#model-version") == version
        assert page.get_attribute("#fallback", "data-reason") == "new_session"
        assert page.is_visible("#fallback") and page.is_hidden("#key-form")
        before = rec_ids(page)
        assert len(before) == 10

        lists = []
        clicked = []
        page.select_option("#category", "7")
        page.wait_for_selector('#catalog li[data-item-id="351"]')
        for k in range(5):
            row = page.locator("#catalog li").nth(k)
            clicked.append(row.get_attribute("data-item-id"))
            row.locator("button[data-action=click]").click()
            wait_recs(page, k + 1)
            lists.append(rec_ids(page))
        assert clicked == ["351", "352", "353", "354", "355"]
        # the clicks went through the public API as events of one visit, in order
        session = page.get_attribute("#recs", "data-session")
        stored = api.get(f"/v1/sessions/{session}").json()
        assert stored["n_events"] == 5 and stored["items"] == clicked
        assert page.is_hidden("#fallback")
        assert lists[-1] != before and lists[0] != lists[-1]
        assert not set(clicked) & set(lists[-1])  # seen items left out
        first = page.locator("#recs li").first
        assert "score" in first.inner_text() and "interest 0" in first.inner_text()
        assert all(c.startswith("category ") for c in rec_categories(page))
        assert page.locator("#visit li").count() == 5
        # what the page shows is the API's own answer for the visit
        answer = api.get(f"/v1/sessions/{session}/recommendations", params={"n": 10}).json()
        assert [i["item_id"] for i in answer["items"]] == lists[-1]
        if settings.embedded:
            page.screenshot(path=str(figures / "demo-after-5-clicks.png"))

        # similar items of any item; then a new visit starts over
        page.locator("#recs li").first.locator("button[data-action=similar]").click()
        page.wait_for_selector(f'#similar[data-item-id="{lists[-1][0]}"] li')
        assert page.locator("#similar li").count() == 10
        page.click("#new-visit")
        page.wait_for_function(
            "s => document.querySelector('#recs').dataset.session !== s", arg=session
        )
        wait_recs(page, 0)
        assert page.locator("#visit li").count() == 0
        assert page.get_attribute("#fallback", "data-reason") == "new_session"
        assert loaded["other_origins"] == 0 and loaded["page_files"] == 4
        if settings.embedded:
            record(figures, "demo", cold_loads(browser, srv.url + "/demo", "#recs li"))


def test_the_diversity_slider_spreads_the_categories(model_dir: Path, page: Any) -> None:
    with LiveServer(Settings(model_dir=model_dir)) as srv:
        page.goto(srv.url + "/demo")
        wait_recs(page, 0)
        click_visit(page, "3")
        focused = rec_categories(page)
        # the keyboard moves the slider: End is its maximum
        page.focus("#diversity")
        page.keyboard.press("End")
        wait_recs(page, 5, diversity="10")
        assert page.text_content("#diversity-value") == "10"
        spread = rec_categories(page)
        assert len(set(spread)) > len(set(focused)), (focused, spread)
        # fewer of the visit's own category: the slider traded score for the others
        assert spread.count("category 3") < focused.count("category 3"), (focused, spread)
        # and back: the exclude-seen toggle keeps the slider's value
        page.keyboard.press("Home")
        wait_recs(page, 5, diversity="0")
        assert rec_categories(page) == focused
        page.check("#exclude-seen")  # already on: nothing changes
        page.uncheck("#exclude-seen")
        page.wait_for_selector('#recs[data-exclude-seen="false"][data-visit-length="5"] li')


def start_worker(settings: Settings, log: Path) -> subprocess.Popen:
    """``nextitem-server worker --burst`` in its own process, as an operator runs it."""
    from app.jobs.queue import settings_env

    env = {**os.environ, **settings_env(settings)}
    cmd = [sys.executable, "-m", "app.cli", "worker", "--burst"]
    with log.open("w") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def demo_visits(n_sessions: int) -> list[dict[str, Any]]:
    """Clicks of the first visits of the demo shop's training part, as the shop would post them."""
    from training.data.demo import demo_dataset

    ds = demo_dataset()
    train = ds.parts["train"]
    events = []
    for s in range(n_sessions):
        lo, hi = train.offsets[s], train.offsets[s + 1]
        for row in train.items[lo:hi]:
            events.append({"session_id": f"shop-{s}", "item_id": int(ds.items.ids[row])})
    return events


def test_a_retrain_from_the_dashboard_ends_with_a_new_current_version(
    settings: Settings, model_dir: Path, browser: Any, page: Any, figures: Path, tmp_path: Path
) -> None:
    """Embedded, the API process runs the job in a child; with Redis, a worker takes it."""
    old = current_version(model_dir)
    worker, worker_log = None, tmp_path / "worker.log"
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url, timeout=30) as api:
        events = demo_visits(600)
        for lo in range(0, len(events), 1000):
            assert api.post("/v1/events/batch", json={"events": events[lo : lo + 1000]}).is_success

        page.goto(srv.url + "/dashboard")
        page.wait_for_selector("#token")
        loaded = load_figures(page)
        page.fill("#token", TOKEN)
        page.press("#token", "Enter")
        page.wait_for_selector(f'#models-table tr[data-version="{old}"][data-current="true"]')
        assert page.text_content("#serving") == old
        page.wait_for_selector('#routes tr[data-route="POST /v1/events/batch"]')
        # the dashboard's own reading, between two refreshes: latency "now" is measured
        page.wait_for_function(
            "() => /^[0-9.]+$/.test(document.querySelector("
            '\'#routes tr[data-route="GET /admin/metrics/summary"] td[data-p="50"]\')'
            "?.textContent)"
        )

        page.select_option("#retrain-model", "gru4rec")
        page.fill("#retrain-params", json.dumps({"n_epochs": 1, "layers": [16]}))
        page.fill("#retrain-support", "1")
        page.fill("#retrain-gate", "0")
        page.click("#retrain-form button[type=submit]")
        if not settings.embedded:
            page.wait_for_selector('#job-live[data-state="queued"]')
            worker = start_worker(settings, worker_log)  # works off the queue, then exits
        page.wait_for_selector('#job-live[data-state="running"]', timeout=180_000)
        stages, shot = set(), False
        deadline = time.monotonic() + RETRAIN_TIMEOUT_S
        while page.get_attribute("#job-live", "data-state") not in (
            "succeeded",
            "rejected",
            "failed",
        ):
            assert time.monotonic() < deadline, f"the retrain did not finish: {stages}"
            stages.add(page.text_content("#job-stage"))
            if (
                not shot
                and settings.embedded
                and page.text_content("#job-stage").startswith("train")
            ):
                page.screenshot(path=str(figures / "dashboard-during-retrain.png"), full_page=True)
                shot = True
            time.sleep(0.2)
        assert page.get_attribute("#job-live", "data-state") == "succeeded", (
            page.text_content("#job-result"),
            worker_log.read_text()[-3000:] if worker_log.exists() else "",
        )
        assert len(stages) >= 2, stages  # the stage was followed live
        new = current_version(model_dir)
        assert new != old
        assert page.text_content("#job-result") == f"Version {new} is now current."
        # the list marks the new version current and served by this process
        page.wait_for_selector(f'#models-table tr[data-version="{new}"][data-current="true"]')
        page.wait_for_function("v => document.querySelector('#serving').textContent === v", arg=new)
        assert page.locator('#models-table tr[data-current="true"]').count() == 1
        page.wait_for_selector(f'#processes-table tr[data-version="{new}"]')
        assert page.locator('#jobs-table tr[data-state="succeeded"]').count() == 1
        assert page.locator("#models-table tbody tr").first.get_attribute("data-version") == new
        if not shot and settings.embedded:
            page.screenshot(path=str(figures / "dashboard-during-retrain.png"), full_page=True)

        # roll back from the same table; the curve of the current version is shown
        page.click(f'#models-table tr[data-version="{old}"] button[data-action=activate]')
        page.wait_for_selector(f'#models-table tr[data-version="{old}"][data-current="true"]')
        assert current_version(model_dir) == old
        page.click(f'#models-table tr[data-version="{new}"] button[data-action=curve]')
        page.wait_for_function(
            "v => document.querySelector('#curve-img').alt.includes(v)"
            " && document.querySelector('#curve-img').naturalWidth > 100",
            arg=new,
        )
        assert loaded["other_origins"] == 0 and loaded["page_files"] == 4
        if settings.embedded:
            record(figures, "dashboard", cold_loads(browser, srv.url + "/dashboard", "#token"))
    if worker is not None:
        assert worker.wait(timeout=120) == 0, worker_log.read_text()[-3000:]


def test_a_wrong_token_is_refused(model_dir: Path, page: Any) -> None:
    with LiveServer(Settings(model_dir=model_dir, admin_token=TOKEN)) as srv:
        page.goto(srv.url + "/dashboard")
        page.fill("#token", "not-the-token")
        page.press("#token", "Enter")
        page.wait_for_selector("#auth-message:has-text('wrong admin token')")
        for section in ("#service", "#models", "#retrain", "#jobs"):
            assert page.is_hidden(section)
        assert page.locator("#models-table tbody tr").count() == 0
        assert page.evaluate("sessionStorage.length") == 0
        assert page.text_content("#serving") == "–"
        # the right one opens the board
        page.fill("#token", TOKEN)
        page.press("#token", "Enter")
        page.wait_for_selector("#models-table tbody tr[data-current='true']")
        assert page.text_content("#auth-message") == ""


def test_a_multi_interest_model_shows_which_interest_found_each_item(
    tmp_path: Path, page: Any
) -> None:
    from tests.app.support import item_id, write_comirec_checkpoint

    write_comirec_checkpoint(tmp_path)  # K = 4 interests, a catalog of 60 items
    with LiveServer(Settings(model_dir=tmp_path)) as srv:
        page.goto(srv.url + "/demo")
        wait_recs(page, 0)
        before = page.eval_on_selector_all("#recs li", "e => e.map(x => x.innerText)")
        assert before and all("popular" in line for line in before)  # no visit yet
        page.fill("#query", str(item_id(1))[:3])  # "100": items 1000 to 1009
        page.wait_for_function("() => document.querySelectorAll('#catalog li').length === 10")
        for k in range(4):
            page.locator("#catalog li").nth(k).locator("button[data-action=click]").click()
            wait_recs(page, k + 1)
        shown = page.eval_on_selector_all("#recs li", "e => e.map(x => x.innerText)")
        interests = {line.split("interest ")[1].split()[0] for line in shown}
        assert len(interests) >= 2, shown


def test_the_dashboard_shows_what_each_process_serves_and_rolls_back(
    model_dir: Path, page: Any, redis_url: str, redis_prefix: str
) -> None:
    """Two API processes on one Redis: both listed; a roll-back reaches both."""
    from tests.app.support import write_tiny_checkpoint

    trained = current_version(model_dir)
    time.sleep(1.1)  # versions are named by the second
    newer = write_tiny_checkpoint(model_dir)  # activated: what both start on
    s = Settings(
        model_dir=model_dir,
        admin_token=TOKEN,
        redis_url=redis_url,
        key_prefix=redis_prefix,
        model_poll_seconds=0.3,
    )
    with LiveServer(s) as a, LiveServer(s) as b:
        page.goto(a.url + "/dashboard")
        page.fill("#token", TOKEN)
        page.press("#token", "Enter")
        page.wait_for_function(
            "() => document.querySelectorAll('#processes-table tbody tr').length === 2"
        )
        assert page.locator(f'#processes-table tr[data-version="{newer}"]').count() == 2
        assert "by 2 of 2 processes" in page.inner_text(f'#models-table tr[data-version="{newer}"]')
        page.click(f'#models-table tr[data-version="{trained}"] button[data-action=activate]')
        page.wait_for_selector(f'#models-table tr[data-version="{trained}"][data-current="true"]')
        assert "every API process was told" in page.text_content("#models-message")
        page.wait_for_function(
            "v => document.querySelectorAll(`#processes-table tr[data-version='${v}']`)"
            ".length === 2",
            arg=trained,
            timeout=15_000,
        )
        assert b.registry.active.version == trained

        # a retrain queued elsewhere (a script, another tab) is followed live as well
        queued = httpx.post(
            f"{b.url}/admin/retrain", json={}, headers={"Authorization": f"Bearer {TOKEN}"}
        ).json()
        page.wait_for_selector(f'#jobs-table tr[data-job-id="{queued["job_id"]}"]')
        page.wait_for_selector('#job-live[data-state="queued"]')
        assert page.text_content("#job-id") == queued["job_id"]


def test_the_demo_page_works_from_the_keyboard(model_dir: Path, page: Any) -> None:
    """Tab order follows the page; search, then click an item, without the mouse."""
    with LiveServer(Settings(model_dir=model_dir)) as srv:
        page.goto(srv.url + "/demo")
        wait_recs(page, 0)

        def focused() -> str:
            return page.evaluate(
                "() => document.activeElement.id || document.activeElement.textContent.trim()"
            )

        page.keyboard.press("Tab")
        assert focused() == "Skip to the recommendations"
        page.keyboard.press("Tab")
        assert focused() == "Operator dashboard"
        page.keyboard.press("Tab")
        assert focused() == "query"
        page.keyboard.type("77")
        page.wait_for_selector('#catalog li[data-item-id="77"]')
        page.wait_for_function(  # 77, 177, ..., 977 and 770 to 779
            "() => [...document.querySelectorAll('#catalog li')].map(e => e.dataset.itemId)"
            ".every(i => i.includes('77'))"
        )
        assert page.text_content("#catalog-count") == "Items 1–19 of 19"
        for expected in ("category", "order", "Item 77"):
            page.keyboard.press("Tab")
            assert focused() == expected
        page.keyboard.press("Enter")
        wait_recs(page, 1)
        assert page.locator("#visit li").inner_text().startswith("Item 77")
        page.keyboard.press("Tab")
        assert focused() == "Similar"
        page.keyboard.press("Enter")
        page.wait_for_selector('#similar[data-item-id="77"] li')


def test_the_demo_page_asks_for_the_shop_key_when_the_service_wants_one(
    model_dir: Path, page: Any
) -> None:
    key = "demo-shop-key-0123456789"
    with LiveServer(Settings(model_dir=model_dir, api_key=key)) as srv:
        page.goto(srv.url + "/demo")
        page.wait_for_selector("#key-form:not([hidden])")
        assert page.is_visible("#key-form") and page.is_visible("#api-key")
        assert page.text_content("#message").startswith("401")
        assert page.locator("#recs li").count() == 0
        page.fill("#api-key", "not-the-shop-key-at-all")
        page.press("#api-key", "Enter")
        page.wait_for_selector("#message:has-text('403')")
        assert page.is_visible("#key-form")
        page.fill("#api-key", key)
        page.press("#api-key", "Enter")
        wait_recs(page, 0)
        assert page.is_hidden("#key-form") and page.text_content("#message") == ""
        page.locator("#catalog li").first.locator("button[data-action=click]").click()
        wait_recs(page, 1)
        assert page.locator("#category option").count() == 21  # "all" and 20, listed once
