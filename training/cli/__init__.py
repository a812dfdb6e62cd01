"""The ``nextitem`` command line (typer): the offline trainer. Each command group is a module.

The service has its own program (``nextitem-server``, in ``app.cli``); the two
meet only through ``nextitem bootstrap`` and ``nextitem retrain``, which the
service runs as child processes.

Every module of this package named ``*_cmd.py`` is imported at start-up and
registers its commands on ``app`` (or on ``train_app`` for ``nextitem train
MODEL``), so a new model family adds a module and touches nothing else.

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
    help="Session-based recommendation offline: datasets, training, evaluation, tuning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)

train_app = typer.Typer(help="Train a model and write a checkpoint.", no_args_is_help=True)
app.add_typer(train_app, name="train")
tune_app = typer.Typer(help="Search hyperparameters on a validation split.", no_args_is_help=True)
app.add_typer(tune_app, name="tune")


def _register_commands() -> None:
    import importlib
    import pkgutil

    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.endswith("_cmd"):
            importlib.import_module(f"{__name__}.{info.name}")


_register_commands()


def main() -> None:
    try:
        app()
    except (DataError, ParamError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        err_console.print(f"[bold red]error:[/] {message}")
        sys.exit(2)
