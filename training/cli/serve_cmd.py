"""``nextitem serve``: the online service (uvicorn running ``app.main:create_app``).

When the model directory holds no active checkpoint, a first model is trained
before serving, so that a fresh clone answers requests after one command.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from training.checkpoint import current_version
from training.cli import app

console = Console()


class NoTrainerError(RuntimeError):
    pass


def bootstrap_model(model_dir: Path) -> str:
    """Train a small GRU4Rec, write it to ``model_dir`` and activate it; returns the version."""
    raise NoTrainerError(
        f"no active checkpoint in {model_dir} (no CURRENT file), and this installation has no "
        "GRU4Rec trainer to make a first one. Put a checkpoint there (and its name in "
        f"{model_dir}/CURRENT), or point NEXTITEM_MODEL_DIR at a directory that has one."
    )


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
        try:
            version = bootstrap_model(settings.model_dir)
        except NoTrainerError as exc:
            console.print(f"[bold red]cannot serve:[/] {exc}")
            raise typer.Exit(1) from None
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
    )
