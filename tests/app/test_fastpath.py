"""The fast path: it reads only plainly written recommendation requests and events, and for
those it answers exactly as the FastAPI routes do (the routes handle everything else)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.api.fast_path import plain_event, plain_query
from app.serving.service import Query
from app.settings import Settings
from tests.app.support import LiveServer, free_port, item_id, write_tiny_checkpoint


@pytest.mark.parametrize(
    ("qs", "expected"),
    [
        (b"", Query(20, 0.0, True)),
        (b"n=5", Query(5, 0.0, True)),
        (b"n=5&diversity=0.15&exclude_seen=false", Query(5, 0.15, False)),
        (b"exclude_seen=0&n=100", Query(100, 0.0, False)),
        (b"diversity=10&exclude_seen=1", Query(20, 10.0, True)),
        (b"n=007", Query(7, 0.0, True)),
    ],
)
def test_plain_queries_are_read(qs: bytes, expected: Query) -> None:
    assert plain_query(qs, max_n=100) == expected


@pytest.mark.parametrize(
    "qs",
    [
        b"n=0",  # below the route's ge=1
        b"n=101",  # above max_n: the route gives the 422
        b"n=5&n=6",  # repeated
        b"n",  # no value
        b"n=",  # empty value
        b"n=%35",  # percent-encoded: left to the framework's parser
        b"n=+5",
        b"n=5.0",
        b"diversity=10.5",  # above le=10
        b"diversity=-0.1",
        b"diversity=1e-1",
        b"diversity=.5",
        b"exclude_seen=yes",  # pydantic reads it; the fast path leaves it to pydantic
        b"exclude_seen=True",
        b"page=2",  # unknown parameter
        b"n=5&",
    ],
)
def test_anything_else_goes_to_the_route(qs: bytes) -> None:
    assert plain_query(qs, max_n=100) is None


@pytest.fixture(scope="module")
def twin_servers(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, module_redis_prefix: str
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """The same model and Redis sessions served with and without the fast path."""
    model_dir: Path = tmp_path_factory.mktemp("fastpath") / "models"
    write_tiny_checkpoint(model_dir)
    base = {"model_dir": model_dir, "redis_url": redis_url, "key_prefix": module_redis_prefix}
    with (
        LiveServer(Settings(**base, fast_path=True)) as fast,
        LiveServer(Settings(**base, fast_path=False)) as slow,
        httpx.Client(base_url=fast.url) as a,
        httpx.Client(base_url=slow.url) as b,
    ):
        for click in (3, 17, 42, 8, 17):
            ack = a.post("/v1/events", json={"session_id": "v1", "item_id": item_id(click)})
            assert ack.status_code == 202
        # the flags must matter for this visit, or a misread flag would go unseen
        answers = [
            a.get("/v1/sessions/v1/recommendations", params=p).json()["items"]
            for p in ({}, {"exclude_seen": "false"}, {"diversity": "0.5"})
        ]
        assert answers[0] != answers[1] and answers[0] != answers[2]
        yield a, b


def _same_answer(qs: str, twins: tuple[httpx.Client, httpx.Client], session: str = "v1") -> int:
    fast, slow = (c.get(f"/v1/sessions/{session}/recommendations?{qs}") for c in twins)
    assert fast.status_code == slow.status_code, (qs, fast.text, slow.text)
    assert fast.json() == slow.json(), qs
    assert fast.headers["content-type"] == slow.headers["content-type"]
    return fast.status_code


@pytest.mark.parametrize(
    "qs",
    [
        "",
        "n=3",
        "n=3&diversity=0.2",
        "n=3&exclude_seen=false",
        "n=1000",
        "n=0",
        "n=abc",
        "diversity=11",
        "exclude_seen=maybe",
        "n=4&n=5",
        "exclude_seen=yes&n=2",
    ],
)
def test_fast_path_answers_as_the_route(
    qs: str, twin_servers: tuple[httpx.Client, httpx.Client]
) -> None:
    _same_answer(qs, twin_servers)


def test_fast_path_answers_new_sessions_and_odd_ids_as_the_route(
    twin_servers: tuple[httpx.Client, httpx.Client],
) -> None:
    assert _same_answer("n=4", twin_servers, session="never-seen") == 200
    assert _same_answer("n=4", twin_servers, session="%C3%A9t%C3%A9%20x") == 200  # "été x"
    assert _same_answer("n=4", twin_servers, session="x" * 129) == 422
    assert _same_answer("n=4", twin_servers, session="a%01b") == 422  # a control character


_ODD = ["", "%31", "abc", "-1", "+2", "1e1", " 1"]
_PARAM = st.one_of(
    st.tuples(st.just("n"), st.sampled_from(["0", "1", "7", "007", "100", "101", "2.0", *_ODD])),
    st.tuples(
        st.just("diversity"),
        st.sampled_from(["0", "0.1", ".5", "1.", "10", "10.0", "10.01", "0.05", *_ODD]),
    ),
    st.tuples(
        st.just("exclude_seen"),
        st.sampled_from(["true", "false", "1", "0", "True", "FALSE", "yes", "off", "t", *_ODD]),
    ),
    st.tuples(st.sampled_from(["N", "x", "n[]"]), st.sampled_from(["1", ""])),
)
_PARAMS = st.lists(_PARAM, max_size=3)


@given(params=_PARAMS)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_query_gets_the_routes_answer(
    params: list[tuple[str, str]], twin_servers: tuple[httpx.Client, httpx.Client]
) -> None:
    _same_answer("&".join(f"{k}={v}" for k, v in params), twin_servers)


def test_fast_path_is_timed_under_the_routes_name(
    twin_servers: tuple[httpx.Client, httpx.Client],
) -> None:
    fast, _ = twin_servers
    before = _served(fast)
    for _ in range(3):
        assert fast.get("/v1/sessions/v1/recommendations?n=2").status_code == 200
    assert _served(fast) == before + 3


def _served(client: httpx.Client) -> float:
    label = 'route="/v1/sessions/{session_id}/recommendations",status="200"'
    return _metric(client, "nextitem_request_seconds_count", label)


def _metric(client: httpx.Client, name: str, label: str = "") -> float:
    """A sample of the served metrics (0 before its first observation)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith((f"{name} ", f"{name}{{")) and label in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


