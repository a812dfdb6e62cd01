"""``nextitem bootstrap``: a first model for a service whose model directory is empty.

The service runs this command (as a child process) when it starts with no
active checkpoint, so that a fresh clone answers requests after one command.
It trains a small GRU4Rec on the shared ``yoochoose-100k`` sessions when they
are there, else on a generated demo shop, and activates it.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from training.checkpoint import current_version
from training.cli import app
from training.data import load_dataset
from training.data.demo import demo_dataset
from training.data.errors import DataError
from training.data.sessions import Dataset

console = Console()


#: the shared dataset a first model is trained on, when it is there
BOOTSTRAP_DATASET = "yoochoose-100k"


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
def bootstrap(
    model_dir: Path = typer.Option(..., help="the service's model directory (NEXTITEM_MODEL_DIR)"),
) -> None:
    """Train and activate a first small GRU4Rec when MODEL_DIR has no active checkpoint."""
    active = current_version(model_dir)
    if active is not None:
        console.print(f"{model_dir} already serves {active}: nothing to do")
        return
    version = bootstrap_model(model_dir)
    console.print(f"trained and activated [bold]{version}[/] in {model_dir}")
