"""``nextitem serve``: the online service (built by the service issue)."""

from __future__ import annotations

import typer
from rich.console import Console

from training.cli import app

console = Console()


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    workers: int = typer.Option(1, min=1),
) -> None:
    """Run the HTTP service (not built yet: says what it will do, exits 1)."""
    console.print(
        "[yellow]The online service is not built yet.[/] When it is, this command will:\n"
        "  1. look for an active checkpoint in NEXTITEM_MODEL_DIR (default ./models_store);\n"
        "  2. if there is none, train a small GRU4Rec on yoochoose-100k (or a generated demo\n"
        "     catalog when the shared data is absent) and activate it;\n"
        f"  3. serve the API on http://{host}:{port} with {workers} uvicorn worker(s), keeping\n"
        "     session state in-process, or in Redis when NEXTITEM_REDIS_URL is set."
    )
    raise typer.Exit(1)
