"""Checkpoint directories: written once, verified on load, never unpickled.

Layout (DESIGN.md section 4)::

    <model_dir>/<version>/manifest.json        format, kind, hyperparameters, metrics,
                                               data summary, sha256 of every file
    <model_dir>/<version>/weights.safetensors
    <model_dir>/<version>/items.parquet        row -> external id, category, popularity
    <model_dir>/CURRENT                        the active version, replaced atomically

A version is first written to a hidden temporary directory and renamed into
place, so a reader never sees half a checkpoint. This module is the only part
of ``training`` the service imports, so it depends on nothing else in it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"
ITEMS = "items.parquet"
CURRENT = "CURRENT"


class CheckpointError(Exception):
    """A checkpoint that is missing, incomplete, tampered with or of an unknown format."""


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    manifest: dict[str, Any]
    weights: dict[str, torch.Tensor]
    items: pd.DataFrame  # columns: item_id, category (or absent), popularity

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def kind(self) -> str:
        return str(self.manifest["kind"])

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return dict(self.manifest["hyperparameters"])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _code_version() -> str:
    try:
        from importlib.metadata import version

        return version("nextitem")
    except Exception:  # not installed as a distribution (e.g. run from a source tree)
        return "unknown"


def new_version(kind: str) -> str:
    """A sortable, unique version name: UTC time, model kind, a random suffix."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return f"{stamp}-{kind}-{os.urandom(3).hex()}"


def write_checkpoint(
    model_dir: Path,
    kind: str,
    hyperparameters: dict[str, Any],
    weights: dict[str, torch.Tensor],
    item_ids: np.ndarray,
    popularity: np.ndarray,
    categories: np.ndarray | None = None,
    metrics: dict[str, float] | None = None,
    data: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    version: str | None = None,
    attachments: dict[str, Path] | None = None,
) -> Path:
    """Write a new checkpoint directory and return its path (CURRENT is not touched).

    ``attachments`` are extra files (e.g. a loss-curve PNG) copied in and
    checksummed like the rest.
    """
    if len(item_ids) != len(popularity) or (
        categories is not None and len(categories) != len(item_ids)
    ):
        raise ValueError("item_ids, popularity and categories must have one entry per item")
    model_dir.mkdir(parents=True, exist_ok=True)
    version = version or new_version(kind)
    final = model_dir / version
    if final.exists():
        raise CheckpointError(f"checkpoint {final} already exists (checkpoints are written once)")
    tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=model_dir))
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in weights.items()}, tmp / WEIGHTS)
        table: dict[str, Any] = {
            "item_id": item_ids,
            "popularity": np.asarray(popularity, np.float64),
        }
        if categories is not None:
            table["category"] = categories
        pd.DataFrame(table).to_parquet(tmp / ITEMS, index=False)
        for name, src in (attachments or {}).items():
            shutil.copyfile(src, tmp / name)
        files = sorted(p.name for p in tmp.iterdir())
        manifest = {
            "format_version": FORMAT_VERSION,
            "version": version,
            "kind": kind,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "code_version": _code_version(),
            "hyperparameters": hyperparameters,
            "n_items": len(item_ids),
            "metrics": metrics or {},
            "data": data or {},
            **(extra or {}),
            "files": {name: _sha256(tmp / name) for name in files},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=_json_default) + "\n")
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to a manifest")


def load_checkpoint(path: Path) -> Checkpoint:
    """Load and verify a checkpoint directory; raises ``CheckpointError`` on any defect."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise CheckpointError(f"{path} is not a checkpoint (no {MANIFEST})")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{manifest_path}: unreadable manifest ({exc})") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: unknown checkpoint format {manifest.get('format_version')!r}"
        )
    files = manifest.get("files", {})
    for required in (WEIGHTS, ITEMS):
        if required not in files:
            raise CheckpointError(f"{path}: manifest lists no {required}")
    for name, digest in files.items():
        f = path / name
        if not f.is_file():
            raise CheckpointError(f"{path}: {name} is missing")
        if _sha256(f) != digest:
            raise CheckpointError(f"{path}: {name} does not match its checksum")
    try:
        weights = load_file(path / WEIGHTS)
        items = pd.read_parquet(path / ITEMS)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read weights or items ({exc})") from None
    if len(items) != manifest.get("n_items"):
        raise CheckpointError(
            f"{path}: items.parquet has {len(items)} rows, manifest says {manifest.get('n_items')}"
        )
    return Checkpoint(path=path, manifest=manifest, weights=weights, items=items)


def set_current(model_dir: Path, version: str) -> None:
    """Make ``version`` the active checkpoint (atomic rename of a temp file)."""
    if not (model_dir / version / MANIFEST).is_file():
        raise CheckpointError(f"no checkpoint {version!r} in {model_dir}")
    fd, tmp = tempfile.mkstemp(prefix=".CURRENT.", dir=model_dir)
    with os.fdopen(fd, "w") as f:
        f.write(version + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, model_dir / CURRENT)


def current_version(model_dir: Path) -> str | None:
    try:
        text = (model_dir / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    return text or None


def list_versions(model_dir: Path) -> list[str]:
    """Complete checkpoint versions, oldest first (temporary directories are skipped)."""
    if not model_dir.is_dir():
        return []
    return sorted(
        p.name
        for p in model_dir.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file()
    )


def read_manifest(model_dir: Path, version: str) -> dict[str, Any]:
    """The manifest of one version, unverified: for listing, not for loading."""
    try:
        return json.loads((model_dir / version / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{model_dir / version}: unreadable manifest ({exc})") from None
