"""The serving model: the checkpoint named by ``CURRENT`` and its item index, behind one reference.

A ``ServingModel`` is immutable and self-contained (model, item index, id maps,
popularity order). A request takes the active one once and uses it to the end,
so swapping models is a single reference assignment: requests in flight finish
on the old model, new ones start on the new. A checkpoint that fails to load or
to pass the load checks never replaces the model being served.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from app.metrics import Metrics
from app.redact import without_paths
from app.serving.heap import freeze_heap
from app.serving.item_index import ItemIndex
from app.settings import Settings
from models.contract import SequenceModel, unpack_state
from models.registry import build_model
from training.checkpoint import (
    CheckpointError,
    current_version,
    list_versions,
    load_checkpoint,
    read_manifest,
)

log = logging.getLogger(__name__)


class ModelLoadError(Exception):
    """The requested checkpoint could not be loaded; the previous model (if any) keeps serving."""


@dataclass(frozen=True)
class ServingModel:
    version: str
    kind: str
    model: SequenceModel
    index: ItemIndex
    item_ids: list[Any]  # row -> external id as the catalog has it (int or str)
    row_of: dict[str, int]  # external id as text -> row
    categories: np.ndarray  # row -> category code, -1 = none
    popularity: np.ndarray  # row -> training popularity
    by_popularity: np.ndarray  # rows, most popular first
    state_size: int
    n_interests: int
    category_names: tuple[str, ...] = ()  # category code -> its name in items.parquet
    # the checkpoint directory it was loaded from, the name CURRENT and the admin use; the
    # manifest's ``version`` differs when a directory was renamed (copied between stores)
    directory: str = ""

    def rows(self, item_ids: Sequence[str]) -> list[int]:
        """Rows of the known items among ``item_ids`` (unknown ones are skipped), in order."""
        return [r for r in map(self.row_of.get, item_ids) if r is not None]

    def fold(self, state: torch.Tensor | None, rows: Sequence[int]) -> torch.Tensor:
        """The state after clicking ``rows`` in order, from ``state`` (None = a new visit)."""
        with torch.inference_mode():
            s = self.model.init_state() if state is None else state
            for r in rows:
                s = self.model.step(s, r)
            return s

    def state_from_bytes(self, data: bytes | None) -> torch.Tensor | None:
        if data is None or len(data) != 4 * self.state_size:
            return None
        return unpack_state(data)

    def queries(self, state: torch.Tensor) -> np.ndarray:
        """The interest vectors as float32 numpy (the models run ``interests`` without grad)."""
        q = self.model.interests(state)
        if q.dtype == torch.float32 and not q.requires_grad and q.device.type == "cpu":
            return q.numpy()  # the common case, without two tensor copies' dispatch
        return q.detach().float().cpu().numpy()


def load_serving_model(model_dir: Path, version: str, settings: Settings) -> ServingModel:
    """Load, verify and check one checkpoint version; raises ``ModelLoadError``."""
    try:
        ckpt = load_checkpoint(model_dir / version)
        model = build_model(ckpt.kind, ckpt.hyperparameters, ckpt.weights)
    except (CheckpointError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise ModelLoadError(f"checkpoint {version}: {exc}") from exc
    if hasattr(model, "eval"):
        model.eval()
    with torch.inference_mode():
        vectors = model.item_vectors().detach().float().cpu().numpy()
        state = model.init_state()
        queries = model.interests(state)
    n_items = len(ckpt.items)
    if vectors.shape[0] != n_items or not np.isfinite(vectors).all():
        raise ModelLoadError(
            f"checkpoint {version}: {vectors.shape[0]} item vectors for {n_items} items, "
            "or non-finite values"
        )
    if state.ndim != 1 or queries.ndim != 2 or queries.shape[1] != vectors.shape[1]:
        raise ModelLoadError(
            f"checkpoint {version}: state {tuple(state.shape)} / queries {tuple(queries.shape)} "
            f"do not fit item vectors of dimension {vectors.shape[1]}"
        )
    items = ckpt.items
    item_ids = items["item_id"].tolist()
    category_names: tuple[str, ...] = ()
    if "category" in items:
        codes, names = pd.factorize(items["category"], use_na_sentinel=True)
        categories = codes.astype(np.int64)
        category_names = tuple(str(c) for c in names)
    else:
        categories = np.full(n_items, -1, np.int64)
    popularity = items["popularity"].to_numpy(np.float64)
    index = ItemIndex(
        vectors,
        kind=settings.index,
        hnsw_m=settings.hnsw_m,
        hnsw_ef_construction=settings.hnsw_ef_construction,
        hnsw_ef_search=settings.hnsw_ef_search,
        device=settings.index_device,
        hnsw_metric=settings.hnsw_metric,
        probes=(
            probe_queries(model, popularity)
            if settings.index == "hnsw" and settings.hnsw_metric == "auto"
            else None
        ),
    )
    return ServingModel(
        version=ckpt.version,
        kind=ckpt.kind,
        model=model,
        index=index,
        item_ids=item_ids,
        row_of={str(i): r for r, i in enumerate(item_ids)},
        categories=categories,
        popularity=popularity,
        by_popularity=np.argsort(-popularity, kind="stable"),
        state_size=int(state.numel()),
        n_interests=int(queries.shape[0]),
        category_names=category_names,
        directory=version,
    )


def probe_queries(
    model: SequenceModel, popularity: np.ndarray, visits: int = 200, seed: int = 0
) -> np.ndarray:
    """Queries of ``visits`` made-up visits of 1 to 8 clicks drawn by popularity, as live
    visits click: what the HNSW index is chosen on when it has no real traffic yet."""
    rng = np.random.default_rng(seed)
    weights = popularity + 1.0
    clicks = rng.choice(len(popularity), size=(visits, 8), p=weights / weights.sum())
    lengths = rng.integers(1, 9, visits)
    queries = []
    with torch.inference_mode():
        for row, n in zip(clicks, lengths, strict=True):
            state = model.init_state()
            for item in row[:n]:
                state = model.step(state, int(item))
            queries.append(model.interests(state).detach().float().cpu().numpy())
    return np.concatenate(queries)


class ModelRegistry:
    """Holds the active ``ServingModel``; loads serialise, reads never wait."""

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.model_dir = settings.model_dir
        self._active: ServingModel | None = None
        self._load_lock = threading.Lock()
        self.last_error: str | None = None

    @property
    def active(self) -> ServingModel | None:
        return self._active

    @property
    def public_error(self) -> str | None:
        """``last_error`` as anonymous callers may read it: without the host's paths."""
        return without_paths(self.last_error, self.model_dir)

    def load_current(self) -> ServingModel:
        """Serve the version named by ``CURRENT`` (a no-op when it is already active).

        With no model served yet (at start-up), a version that cannot be served
        gives way to the newest one before it that can (``fallback_order``): a
        service with yesterday's model beats one with none. ``last_error`` (shown
        by ``/readyz``) and the log say so; the watcher keeps trying ``CURRENT``.
        """
        version = current_version(self.model_dir)
        if version is None:
            self.last_error = f"no active checkpoint in {self.model_dir} (no CURRENT file)"
            raise ModelLoadError(self.last_error)
        try:
            return self.activate(version)
        except ModelLoadError as exc:
            if self._active is not None:
                raise
            return self._fall_back(version, exc)

    def _fall_back(self, broken: str, error: ModelLoadError) -> ServingModel:
        for candidate in fallback_order(self.model_dir, broken):
            try:
                loaded = self.activate(candidate)
            except ModelLoadError:
                continue
            self.last_error = (
                f"CURRENT names {broken}, which cannot be served ({error}); serving {candidate} "
                "instead, the best version that loads (see fallback_order), until it can"
            )
            log.warning("%s", self.last_error)
            return loaded
        self.last_error = str(error)
        raise error

    def activate(self, version: str, before_swap: Callable[[], None] | None = None) -> ServingModel:
        """Load ``version`` and swap it in; on failure the previous model keeps serving.

        ``before_swap`` runs once the new model has loaded, still under the load
        lock: the admin endpoint writes ``CURRENT`` there, so the file watcher
        (which also loads under this lock) never sees a served version that
        ``CURRENT`` does not name yet, and never swaps back.
        """
        with self._load_lock:
            active = self._active
            if active is not None and active.directory == version:
                return active
            started = time.perf_counter()
            try:
                loaded = load_serving_model(self.model_dir, version, self.settings)
            except (
                Exception
            ) as exc:  # any defect of a new checkpoint must leave the old one serving
                if not isinstance(exc, ModelLoadError):
                    exc = ModelLoadError(f"checkpoint {version}: {type(exc).__name__}: {exc}")
                self.last_error = f"{exc}; still serving {active.version}" if active else str(exc)
                if self.metrics is not None:
                    self.metrics.swaps.labels("failed").inc()
                log.error("%s; still serving %s", exc, active.version if active else "nothing")
                raise exc from None
            if before_swap is not None:
                before_swap()
            self._active = loaded  # the swap: one reference assignment
            if self.metrics is not None:
                self.metrics.load_seconds.observe(time.perf_counter() - started)
                self.metrics.swaps.labels("swapped").inc()
            self.last_error = None
            del active
            frozen = freeze_heap()
            log.info("serving %s (%s); %d objects frozen", loaded.version, loaded.kind, frozen)
            return loaded


def fallback_order(model_dir: Path, broken: str) -> list[str]:
    """The versions to serve instead of ``broken``, best first.

    First the versions created before it, newest first: the model served until
    ``broken`` was activated, then older ones (a rollback). Only then the newer
    ones, oldest first: nobody chose to serve them, or one was rolled back from.
    A version whose retrain failed its quality gate is never a fallback. Time is
    the manifest's ``created``, then the name (versions are named by time).
    """
    manifests: dict[str, dict[str, Any]] = {}
    for version in list_versions(model_dir):
        with contextlib.suppress(CheckpointError):
            manifests[version] = read_manifest(model_dir, version)

    def when(version: str) -> tuple[str, str]:
        return (str(manifests[version].get("created") or ""), version)

    def passed(version: str) -> bool:
        gate = manifests[version].get("gate")
        return not (isinstance(gate, dict) and gate.get("passed") is False)

    candidates = sorted((v for v in manifests if v != broken and passed(v)), key=when)
    if broken in manifests:
        before = [v for v in candidates if when(v) < when(broken)]
    else:  # its manifest is unreadable: its name still tells its time
        before = [v for v in candidates if v < broken]
    return before[::-1] + [v for v in candidates if v not in before]
