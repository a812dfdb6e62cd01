"""``nextitem serve``: the online service (uvicorn running ``app.main:create_app``).

When the model directory holds no active checkpoint, a first model is trained
before serving, so that a fresh clone answers requests after one command.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from training.checkpoint import current_version
from training.cli import app
from training.data import load_dataset
from training.data.errors import DataError
from training.data.sessions import Dataset, ItemTable, Sessions

console = Console()


#: the shared dataset a first model is trained on, when it is there
BOOTSTRAP_DATASET = "yoochoose-100k"


def demo_dataset(seed: int = 0) -> Dataset:
    """A generated shop: 1,000 items in 20 categories of 50, 6,000 visits (about 35,000 clicks).

    A visit starts on a random item and mostly walks forward through its
    category (1-3 items a click), sometimes jumping to another category, so a
    sequence model has something real to learn. The last 10% of visits are the
    test part.
    """
    rng = np.random.default_rng(seed)
    n_items, per_category, n_sessions = 1000, 50, 6_000
    lengths = np.clip(rng.geometric(1 / 6, n_sessions), 2, 30)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n_events = int(offsets[-1])
    session = np.repeat(np.arange(n_sessions), lengths)
    first = np.zeros(n_events, bool)
    first[offsets[:-1]] = True
    # per-event moves, summed within each visit: a step along the category, or a jump
    step = np.where(first, 0, rng.integers(1, 4, n_events))
    jump = np.where(first, 0, rng.random(n_events) < 0.15).astype(np.int64)
    start = rng.integers(0, n_items, n_sessions)
    walked = np.cumsum(step) - np.repeat(np.cumsum(step)[offsets[:-1]], lengths)
    jumps = np.cumsum(jump) - np.repeat(np.cumsum(jump)[offsets[:-1]], lengths)
    category = (start[session] // per_category + 7 * jumps) % (n_items // per_category)
    within = (start[session] % per_category + walked) % per_category
    items = (category * per_category + within).astype(np.int32)
    split = int(n_sessions * 0.9)

    def part(lo: int, hi: int) -> Sessions:
        a, b = offsets[lo], offsets[hi]
        return Sessions(items[a:b].copy(), (offsets[lo : hi + 1] - a).astype(np.int64))

    table = ItemTable(
        ids=np.arange(1, n_items + 1, dtype=np.int64),
        categories=(np.arange(n_items) // per_category).astype(np.int32),
        category_names=np.arange(n_items // per_category),
    )
    return Dataset(
        name="demo",
        kind="session",
        items=table,
        parts={"train": part(0, split), "test": part(split, n_sessions)},
        notes="generated demo catalog (nextitem serve without the shared data)",
    )


def bootstrap_model(model_dir: Path) -> str:
    """Train a small GRU4Rec, write it to ``model_dir`` and activate it; returns the version."""
    from training.gru4rec.export import export_model

    try:
        dataset: str | Dataset = BOOTSTRAP_DATASET
        load_dataset(BOOTSTRAP_DATASET)
        console.print(
            f"no model in {model_dir}: training a small GRU4Rec on {BOOTSTRAP_DATASET} first"
        )
    except DataError:
        dataset = demo_dataset()
        console.print(
            f"no model in {model_dir}, and the shared dataset {BOOTSTRAP_DATASET} is not here: "
            "training a small GRU4Rec on a generated demo catalog (1,000 items, ids 1-1000)"
        )
    return export_model(dataset, model_dir, activate=True).path.name


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
    workers: int = typer.Option(1, min=1, help="uvicorn worker processes"),
) -> None:
    """Serve the HTTP API (docs at /docs). Settings come from NEXTITEM_* environment variables.

    Without NEXTITEM_REDIS_URL, sessions live in this process and events go to a local
    file; with it, both live in Redis. A first model is trained when none is active.
    """
    import uvicorn

    from app.settings import Settings

    settings = Settings()
    if settings.embedded and workers > 1:
        # Embedded sessions live in one process: several workers would each see a part.
        console.print(
            "[bold red]cannot serve:[/] the embedded store holds sessions in one process; "
            "set NEXTITEM_REDIS_URL to run more than one worker"
        )
        raise typer.Exit(2)
    if current_version(settings.model_dir) is None:
        version = bootstrap_model(settings.model_dir)
        console.print(f"trained and activated [bold]{version}[/] in {settings.model_dir}")
    store = f"Redis at {settings.redis_url}" if settings.redis_url else "in-process (embedded)"
    console.print(
        f"serving {settings.model_dir}/{current_version(settings.model_dir)} on "
        f"http://{host}:{port} ({workers} worker(s)); sessions: {store}; docs at /docs"
    )
    # Request handlers step one session at a time: intra-op threads only add overhead.
    os.environ.setdefault("NEXTITEM_TORCH_THREADS", "1")
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )
