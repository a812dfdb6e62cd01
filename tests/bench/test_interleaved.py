"""Interleaved timing of training-step variants (``tests.bench.gru4rec_speed --ab-optimizer``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.bench.gru4rec_speed import app
from tests.bench.interleaved import interleaved_rates, optimizer_variants
from tests.conftest import needs_shared_data
from training.data.sessions import Sessions
from training.gru4rec.params import GRU4RecParams

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = GRU4RecParams(layers=(8,), batch_size=4, n_sample=6, n_epochs=1, learning_rate=0.1)


def _sessions(n_sessions: int = 60, length: int = 6, n_items: int = 15) -> Sessions:
    rng = np.random.default_rng(0)
    items = rng.integers(0, n_items, n_sessions * length).astype(np.int32)
    offsets = np.arange(0, n_sessions * length + 1, length, dtype=np.int64)
    times = np.arange(n_sessions * length, dtype=float)
    return Sessions(items=items, offsets=offsets, times=times)


def test_a_slower_variant_gets_the_lower_rate_over_the_same_steps() -> None:
    def slowed(step) -> None:
        update = step.opt.step_dense

        def step_dense() -> None:
            time.sleep(0.003)  # far more than a tiny step costs
            update()

        step.opt.step_dense = step_dense

    rates = interleaved_rates(
        _sessions(), 15, TINY, {"plain": lambda step: None, "slowed": slowed},
        steps=12, chunk=5, warmup=2, compile_loss=False,
    )  # fmt: skip
    assert [r.name for r in rates] == ["plain", "slowed"]
    assert all(r.steps == 12 and r.batch_size == 4 for r in rates)
    plain, slow = (r.events_per_second for r in rates)
    assert slow < plain
    assert slow < 12 * 4 / (12 * 0.003)  # the sleeps alone bound it


def test_optimizer_variants_are_the_kernels_and_pytorchs_ops() -> None:
    from types import SimpleNamespace

    for name, adjust in optimizer_variants().items():
        step = SimpleNamespace(opt=SimpleNamespace(fused=True))
        adjust(step)
        assert step.opt.fused is (name == "kernels")
    rates = interleaved_rates(
        _sessions(), 15, TINY, optimizer_variants(), steps=6, chunk=4, warmup=1, compile_loss=False
    )
    assert [r.name for r in rates] == ["kernels", "torch-ops"]
    assert all(r.events_per_second > 0 for r in rates)


def test_too_few_full_mini_batches_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="full mini-batches"):
        interleaved_rates(_sessions(n_sessions=6), 15, TINY, optimizer_variants(), steps=100)


@needs_shared_data
def test_bench_reports_the_interleaved_optimizer_rates(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        app,
        [
            "--dataset", "diginetica", "--sessions", "300", "--no-compile",
            "--no-ceiling", "--ab-optimizer", "20",
            "--params", "layers=[16],n_sample=32,batch_size=8", "--json", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "interleaved, kernels" in result.output and "interleaved, torch-ops" in result.output
    rates = json.loads(out.read_text())["interleaved_events_per_second"]
    assert set(rates) == {"kernels", "torch-ops"} and min(rates.values()) > 0
