"""Edge cases of the model registry and the watcher that follows CURRENT: a checkpoint
directory renamed, a corrupt checkpoint at start-up, a version that failed to load for a
passing reason."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest

from app.serving import registry as registry_module
from app.serving.hot_swap import ModelWatcher
from app.serving.registry import ModelRegistry
from app.settings import Settings
from tests.app.support import LiveServer, write_tiny_checkpoint
from training.checkpoint import WEIGHTS, set_current


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """The versions the registry loads, in order (each a full load and a heap freeze)."""
    seen: list[str] = []
    real = registry_module.load_serving_model

    def counting(model_dir: Path, version: str, settings: Settings):
        seen.append(version)
        return real(model_dir, version, settings)

    monkeypatch.setattr(registry_module, "load_serving_model", counting)
    return seen


@pytest.fixture
def versions(monkeypatch) -> list[str]:
    """Checkpoint names in the order they are written, one day apart (newest last)."""
    names = [f"2026010{d}T000000Z-gru4rec-00000{d}" for d in range(1, 10)]
    it = iter(names)
    monkeypatch.setattr("training.checkpoint.new_version", lambda kind: next(it))
    return names


def corrupt(model_dir: Path, version: str) -> None:
    weights = model_dir / version / WEIGHTS
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0xFF  # one flipped byte: the checksum no longer matches
    weights.write_bytes(bytes(data))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_renamed_checkpoint_is_loaded_once(tmp_path: Path, loads: list[str]) -> None:
    """CURRENT names a directory whose manifest says another version: no reload per poll."""
    model_dir = tmp_path / "models"
    version = write_tiny_checkpoint(model_dir, activate=False)
    (model_dir / version).rename(model_dir / "copied-from-staging")
    set_current(model_dir, "copied-from-staging")
    settings = Settings(model_dir=model_dir)
    registry = ModelRegistry(settings)
    served = registry.load_current()
    watcher = ModelWatcher(registry, settings)

    async def polls() -> None:
        for _ in range(3):
            await watcher.check()

    asyncio.run(polls())
    assert loads == ["copied-from-staging"]
    assert watcher.swaps == 0 and registry.active is served
    assert registry.load_current() is served
    assert served.version == version  # answers name the model by its manifest


def test_a_corrupt_current_at_start_up_falls_back_to_the_newest_good_version(
    tmp_path: Path, versions: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    """The version before CURRENT's is served (not a newer one nobody activated), and
    /readyz and the log say so."""
    model_dir = tmp_path / "models"
    older, previous, broken = (write_tiny_checkpoint(model_dir, seed=s) for s in range(3))
    write_tiny_checkpoint(model_dir, seed=3, activate=False)  # newer, never activated
    corrupt(model_dir, broken)
    assert (model_dir / "CURRENT").read_text().strip() == broken
    with (
        caplog.at_level(logging.WARNING, logger="app.serving.registry"),
        LiveServer(Settings(model_dir=model_dir)) as srv,
        httpx.Client(base_url=srv.url) as http,
    ):
        ready = http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["model"] == previous
        error = ready.json()["model_error"]
        assert broken in error and previous in error and "checksum" in error
        recs = http.post("/v1/recommendations", json={"items": [1001]})
        assert recs.json()["model_version"] == previous
    assert older != previous
    assert any(
        broken in r.getMessage() and previous in r.getMessage() and r.levelno >= logging.WARNING
        for r in caplog.records
    )


def test_a_version_that_failed_to_load_is_tried_again_with_a_back_off(
    tmp_path: Path, loads: list[str], versions: list[str]
) -> None:
    """Its weights were still being copied: tried again after one poll, then after two,
    and served once the file is whole; the old model serves meanwhile."""
    model_dir = tmp_path / "models"
    first = write_tiny_checkpoint(model_dir, seed=0)
    settings = Settings(model_dir=model_dir, model_poll_seconds=1)
    registry = ModelRegistry(settings)
    registry.load_current()
    second = write_tiny_checkpoint(model_dir, seed=1)
    weights = model_dir / second / WEIGHTS
    weights.rename(weights.with_suffix(".partial"))  # not there yet
    clock = Clock()
    watcher = ModelWatcher(registry, settings)
    watcher.clock = clock

    def poll_at(t: float) -> None:
        clock.now = t
        asyncio.run(watcher.check())

    poll_at(0.0)
    assert loads == [first, second] and registry.active.version == first
    poll_at(0.5)  # too soon
    assert loads == [first, second]
    poll_at(1.0)  # one poll later: again, and it fails again
    assert loads == [first, second, second]
    poll_at(2.9)  # the next try waits twice as long
    assert loads == [first, second, second]
    weights.with_suffix(".partial").rename(weights)
    poll_at(3.0)
    assert loads == [first, second, second, second]
    assert registry.active.version == second and watcher.swaps == 1
    assert registry.last_error is None
