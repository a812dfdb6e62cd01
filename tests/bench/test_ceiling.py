"""The matrix-product ceiling of a GRU4Rec step: hand-counted shapes and the bench's report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.bench.ceiling import Ceiling, measure_ceiling, step_gemms
from tests.bench.gru4rec_speed import app
from tests.conftest import needs_shared_data
from training.gru4rec.params import GRU4RecParams

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _macs(p: GRU4RecParams) -> int:
    return sum(g.macs for g in step_gemms(p))


def test_shared_embedding_step_products_hand_counted() -> None:
    p = GRU4RecParams(layers=(4,), batch_size=2, n_sample=3)
    # GRU (input 4 = the shared item rows, hidden 4, 3 gates of 4): forward 2*4*12 twice,
    # backward grad W_ih, grad input, grad W_hh 2*4*12 each = 480; output over 2 + 3
    # columns: scores, grad hidden, grad rows 2*4*5 each = 120.
    assert _macs(p) == 600
    assert [g.what for g in step_gemms(p)][-3:] == [
        "output scores",
        "output grad hidden",
        "output grad item rows",
    ]


def test_separate_embedding_two_layers_hand_counted() -> None:
    p = GRU4RecParams(
        layers=(4, 3), embedding=5, constrained_embedding=False, batch_size=2, n_sample=1
    )
    # layer 1 (5 -> 4): 120 + 96 + 120 + 120 + 96; layer 2 (4 -> 3): 72 + 54 + 72 + 72 + 54;
    # output (3 wide, 2 + 1 columns): 3 * 18
    assert _macs(p) == 552 + 324 + 54


def test_one_hot_input_has_no_input_product() -> None:
    p = GRU4RecParams(
        layers=(4,), embedding=0, constrained_embedding=False, batch_size=2, n_sample=2
    )
    # r/z gates 2*4*8, candidate 2*4*4, grad W_rz 8*2*4, grad W_h 4*2*4, grad r*h 2*4*4;
    # output 3*2*4*4
    assert _macs(p) == 64 + 32 + 64 + 32 + 32 + 96
    assert not any("input gates" in g.what for g in step_gemms(p))


def test_ceiling_arithmetic() -> None:
    c = Ceiling(flops_per_event=1e6, gemm_seconds_per_step=0.01, batch_size=100)
    assert c.events_per_second == pytest.approx(10_000)
    assert c.gflops == pytest.approx(10.0)
    assert c.share(5_000) == pytest.approx(0.5)


def test_measure_ceiling_times_the_products() -> None:
    p = GRU4RecParams(layers=(32,), batch_size=16, n_sample=64)
    c = measure_ceiling(p, repeats=3)
    assert c.flops_per_event == pytest.approx(2 * _macs(p) / 16)
    assert c.gemm_seconds_per_step > 0 and math.isfinite(c.events_per_second)


@needs_shared_data
def test_bench_reports_the_ceiling(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        app,
        [
            "--dataset", "diginetica", "--sessions", "300", "--no-compile",
            "--params", "layers=[16],n_sample=32,batch_size=8", "--json", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "matrix-product ceiling" in result.output
    rec = json.loads(out.read_text())
    assert rec["ceiling_events_per_second"] > 0 and rec["flops_per_event"] > 0
