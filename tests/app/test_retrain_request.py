"""What a retrain request may ask for: only registered base datasets (never a file), and
hyperparameters within bounds (no run that outlasts the machine's memory or the day)."""

from __future__ import annotations

from pathlib import Path

import httpx
import jsonschema_rs  # comes with schemathesis (the dev extra)
import pytest

from app.jobs.params import CAPS, params_json_schema
from app.schemas import RetrainRequest
from app.settings import Settings
from tests.app.support import LiveServer, write_tiny_checkpoint
from training.retrain.holdout import dataset_events

AUTH = {"Authorization": "Bearer test-admin-token"}
#: the rules as the API spec states them
_PARAMS_SCHEMA = jsonschema_rs.validator_for(params_json_schema())
FILES = ["events:/etc/passwd", "parquet:../../secret.parquet", "/etc/passwd", "../data", "a/b"]


@pytest.mark.parametrize("spec", FILES)
def test_a_base_dataset_is_a_registered_name_never_a_file(spec: str) -> None:
    with pytest.raises(ValueError, match="base_dataset"):
        RetrainRequest(base_dataset=spec)


@pytest.mark.parametrize("name", ["diginetica", "yoochoose-100k", "ml-1m", "amazon-beauty"])
def test_registered_names_are_accepted(name: str) -> None:
    assert RetrainRequest(base_dataset=name).base_dataset == name


@pytest.mark.parametrize("spec", FILES[:2])
def test_the_trainer_refuses_a_file_too(spec: str) -> None:
    """The worker's child reads only registered datasets, whatever its config file says."""
    with pytest.raises(ValueError, match="registered"):
        dataset_events(spec, 0.0)


@pytest.mark.parametrize(
    "params",
    [
        {"n_epochs": 10**6},
        {"epochs": 10**5},
        {"max_iter": 10**9},
        {"layers": [10**6]},
        {"layers": [100] * 50},
        {"dim": 10**5},
        {"batch_size": 10**7},
        {"n_epochs": 0},
        {"lr": 1e300},
        {"loss": "x" * 1000},
        {"nested": {"n_epochs": 3}},
        {f"p{i}": 1 for i in range(40)},
        {"bad key!": 1},
        {"n_epochs\n": 1},  # a name is matched whole
        {"n_epochs": True},  # a count is a number
        {"lr": 10**400},  # too large for a float: refused, not a 500
        {"lr": float("nan")},
        {"layers": [100, None]},
    ],
)
def test_params_out_of_bounds_are_refused(params: dict) -> None:
    with pytest.raises(ValueError, match="params"):
        RetrainRequest(params=params)
    if not any(isinstance(v, float) and v != v for v in params.values()):  # NaN is no JSON
        assert not _PARAMS_SCHEMA.is_valid(params), params  # the spec says so too


def test_params_within_bounds_are_kept_as_sent() -> None:
    params = {
        "n_epochs": 5,
        "layers": [512],
        "loss": "bpr-max",
        "learning_rate": 0.05,
        "constrained_embedding": True,
        "sample_store": 10_000_000,
    }
    assert RetrainRequest(params=params).params == params
    assert _PARAMS_SCHEMA.is_valid(params)
    for name, (low, high) in CAPS.items():
        assert RetrainRequest(params={name: [high] if name == "layers" else high}).params
        assert low >= 0


def test_over_http_a_refused_request_is_a_422_and_no_job(tmp_path: Path) -> None:
    write_tiny_checkpoint(tmp_path)
    settings = Settings(model_dir=tmp_path, admin_token="test-admin-token")
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url, headers=AUTH) as c:
        for body in ({"base_dataset": "events:/etc/passwd"}, {"params": {"n_epochs": 10**6}}):
            r = c.post("/admin/retrain", json=body)
            assert r.status_code == 422, r.text
        assert c.get("/admin/jobs").json() == []
