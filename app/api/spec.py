"""The OpenAPI document of one application: FastAPI's, completed with what depends on the
settings the application was built with and with the answers given before any handler runs.

Why: the document must say exactly what the server accepts and answers, so that a client
generated from it, or a fuzzer holding the server to it (``make test-faults``), finds no
difference. FastAPI builds the document from routers declared once for every configuration;
the parts below are the ones a route cannot know:

- the bounds that are settings: ``n`` at most ``max_n``, a batch of at most
  ``max_batch_events`` events, a stateless request of at most ``max_request_items`` items,
  an item lookup of at most ``max_n`` ids (413 above the list bounds, 422 above ``max_n``);
- the shop's API key: required on ``/v1`` only when the service has one
  (``NEXTITEM_API_KEY``), and then with its 401 and 403;
- the answers to a body before its route reads it: 413 above ``max_body_bytes``
  (``app.api.middleware``), 400 for a body that is not text (not UTF-8, FastAPI's parser);
- a parameter that may be left out is not ``null``: a query string has no null, and a
  ``true`` the document allowed as "not an array" would still be the text "true";
- integer bounds as exact integers: FastAPI's document model holds every bound as a float,
  and ``2**63 - 1`` as a float is ``2**63``.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI

from app.api.shop_key import shop_keys
from app.settings import Settings

_PROBLEM = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the completed document at ``/openapi.json`` (and ``/docs``), built once."""
    build = app.openapi  # FastAPI's own

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = build()
            complete(spec, settings)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(spec: dict[str, Any], settings: Settings) -> None:
    """Complete FastAPI's document in place (see the module's docstring)."""
    _settings_bounds(spec, settings)
    if not shop_keys(settings):
        _no_shop_key(spec)
    _body_answers(spec, settings.max_body_bytes)
    _parameters_not_null(spec)
    _exact_integer_bounds(spec)


def _operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for path in spec["paths"].values() for m, op in path.items() if m in _METHODS]


def _array(schema: dict[str, Any]) -> dict[str, Any]:
    """The array branch of a list that may be null (``anyOf: [array, null]``), or the list."""
    return next((s for s in schema.get("anyOf", []) if s.get("type") == "array"), schema)


def _settings_bounds(spec: dict[str, Any], settings: Settings) -> None:
    for op in _operations(spec):
        for param in op.get("parameters", []):
            if param["in"] == "query" and param["name"] == "n":
                param["schema"]["maximum"] = settings.max_n
            elif param["in"] == "query" and param["name"] == "ids":
                _array(param["schema"])["maxItems"] = settings.max_n
    schemas = spec["components"]["schemas"]
    schemas["StatelessRequest"]["properties"]["n"]["maximum"] = settings.max_n
    schemas["StatelessRequest"]["properties"]["items"]["maxItems"] = settings.max_request_items
    schemas["EventBatch"]["properties"]["events"]["maxItems"] = settings.max_batch_events


def _parameters_not_null(spec: dict[str, Any]) -> None:
    """``anyOf: [X, null]`` of an optional parameter (``list[str] | None = None``) becomes X."""
    for op in _operations(spec):
        for param in op.get("parameters", []):
            schema = param["schema"]
            branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
            if len(branches) == 1 and len(schema["anyOf"]) == 2:
                del schema["anyOf"]
                schema.update(branches[0])


def _no_shop_key(spec: dict[str, Any]) -> None:
    """Without a key ``/v1`` is open: no security requirement, no 401 or 403."""
    for op in _operations(spec):
        if op.get("security") == [{"ShopApiKey": []}]:
            del op["security"]
            op["responses"].pop("401", None)
            op["responses"].pop("403", None)
    spec["components"].get("securitySchemes", {}).pop("ShopApiKey", None)


def _body_answers(spec: dict[str, Any], max_body_bytes: int) -> None:
    for op in _operations(spec):
        if "requestBody" not in op:
            continue
        responses = op["responses"]
        responses.setdefault(
            "400", {"description": "the body is not text (not UTF-8)", "content": _PROBLEM}
        )
        too_large = f"the body is larger than {max_body_bytes} bytes"
        if "413" in responses:
            responses["413"]["description"] = f"{too_large}, or {responses['413']['description']}"
        else:
            responses["413"] = {"description": too_large, "content": _PROBLEM}


def _exact_integer_bounds(node: Any) -> None:
    """Every bound of an ``integer`` schema as an inclusive integer, throughout ``node``.

    The bounds come back exact only when their floats are: ``ItemId`` writes its int64
    bounds as ``-2**63 <= id < 2**63``, powers of two, which become ``minimum -2**63``
    and ``maximum 2**63 - 1`` here.
    """
    if isinstance(node, list):
        for child in node:
            _exact_integer_bounds(child)
        return
    if not isinstance(node, dict):
        return
    if node.get("type") == "integer":
        if "exclusiveMinimum" in node:
            node["minimum"] = math.floor(node.pop("exclusiveMinimum")) + 1
        if "exclusiveMaximum" in node:
            node["maximum"] = math.ceil(node.pop("exclusiveMaximum")) - 1
        if "minimum" in node:
            node["minimum"] = math.ceil(node["minimum"])
        if "maximum" in node:
            node["maximum"] = math.floor(node["maximum"])
    for child in node.values():
        _exact_integer_bounds(child)
