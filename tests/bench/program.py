"""How every benchmark of this folder runs as a program (``python -m tests.bench.<name>``).

The benchmarks live outside the product, so they cannot borrow ``nextitem``'s
entry point; this gives them the same manners: a one-command typer program, and
the errors a user can fix (missing dataset, malformed file, unknown parameter)
shown as one red line and exit code 2, not a traceback.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from training.data.errors import DataError
from training.params import ParamError


def program() -> typer.Typer:
    """A typer program for one benchmark command (its docstring is the program's help)."""
    return typer.Typer(pretty_exceptions_enable=False, add_completion=False)


def run(app: typer.Typer) -> None:
    """Run ``app``; a user's mistake ends the program with one line on stderr."""
    try:
        app()
    except (DataError, ParamError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        Console(stderr=True).print(f"[bold red]error:[/] {message}")
        sys.exit(2)
