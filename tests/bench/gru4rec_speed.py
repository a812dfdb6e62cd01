"""Training speed of GRU4Rec: events/s of whole epochs, beside its setup (``make bench-gru4rec``).

Run as ``python -m tests.bench.gru4rec_speed --dataset D [--params P ...] [options]`` on
an otherwise idle machine (see ``tests/bench/README.md``). Optionally also the
step's matrix-product ceiling (``tests.bench.ceiling``) and an interleaved A/B
of the optimizer's kernels against PyTorch's ops (``tests.bench.interleaved``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import typer
from rich.console import Console

from tests.bench.ceiling import measure_ceiling
from tests.bench.interleaved import interleaved_rates, optimizer_variants
from tests.bench.program import program, run
from training.cli.gru4rec_cmd import setup_table
from training.data import load_dataset
from training.gru4rec.params import load_params
from training.gru4rec.train import EpochStats, train
from training.params import bundled_names
from training.report import record, write_json

console = Console()
app = program()
PARAMS_HELP = (
    "parameter file (.toml), bundled name (" + ", ".join(bundled_names()) + ") or k=v,k=v; "
    "repeat to override left to right"
)


def _epoch_line(stats: EpochStats) -> None:
    console.print(
        f"epoch {stats.epoch}: loss {stats.loss:.6f}  {stats.seconds:.1f}s  "
        f"[bold]{stats.events_per_second:,.0f} events/s[/] "
        f"({stats.events_per_cpu_second:,.0f} per CPU-second)  load {os.getloadavg()[0]:.2f}"
    )


@app.command()
def bench_gru4rec(
    dataset: str = typer.Option(..., help="registered name or FORMAT:PATH"),
    params: list[str] = typer.Option([], help=PARAMS_HELP),
    epochs: int = typer.Option(1, min=1, help="epochs to time (overrides n_epochs)"),
    sessions: int = typer.Option(0, min=0, help="train on the first N sessions only (0: all)"),
    threads: int = typer.Option(0, help="torch threads (0: torch's default)"),
    json_out: Path | None = typer.Option(None, "--json", help="write the result record here"),
    compile_loss: bool = typer.Option(
        True, "--compile/--no-compile", help="compile the loss (about 20 s once; a faster step)"
    ),
    ceiling: bool = typer.Option(
        True,
        "--ceiling/--no-ceiling",
        help="also time the step's matrix products alone: the events/s no implementation "
        "of the same arithmetic can pass on this machine",
    ),
    ab_optimizer: int = typer.Option(
        0,
        "--ab-optimizer",
        min=0,
        help="also time N steps with the optimizer's kernels and N with PyTorch's ops, "
        "alternating 50-step chunks in one process (a ratio that survives a noisy machine)",
    ),
) -> None:
    """Training events/s of GRU4Rec (no evaluation, no checkpoint), with its setup."""
    if threads > 0:
        torch.set_num_threads(threads)
    p = load_params(*params).replace(n_epochs=epochs)
    ds = load_dataset(dataset)
    train_part = ds.part("train")
    if sessions:
        train_part = train_part.select(np.arange(min(sessions, train_part.n_sessions)))
    console.print(setup_table("bench gru4rec", ds.name, ds.n_items, p))
    console.print(f"{train_part.n_sessions:,} sessions, {train_part.n_events:,} events")
    t0 = time.perf_counter()
    result = train(
        train_part, ds.n_items, p, progress=False, on_epoch=_epoch_line, compile_loss=compile_loss
    )
    total = time.perf_counter() - t0
    rates = [e.events_per_second for e in result.epochs]
    cpu_rates = [e.events_per_cpu_second for e in result.epochs]
    console.print(
        f"[bold]{max(rates):,.0f} events/s[/] best epoch, {sum(rates) / len(rates):,.0f} mean, "
        f"{max(cpu_rates):,.0f} per CPU-second; "
        f"setup {result.setup_seconds:.1f}s, total {total:.1f}s"
    )
    extra: dict[str, Any] = {}
    if ceiling:
        bound = measure_ceiling(p)
        console.print(
            f"matrix-product ceiling: [bold]{bound.events_per_second:,.0f} events/s[/] "
            f"({bound.flops_per_event / 1e6:.2f} MFLOP per event at {bound.gflops:.0f} GFLOP/s); "
            f"the best epoch reached {bound.share(max(rates)):.0%} of it"
        )
        extra = {
            "ceiling_events_per_second": bound.events_per_second,
            "ceiling_gflops": bound.gflops,
            "flops_per_event": bound.flops_per_event,
        }
    if ab_optimizer:
        ab = interleaved_rates(
            train_part,
            ds.n_items,
            p,
            optimizer_variants(),
            steps=ab_optimizer,
            compile_loss=compile_loss,
        )
        base = ab[-1].events_per_second
        for rate in ab:
            console.print(
                f"interleaved, {rate.name}: {rate.events_per_second:,.0f} events/s "
                f"(x{rate.events_per_second / base:.3f} of {ab[-1].name}, {rate.steps} steps)"
            )
        extra["interleaved_events_per_second"] = {r.name: r.events_per_second for r in ab}
    if json_out:
        rec = record(
            model="gru4rec",
            dataset=ds,
            protocol="benchmark",
            params=p.to_dict(),
            metrics={},
            seconds={"setup": result.setup_seconds, "total": total},
            events_per_second=rates,
            events_per_cpu_second=cpu_rates,
            load_avg=os.getloadavg()[0],
            **extra,
        )
        write_json(json_out, rec)


if __name__ == "__main__":
    run(app)
