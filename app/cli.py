"""``nextitem-server``: the service's programs, ``serve`` (the HTTP API) and ``worker`` (retrains).

Settings come from ``NEXTITEM_*`` environment variables (``app.settings``).
Training is the trainer's business (the ``nextitem`` command): ``serve`` runs
``nextitem bootstrap`` when no model is active, the worker runs ``nextitem
retrain`` for each job, both as child processes.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Any

import typer
from rich.console import Console

from app.settings import Settings
from training.checkpoint import current_version

cli = typer.Typer(
    name="nextitem-server",
    help="The nextitem service: the HTTP API and the retrain worker.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options that come from the settings: its own concurrency limit, over
    which it answers 503 before a request reaches the application."""
    return {"limit_concurrency": settings.limit_concurrency}


@cli.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8000, help="port to listen on"),
    workers: int = typer.Option(1, min=1, help="uvicorn worker processes"),
) -> None:
    """Serve the HTTP API (docs at /docs).

    Without NEXTITEM_REDIS_URL, sessions live in this process and events go to a local
    file; with it, both live in Redis. A first model is trained when none is active.
    """
    import uvicorn

    settings = Settings()
    if settings.embedded and workers > 1:
        # Embedded sessions live in one process: several workers would each see a part.
        console.print(
            "[bold red]cannot serve:[/] the embedded store holds sessions in one process; "
            "set NEXTITEM_REDIS_URL to run more than one worker"
        )
        raise typer.Exit(2)
    if current_version(settings.model_dir) is None:
        bootstrap = [sys.executable, "-m", "training.cli", "bootstrap"]
        code = subprocess.call([*bootstrap, "--model-dir", str(settings.model_dir)])
        if code != 0 or current_version(settings.model_dir) is None:
            console.print(f"[bold red]cannot serve:[/] no first model (bootstrap exit {code})")
            raise typer.Exit(1)
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
        **server_options(settings),
    )


@cli.command()
def worker(
    burst: bool = typer.Option(False, help="stop when the queue is empty"),
    run_job_id: str | None = typer.Option(
        None, "--run-job", help="run this one job and exit (how the embedded service trains)"
    ),
) -> None:
    """Consume retrain jobs from the Redis queue (NEXTITEM_REDIS_URL, NEXTITEM_KEY_PREFIX)."""
    if run_job_id is not None:
        from app.jobs.worker import run_job

        state = run_job(run_job_id)
        console.print(f"job {run_job_id}: {state}")
        return
    settings = Settings()
    if settings.redis_url is None:
        console.print(
            "[bold red]no queue:[/] set NEXTITEM_REDIS_URL (the embedded service runs its "
            "jobs itself)"
        )
        raise typer.Exit(2)
    import redis
    from rq import Worker

    from app.jobs.queue import queue_name

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # no socket timeout: the worker blocks on the queue for minutes at a time
    connection = redis.Redis.from_url(settings.redis_url)
    rq_worker = Worker([queue_name(settings.key_prefix)], connection=connection)
    console.print(
        f"worker on {settings.redis_url}, queue {queue_name(settings.key_prefix)}, "
        f"models in {settings.model_dir}"
    )
    rq_worker.work(burst=burst, with_scheduler=False)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
