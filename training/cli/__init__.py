"""The ``nextitem`` command line (typer). Each command group lives in its own module.

``main`` turns the errors a user can fix (missing dataset, malformed file,
unknown format or parameter) into one red line and exit code 2, not a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from training.data.errors import DataError
from training.params import ParamError

app = typer.Typer(
    name="nextitem",
    help="Session-based recommendation: datasets, evaluation, training, serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)

# Command modules register themselves on ``app`` when imported.
from training.cli import data_cmd, evaluate_cmd, serve_cmd  # noqa: E402, F401


def main() -> None:
    try:
        app()
    except (DataError, ParamError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        err_console.print(f"[bold red]error:[/] {message}")
        sys.exit(2)
