"""The OpenAPI document says what the server accepts: the parts the conformance suite
(``test_fuzz.py``) found missing, each held here on its own (``app.api.spec``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from app.main import create_app
from app.schemas import STORED, UNIX_MAX, Event, JobRecord, RetrainRequest, StatelessRequest
from app.settings import Settings
from tests.app.support import LiveServer, item_id, write_tiny_checkpoint


def spec_of(**settings: Any) -> dict[str, Any]:
    return create_app(Settings(**settings)).openapi()


def _walk(node: Any) -> list[dict[str, Any]]:
    """Every object of a JSON document."""
    if isinstance(node, list):
        return [d for child in node for d in _walk(child)]
    if isinstance(node, dict):
        return [node, *(d for child in node.values() for d in _walk(child))]
    return []


def test_the_bounds_are_the_settings_the_app_was_built_with() -> None:
    spec = spec_of(max_n=37, max_batch_events=9, max_request_items=11)
    paths, schemas = spec["paths"], spec["components"]["schemas"]
    for path in ("/v1/sessions/{session_id}/recommendations", "/v1/items/{item_id}/similar"):
        (n,) = [p for p in paths[path]["get"]["parameters"] if p["name"] == "n"]
        assert n["schema"]["maximum"] == 37, path
    (ids,) = [p for p in paths["/v1/items"]["get"]["parameters"] if p["name"] == "ids"]
    assert ids["schema"]["type"] == "array" and ids["schema"]["maxItems"] == 37
    assert schemas["StatelessRequest"]["properties"]["n"]["maximum"] == 37
    assert schemas["StatelessRequest"]["properties"]["items"]["maxItems"] == 11
    assert schemas["EventBatch"]["properties"]["events"]["maxItems"] == 9
    # another app, other settings, another document
    assert (
        spec_of()["components"]["schemas"]["StatelessRequest"]["properties"]["n"]["maximum"] == 100
    )


def test_bounds_are_json_schema_keywords_and_integers_exact() -> None:
    """Pydantic writes a bound it cannot place as its own keyword (``ge``), which no client
    reads; FastAPI writes integer bounds as floats (``2**63 - 1`` would be ``2**63``)."""
    spec = spec_of()
    for node in _walk(spec):
        assert not {"ge", "gt", "le", "lt"} & set(node), node
        if node.get("type") == "integer":
            assert "exclusiveMinimum" not in node and "exclusiveMaximum" not in node, node
            assert all(type(node[k]) is int for k in ("minimum", "maximum") if k in node), node
    (integer,) = [
        b
        for b in spec["components"]["schemas"]["Event"]["properties"]["item_id"]["anyOf"]
        if b["type"] == "integer"
    ]
    assert (integer["minimum"], integer["maximum"]) == (-(2**63), 2**63 - 1)
    assert Event(session_id="s", item_id=2**63 - 1).item_id == 2**63 - 1
    with pytest.raises(ValidationError):
        Event(session_id="s", item_id=2**63)


def test_every_body_may_be_too_large_or_not_text() -> None:
    spec = spec_of(max_body_bytes=4096)
    bodies = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if "requestBody" in op:
                bodies += 1
                assert {"400", "413"} <= set(op["responses"]), (method, path)
                assert "4096 bytes" in op["responses"]["413"]["description"]
    assert bodies == 4  # events, batch, stateless recommendations, retrain


def test_the_shop_key_is_in_the_document_when_the_service_has_one() -> None:
    """Without a key /v1 is open, and its document says so (test_shop_key.py: with one)."""
    spec = spec_of()
    assert "ShopApiKey" not in spec["components"].get("securitySchemes", {})
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if path.startswith("/v1/"):
                assert "security" not in op and not {"401", "403"} & set(op["responses"]), (
                    method,
                    path,
                )


def test_parameters_are_never_null() -> None:
    for node in _walk(spec_of()["paths"]):
        if "in" in node and "schema" in node:
            assert {"type": "null"} not in node["schema"].get("anyOf", []), node


@pytest.mark.parametrize(
    "timestamp",
    [
        "2026-12-01T10:00:00Z",
        "2026-12-01t10:00:00.123456789z",
        "2026-12-01T10:00:00+05:30",
        "0001-01-01T00:00:00-23:59",
        0,
        1_700_000_000.5,
        1_700_000_000_000,  # above 2e10: milliseconds
        UNIX_MAX,
    ],
)
def test_timestamps_are_date_times_with_their_offset_or_unix_time(timestamp: Any) -> None:
    assert Event(session_id="s", item_id=1, timestamp=timestamp).timestamp is not None
    assert RetrainRequest(since=timestamp).since is not None


@pytest.mark.parametrize(
    "timestamp",
    [
        "2026-12-01T10:00:00",  # no offset: in whose time zone?
        "2026-12-01",
        "2026-12-01 10:00:00Z",
        "1700000000",  # a number written as text
        "yesterday",
        -1,
        UNIX_MAX + 1,
        True,
        float("nan"),
    ],
)
def test_other_times_are_refused(timestamp: Any) -> None:
    with pytest.raises(ValidationError, match="RFC 3339"):
        Event(session_id="s", item_id=1, timestamp=timestamp)
    with pytest.raises(ValidationError):
        RetrainRequest(since=timestamp)


def test_a_stored_job_record_is_read_as_it_was_written() -> None:
    """Records written before times needed an offset still read (``/admin/jobs`` lists them)."""
    record = {"job_id": "ab12", "state": "failed", "request": {"since": "2026-01-01T00:00:00"}}
    raw = json.dumps({**record, "created": 1.0})
    assert JobRecord.model_validate_json(raw, context=STORED).request.since is not None
    with pytest.raises(ValidationError):
        JobRecord.model_validate_json(raw)


@pytest.mark.parametrize(
    "body",
    [
        {"n": "5"},
        {"n": True},
        {"n": 5.5},
        {"diversity": "0.5"},
        {"diversity": False},
        {"exclude_seen": 0},
        {"exclude_seen": "false"},
        {"items": [True]},
        {"items": [1.5]},
    ],
)
def test_numbers_and_booleans_are_json_numbers_and_booleans(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        StatelessRequest.model_validate({"items": [1], **body})


def test_an_integral_number_is_an_integer_as_json_schema_says() -> None:
    request = StatelessRequest.model_validate({"items": [42.0, 7], "n": 3.0, "diversity": 1})
    assert (request.items, request.n, request.diversity) == ([42, 7], 3, 1.0)
    assert RetrainRequest.model_validate({"min_item_support": 2.0}).min_item_support == 2
    for wrong in ({"gate_ratio": False}, {"holdout_fraction": "0.1"}, {"min_item_support": "2"}):
        with pytest.raises(ValidationError):
            RetrainRequest.model_validate(wrong)


def test_over_http_answers_are_as_documented(tmp_path: Path) -> None:
    """405 names every method of the path, 400 for a body that is not text, 42.0 is item 42."""
    write_tiny_checkpoint(tmp_path)
    with LiveServer(Settings(model_dir=tmp_path)) as srv, httpx.Client(base_url=srv.url) as http:
        for method, path, allow in [
            ("OPTIONS", "/v1/sessions/s", "DELETE, GET"),
            ("PUT", "/v1/sessions/s", "DELETE, GET"),
            ("GET", "/v1/events", "POST"),
            ("DELETE", "/v1/sessions/s/recommendations", "GET"),
        ]:
            r = http.request(method, path)
            assert (r.status_code, r.headers["allow"]) == (405, allow), (method, path)
            assert r.json() == {"detail": "Method Not Allowed"}
        not_utf8 = b"\x80Q"
        r = http.post("/v1/events", content=not_utf8, headers={"content-type": "application/json"})
        assert r.status_code == 400 and "detail" in r.json()
        as_float = {"session_id": "f", "item_id": float(item_id(3))}
        assert http.post("/v1/events", json=as_float).json()["known_item"] is True
        assert http.get("/v1/sessions/f").json()["items"] == [str(item_id(3))]
