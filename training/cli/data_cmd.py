"""``nextitem data list``, ``nextitem data info NAME`` and ``nextitem data export NAME``."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from training.cli import app
from training.data import load_dataset, registered
from training.data.export import export_gru4rec
from training.paths import data_dir

data_app = typer.Typer(
    help="Datasets: what is registered, and what a dataset holds.", no_args_is_help=True
)
app.add_typer(data_app, name="data")
console = Console()


@data_app.command("list")
def list_datasets() -> None:
    """Registered datasets and whether their files are present."""
    root = data_dir()
    table = Table(title=f"datasets in {root}")
    for col in ("name", "kind", "present", "description"):
        table.add_column(col)
    for e in registered():
        present = "yes" if (root / e.path).exists() else "[red]no[/]"
        table.add_row(e.name, e.kind, present, e.description)
    console.print(table)
    console.print(
        "Data elsewhere: FORMAT:PATH with FORMAT in srgnn, gru4rec, events, "
        "movielens-100k, movielens-1m, amazon-seq."
    )


@data_app.command("info")
def info(name: str = typer.Argument(..., help="registered name or FORMAT:PATH")) -> None:
    """Parts, sizes, items, categories, provenance and load time of a dataset."""
    start = time.perf_counter()
    ds = load_dataset(name)
    seconds = time.perf_counter() - start
    console.print(f"[bold]{ds.name}[/] ({ds.kind}) loaded in {seconds:.2f} s")
    console.print(f"items: {ds.n_items:,}", end="")
    if ds.items.categories is not None:
        n_cat = len(np.unique(ds.items.categories[ds.items.categories >= 0]))
        console.print(f", categories: {n_cat:,}")
    else:
        console.print(", no categories")
    table = Table()
    for col in ("part", "rows", "events", "mean length", "max length", "times", "targets"):
        table.add_column(col, justify="right")
    for part, s in ds.parts.items():
        mean = s.n_events / max(s.n_sessions, 1)
        targets = ds.targets.get(part)
        table.add_row(
            part,
            f"{s.n_sessions:,}",
            f"{s.n_events:,}",
            f"{mean:.2f}",
            f"{int(s.lengths.max(initial=0)):,}",
            "yes" if s.times is not None else "no",
            f"{len(targets):,}" if targets is not None else "",
        )
    console.print(table)
    if ds.folds:
        console.print(f"folds: {', '.join(ds.folds)}")
    console.print(f"sha256: {ds.sha256}")
    for src in ds.sources:
        console.print(f"  source: {src}")
    if ds.notes:
        console.print(f"note: {ds.notes}")


@data_app.command("export")
def export(
    name: str = typer.Argument(..., help="registered name or FORMAT:PATH"),
    out: Path = typer.Option(..., "--out", help="folder for the TSV files"),
) -> None:
    """Write a session dataset's parts as GRU4Rec TSVs (SessionId, ItemId, Time).

    The events nextitem trains and tests on, for other tools; ``gru4rec:OUT``
    reads them back.
    """
    ds = load_dataset(name)
    files, custom = export_gru4rec(ds, out)
    for path in files:
        console.print(f"wrote {path}")
    for part in custom:
        console.print(
            f"[yellow]note:[/] {ds.name}'s {part} part scores {len(ds.targets[part]):,} chosen "
            "events, not every non-first event; the TSV cannot carry that"
        )
