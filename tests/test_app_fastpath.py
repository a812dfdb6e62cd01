"""The recommendations fast path: it reads only plainly written requests, and for those it
answers exactly as the FastAPI route does (the route handles everything else)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_app_support import LiveServer, item_id, write_tiny_checkpoint

from app.fastpath import plain_query
from app.service import Query
from app.settings import Settings


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
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("nextitem_request_seconds_count") and label in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0
