"""Conformance: schemathesis over the whole OpenAPI document of a live server, with every check
(``st run --checks all``), admin calls with the token, the shop's key when the service has one.

No answer may be a 5xx but a documented 503, every answer must be as the document says (status,
headers, content type, body), every request the document allows must be accepted and every one
it refuses refused (``Allow`` of a 405 included): the document says what the server accepts.

The default run sends some thousand cases per configuration in well under a minute; the
``faults`` suite (``make test-faults``) sends several thousand, with a new seed each run. The
fuzzer runs as a program (its command line, as an operator would run it) against a server in
this process. Retrains are accepted as the API accepts them, and then the job fails at once,
untrained (``FailingQueue``): the API's side of a retrain is what is tested here.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.jobs.store import JobStore
from app.settings import Settings
from tests.app.support import LiveServer, write_tiny_checkpoint

ADMIN_TOKEN = "conformance-admin-token"
SHOP_KEY = "conformance-shop-key-0123"
#: the two configurations a shop meets: /v1 open (the embedded default), or behind its key
CONFIGS = {"open": None, "shop-key": SHOP_KEY}
#: the default run's seed: the same cases every run
SEED = 20261207

# What the checks count as right, where schemathesis's defaults do not know this API.
CHECKS = """
[checks.negative_data_rejection]
# the defaults, and 413: a list over its bound (the document's maxItems) is refused as too large
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]

[checks.not_a_server_error]
# a 503 is an answer (no model yet, a bound reached); status_code_conformance holds it to the
# document, so an undocumented 503 still fails
expected-statuses = ["2xx", "3xx", "4xx", "503"]

[phases.stateful.inference]
# links from the responses' fields only, not from URLs found in bodies: the metrics summary lists
# route templates ("/admin/jobs/{job_id}"), which would become links sending the template itself
algorithms = ["dependency-analysis"]
"""


class FailingQueue:
    """A retrain queue whose jobs fail at once, untrained (as a worker that could not train)."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def enqueue(self, job_id: str) -> None:
        self.store.update(job_id, state="failed", finished=time.time(), error="not trained")

    def failure(self, job_id: str) -> str | None:
        return None

    def close(self) -> None:
        pass


@dataclass
class Run:
    """What one schemathesis run found."""

    config: str  # "open" or "shop-key"
    seed: int
    cases: int
    failures: dict[str, int]  # by check, e.g. "ST202 Schema-valid request rejected": 2
    errors: int
    statuses: Counter[int]  # the answers the fuzzer got
    output: str  # its report, for the reader of a failure

    def summary(self) -> str:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"{self.config}: {self.cases} cases (seed {self.seed}), failures {self.failures or 0}, "
            f"errors {self.errors}; statuses {statuses}"
        )


def serve(config: str, tmp_path: Path) -> Iterator[LiveServer]:
    model_dir = tmp_path / "models"
    write_tiny_checkpoint(model_dir)
    settings = Settings(model_dir=model_dir, admin_token=ADMIN_TOKEN, api_key=CONFIGS[config])
    with LiveServer(settings) as srv:
        srv.app.state.job_queue.close()
        srv.app.state.job_queue = FailingQueue(srv.app.state.jobs)
        yield srv


@pytest.fixture(params=list(CONFIGS))
def live_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    yield from serve(request.param, tmp_path)


def fuzz(srv: LiveServer, max_examples: int, seed: int, out: Path) -> Run:
    """``st run --checks all`` over the server's document; what it found."""
    config = out / "schemathesis.toml"
    config.write_text(CHECKS)
    headers = [f"Authorization: Bearer {ADMIN_TOKEN}"]
    key = srv.app.state.settings.api_key
    if key is not None:
        headers.append(f"X-API-Key: {key.get_secret_value()}")
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config),
        "run", f"{srv.url}/openapi.json",
        "--checks", "all",
        "--max-examples", str(max_examples),
        "--seed", str(seed),
        "--workers", "1",
        "--continue-on-failure",
        "--report", "json,har",
        "--report-json-path", str(out / "report.json"),
        "--report-har-path", str(out / "answers.har"),
        *[arg for h in headers for arg in ("--header", h)],
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=out, timeout=3000)
    output = done.stdout + done.stderr
    assert (out / "report.json").exists(), output[-5000:]
    report = json.loads((out / "report.json").read_text())
    entries = json.loads((out / "answers.har").read_text())["log"]["entries"]
    return Run(
        config="open" if key is None else "shop-key",
        seed=seed,
        cases=report["test_cases"]["generated"],
        failures={f"{f['code']} {f['title']}": f["count"] for f in report["failures"]},
        errors=len(report["errors"]) + report["test_cases"]["errored"],
        statuses=Counter(e["response"]["status"] for e in entries),
        output=output,
    )


def check(run: Run, min_cases: int) -> None:
    """No check failed, nothing errored, no 5xx but 503s, and enough cases to mean something."""
    print(run.summary())
    assert not run.failures and not run.errors, f"{run.summary()}\n{run.output[-20000:]}"
    assert {s for s in run.statuses if s >= 500} <= {503}, run.summary()
    assert run.cases >= min_cases, run.summary()
    # not a run against a server that refuses everything: most kinds of answer were seen
    assert {200, 202, 204, 404, 405, 422} <= set(run.statuses), run.summary()


def test_the_server_is_what_its_document_says(live_api: LiveServer, tmp_path: Path) -> None:
    assert httpx.get(f"{live_api.url}/readyz").status_code == 200  # a model answers
    check(fuzz(live_api, max_examples=10, seed=SEED, out=tmp_path), min_cases=500)


@pytest.mark.faults
def test_many_cases_find_no_difference(live_api: LiveServer, tmp_path: Path) -> None:
    """The same with many more cases and a new seed each run (a failure names its seed)."""
    assert httpx.get(f"{live_api.url}/readyz").status_code == 200
    seed = random.randrange(2**32)
    check(fuzz(live_api, max_examples=150, seed=seed, out=tmp_path), min_cases=1000)
