"""The one JSON record every measuring command writes with ``--json FILE``.

``{"model", "dataset", "protocol", "params", "metrics": {"recall@20": ...},
"seconds": {...}, "data": {"name", "sha256", ...}}``; metric values are
fractions in [0, 1] with lower-case ``name@k`` keys, so records from different
commands and sessions can be compared by a script.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch

from training.data.sessions import Dataset


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
    }


def record(
    model: str,
    dataset: Dataset,
    protocol: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    seconds: dict[str, float],
    split: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "model": model,
        "dataset": dataset.name,
        "protocol": protocol,
        "params": params,
        "metrics": {k.lower(): float(v) for k, v in metrics.items()},
        "seconds": {k: round(float(v), 3) for k, v in seconds.items()},
        "data": {"name": dataset.name, "sha256": dataset.sha256, **(split or {})},
        "env": environment(),
        **extra,
    }


def write_json(path: Path, rec: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec, indent=2, sort_keys=False) + "\n")
