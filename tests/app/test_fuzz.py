"""Schema fuzzing: schemathesis sends generated (valid and invalid) requests to every endpoint of
the OpenAPI spec of a live server; no answer may be a 5xx, and answers must match the spec."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from app.main import create_app
from app.settings import Settings
from tests.app.support import LiveServer, write_tiny_checkpoint


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    model_dir: Path = tmp_path_factory.mktemp("fuzz") / "models"
    write_tiny_checkpoint(model_dir)
    with LiveServer(Settings(model_dir=model_dir)) as srv:
        yield srv


# The spec does not depend on settings or model: build it once, without serving.
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, live_api: LiveServer) -> None:
    case.call_and_validate(
        base_url=live_api.url, checks=[not_a_server_error, response_schema_conformance]
    )
