"""``nextitem retrain``: the trainer's side of a retrain job; its whole contract is files.

The service's worker takes a snapshot of the event log and runs this command as
a child process; the two never import each other.

In:
- ``--events``: a Parquet file of the snapshot, columns ``session_id``,
  ``item_id`` (text), ``ts`` (Unix seconds); other columns are ignored.
- ``--config``: a JSON object with the keys of ``RetrainConfig`` (``kind``,
  ``params``, ``base_dataset``, ``since``, ``gate_ratio``,
  ``holdout_fraction``, ``min_item_support``), all optional, and ``data``: an
  object copied into the checkpoint manifest's data summary (the job id, the
  log position).
- ``--model-dir`` and ``--active``: where checkpoints live, and the version
  the new model must be compared with (none: the gate only asks for a hit).

Out:
- a checkpoint directory under ``--model-dir`` (``CURRENT`` is never touched:
  activating is the caller's decision);
- on stdout, one JSON object a line: ``{"progress": 0.42, "stage": "..."}``;
- ``--outcome``: ``{"version", "passed", "metrics"}``, or ``{"error"}`` when
  the job cannot be trained (exit code 2), written atomically.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import typer

from training.cli import app
from training.data.errors import DataError
from training.params import ParamError
from training.retrain import RetrainConfig, retrain

#: the keys of ``--config`` that are ``RetrainConfig`` fields
CONFIG_KEYS = frozenset(RetrainConfig.__dataclass_fields__)


def read_config(path: Path) -> tuple[RetrainConfig, dict[str, Any]]:
    """``--config``'s JSON as the retrain's config and the manifest's data note."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ParamError(f"cannot read the retrain config {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ParamError(f"the retrain config {path} is not a JSON object")
    note = raw.pop("data", None) or {}
    unknown = sorted(set(raw) - CONFIG_KEYS)
    if unknown:
        raise ParamError(f"unknown retrain config key(s) {unknown}; known: {sorted(CONFIG_KEYS)}")
    return RetrainConfig(**raw), note


def _plain(value: Any) -> Any:
    """NumPy scalars in the metrics as plain numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def write_json(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` whole or not at all: the caller may read the file at any moment."""
    fd, tmp = tempfile.mkstemp(prefix=".outcome.", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, default=_plain)
    os.replace(tmp, path)


def report_progress(fraction: float, stage: str) -> None:
    print(json.dumps({"progress": round(fraction, 3), "stage": stage}), flush=True)


@app.command("retrain")
def retrain_command(
    events: Path = typer.Option(..., exists=True, dir_okay=False, help="event snapshot (Parquet)"),
    config: Path = typer.Option(..., exists=True, dir_okay=False, help="retrain config (JSON)"),
    model_dir: Path = typer.Option(..., help="checkpoint directory to write the new version to"),
    outcome: Path = typer.Option(..., dir_okay=False, help="where to write the outcome (JSON)"),
    active: str | None = typer.Option(None, help="the active version the gate compares with"),
) -> None:
    """Train on an event snapshot, gate against the active model, write a checkpoint."""
    try:
        cfg, note = read_config(config)
        log_events = pd.read_parquet(events, columns=["session_id", "item_id", "ts"])
        result = retrain(
            log_events,
            model_dir,
            cfg,
            active_version=active,
            data_note=note,
            progress=report_progress,
        )
    except (DataError, ValueError) as exc:  # ParamError and NothingToTrain are ValueErrors
        write_json(outcome, {"error": f"{type(exc).__name__}: {exc}"})
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    write_json(
        outcome, {"version": result.version, "passed": result.passed, "metrics": result.metrics}
    )
