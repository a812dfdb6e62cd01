"""The attention models over HTTP against a real Redis: a visit's state in Redis is its last
L clicks, and the answers are the model's own top items (real checkpoints, untrained)."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
import redis
import torch

from app.settings import Settings
from models.registry import kind_names, model_kind
from tests.app.support import N_ITEMS, LiveServer, item_id
from training.checkpoint import set_current, write_checkpoint

KINDS = kind_names("attention")
SMALL = {"dim": 8, "n_heads": 2, "max_len": 4, "dropout": 0.1}


def write_attention_checkpoint(model_dir: Path, kind: str) -> torch.nn.Module:
    cls = model_kind(kind).model_class()
    model = cls(cls.config_class(n_items=N_ITEMS, seed=3, **SMALL)).eval()
    path = write_checkpoint(
        model_dir,
        kind,
        model.hyperparameters(),
        model.checkpoint_weights(),
        item_ids=np.array([item_id(r) for r in range(N_ITEMS)]),
        popularity=np.arange(N_ITEMS, 0, -1).astype(float),
    )
    set_current(model_dir, path.name)
    return model


@pytest.mark.parametrize("kind", KINDS)
def test_an_attention_model_serves_its_own_top_items_from_a_state_in_redis(
    tmp_path: Path, kind: str, redis_url: str, redis_prefix: str
) -> None:
    model = write_attention_checkpoint(tmp_path / "models", kind)
    clicks = [3, 14, 15, 9, 26, 5]  # more than max_len: the state keeps the last four
    settings = Settings(model_dir=tmp_path / "models", redis_url=redis_url, key_prefix=redis_prefix)
    with LiveServer(settings) as srv, httpx.Client(base_url=srv.url) as http:
        events = [{"session_id": "v", "item_id": item_id(r)} for r in clicks]
        assert http.post("/v1/events/batch", json={"events": events}).status_code < 300
        got = http.get("/v1/sessions/v/recommendations", params={"n": 5}).json()
        every = http.get(
            "/v1/sessions/v/recommendations", params={"n": 5, "exclude_seen": "false"}
        ).json()
    with torch.no_grad():
        query = model.encode(torch.tensor([clicks]))[0, 0]
        scores = query @ model.item_vectors().T
    ranked = [int(r) for r in scores.argsort(descending=True)]
    assert [int(r["item_id"]) for r in every["items"]] == [item_id(r) for r in ranked[:5]]
    unseen = [r for r in ranked if r not in clicks][:5]  # the visit's own clicks left out
    assert [int(r["item_id"]) for r in got["items"]] == [item_id(r) for r in unseen]
    assert got["fallback"] is None
    client = redis.Redis.from_url(redis_url)
    keys = client.keys(f"{redis_prefix}:*:v")  # the visit's own keys (not the event log)
    assert len(keys) >= 1
    assert sum(client.memory_usage(k) or 0 for k in keys) < 1024  # four float32 rows and keys