# ---- events -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"session_id": "s", "item_id": 42}',
        b'{"session_id": "s", "item_id": "42", "event_type": "cart", "event_id": "e1"}',
        b'{"session_id": "s", "item_id": 1, "timestamp": 1700000000.5}',
        b'{"session_id": "s", "item_id": 1, "timestamp": "2026-11-23T10:00:00Z"}',
        b'{"session_id": "s", "item_id": 4.0}',
    ],
)
def test_valid_events_are_read(body: bytes) -> None:
    event = plain_event(body)
    assert event is not None and event.session_id == "s"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"[]",
        b'"s"',
        b"\xff\xfe",
        b'{"session_id": "s"}',  # no item
        b'{"session_id": "s", "item_id": 4.5}',  # a fraction is no item id (4.0 is item 4)
        b'{"session_id": "s", "item_id": 1, "timestamp": "2026-11-23T10:00:00"}',  # no offset
        b'{"session_id": "s", "item_id": 1, "extra": 1}',
        b'{"session_id": "a\\u0001b", "item_id": 1}',  # a control character
        b'{"session_id": "s", "item_id": 1, "event_type": "like"}',
    ],
)
def test_invalid_events_go_to_the_route(body: bytes) -> None:
    assert plain_event(body) is None


@pytest.fixture(scope="module")
def event_twins(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, module_redis_prefix: str
) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Servers with and without the fast path, each with its own sessions (a repeated
    event id must be new to both)."""
    model_dir: Path = tmp_path_factory.mktemp("fastpath-events") / "models"
    write_tiny_checkpoint(model_dir)
    base = {"model_dir": model_dir, "redis_url": redis_url}
    with (
        LiveServer(Settings(**base, key_prefix=f"{module_redis_prefix}:f", fast_path=True)) as f,
        LiveServer(Settings(**base, key_prefix=f"{module_redis_prefix}:s", fast_path=False)) as s,
        httpx.Client(base_url=f.url) as a,
        httpx.Client(base_url=s.url) as b,
    ):
        yield a, b


def _same_ack(
    body: bytes, twins: tuple[httpx.Client, httpx.Client], headers: dict[str, str] | None = None
) -> int:
    headers = {"content-type": "application/json"} if headers is None else headers
    fast, slow = (c.post("/v1/events", content=body, headers=headers) for c in twins)
    assert fast.status_code == slow.status_code, (body, fast.text, slow.text)
    assert fast.json() == slow.json(), body
    assert fast.headers["content-type"] == slow.headers["content-type"]
    return fast.status_code


def _visit(client: httpx.Client, session: str) -> tuple[int, list[str]]:
    view = client.get(f"/v1/sessions/{session}")
    if view.status_code == 404:
        return 0, []
    return view.json()["n_events"], view.json()["items"]


def test_fast_path_logs_events_as_the_route(event_twins: tuple[httpx.Client, httpx.Client]) -> None:
    fast, slow = event_twins
    clicks = [
        {"session_id": "ev1", "item_id": item_id(3)},
        {"session_id": "ev1", "item_id": str(item_id(5)), "event_id": "x1"},
        {"session_id": "ev1", "item_id": item_id(7), "event_id": "x1"},  # a repeat: not appended
        {"session_id": "ev1", "item_id": "not-in-catalog", "event_type": "purchase"},
    ]
    statuses = []
    for click in clicks:
        assert _same_ack(json.dumps(click).encode(), event_twins) == 202
        again = {k: f"{v}-2" if k in ("session_id", "event_id") else v for k, v in click.items()}
        statuses.append(fast.post("/v1/events", json=again).json())
    assert [s["status"] for s in statuses] == ["logged", "logged", "duplicate", "logged"]
    assert [s["known_item"] for s in statuses] == [True, True, True, False]
    items = [str(item_id(3)), str(item_id(5)), "not-in-catalog"]
    assert _visit(fast, "ev1") == _visit(slow, "ev1") == (3, items)
    assert _visit(fast, "ev1-2") == (3, items)


def test_fast_path_leaves_odd_requests_to_the_route(
    event_twins: tuple[httpx.Client, httpx.Client],
) -> None:
    body = json.dumps({"session_id": "odd", "item_id": item_id(2)}).encode()
    # no content type, another JSON type, a form type: the route decides
    for headers in (
        {},
        {"content-type": "application/json; charset=utf-8"},
        {"content-type": "text/plain"},
    ):
        _same_ack(body, event_twins, headers=headers)
    # a chunked body (no Content-Length)
    fast, slow = (
        [
            c.post(
                "/v1/events",
                content=iter([body[:9], body[9:]]),
                headers={"content-type": "application/json"},
            )
        ]
        for c in event_twins
    )
    assert fast[0].status_code == slow[0].status_code == 202
    # a body too large for an event, but under the service's limit
    big = json.dumps({"session_id": "odd", "item_id": item_id(2), "pad": "x" * 5000}).encode()
    assert _same_ack(big, event_twins) == 422
    assert _visit(event_twins[0], "odd") == _visit(event_twins[1], "odd")


_TEXT = st.sampled_from(["s", "vis-1", "", "a\u0001b", "x" * 129, "été", 7, None, 1.5, True, [1]])
_EVENT = st.fixed_dictionaries(
    {},
    optional={
        "session_id": _TEXT,
        "item_id": st.one_of(
            _TEXT, st.sampled_from([item_id(1), str(item_id(2)), float(item_id(3)), -1, 2**63])
        ),
        "timestamp": st.sampled_from(
            [0, 1.7e9, "2026-11-23T10:00:00Z", "2026-11-23T10:00:00", "yesterday", None, -1e20]
        ),
        "event_type": st.sampled_from(["view", "cart", "purchase", "VIEW", None, 1]),
        "event_id": _TEXT,
        "extra": st.just(1),
    },
)
_BODY = st.one_of(
    _EVENT.map(lambda e: json.dumps(e).encode()),
    st.sampled_from([b"", b"{", b"[]", b"null", b"\xff", b'{"session_id": "s", "session_id": 1}']),
)


@given(body=_BODY)
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_event_body_gets_the_routes_answer(
    body: bytes, event_twins: tuple[httpx.Client, httpx.Client]
) -> None:
    _same_ack(body, event_twins)


def test_fast_path_events_are_timed_under_the_routes_name(
    event_twins: tuple[httpx.Client, httpx.Client],
) -> None:
    fast, _ = event_twins
    label = 'method="POST",route="/v1/events",status="202"'
    before = _metric(fast, "nextitem_request_seconds_count", label)
    for _ in range(3):
        assert fast.post("/v1/events", json={"session_id": "m", "item_id": 1}).status_code == 202
    assert _metric(fast, "nextitem_request_seconds_count", label) == before + 3


def test_store_down_gives_the_routes_503(tmp_path: Path) -> None:
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    nobody = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    base = {"model_dir": model_dir, "redis_url": nobody, "retry_after_seconds": 3}
    with (
        LiveServer(Settings(**base, fast_path=True)) as f,
        LiveServer(Settings(**base, fast_path=False)) as s,
        httpx.Client(base_url=f.url) as a,
        httpx.Client(base_url=s.url) as b,
    ):
        body = json.dumps({"session_id": "s", "item_id": item_id(1)}).encode()
        assert _same_ack(body, (a, b)) == 503
        down = a.post("/v1/events", content=body, headers={"content-type": "application/json"})
        assert down.headers["retry-after"] == "3"
        assert down.content == b.post("/v1/events", json=json.loads(body)).content


def test_scoring_metrics_are_served(twin_servers: tuple[httpx.Client, httpx.Client]) -> None:
    fast, _ = twin_servers
    before = [_metric(fast, f"nextitem_scorer_batch_jobs_{s}") for s in ("count", "sum")]
    busy = _metric(fast, "nextitem_scorer_busy_seconds_total")
    for _ in range(3):  # one after another: three batches of one job
        assert fast.get("/v1/sessions/v1/recommendations?n=2").status_code == 200
    after = [_metric(fast, f"nextitem_scorer_batch_jobs_{s}") for s in ("count", "sum")]
    assert after == [before[0] + 3, before[1] + 3]
    assert _metric(fast, "nextitem_scorer_busy_seconds_total") > busy
