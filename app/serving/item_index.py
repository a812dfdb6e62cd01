"""``ItemIndex``: FAISS inner-product search over a checkpoint's item vectors.

Exact (``IndexFlatIP``) by default; HNSW for large catalogs where exact search
is the bottleneck (its recall against exact search is measured by the load
benchmark).

HNSW searches an inner product in one of two forms, and which one finds the
exact top items depends on the model's vectors. The graph over raw inner
products suits GRU4Rec's (0.99 of the exact top 20 in the load benchmark) and
vectors whose norms spread widely; where queries are
much longer than the item vectors and the items' directions decide (SASRec's
layer-normed queries against its shared embedding), items that are nobody's
best match are never linked and cannot be found (recall@20 stays near 0.7
however wide the search). The Euclidean transform (Bachrach et al., RecSys
2014: each item gets one more coordinate, sqrt(M^2 - |x|^2), which puts every
item on a sphere of radius M, and the nearest item to the query [q, 0] is the
one with the largest inner product) suits those, and fails on widely spread
norms. ``hnsw_metric="auto"`` builds both and keeps the one that finds more of
the exact top 20 for probe queries the model itself made (``recall``).

On a machine where ``faiss-gpu`` sees a GPU the index moves there
(``index_device=auto``); the GPU index is always exact, which is fast there.

CPU indexes answer concurrent searches from several scoring threads; FAISS's GPU
indexes are not thread-safe even for searches (their GPU resources object is
shared state), so there one lock lets one search through at a time.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Literal

import faiss
import numpy as np

log = logging.getLogger(__name__)


HNSWMetric = Literal["auto", "inner-product", "euclidean-transform"]


class IndexConfigError(Exception):
    """The index settings cannot be honoured on this machine (e.g. GPU asked, none present)."""


def gpu_count() -> int:
    """GPUs faiss can use: 0 with the CPU-only build of faiss."""
    if not hasattr(faiss, "StandardGpuResources"):
        return 0
    return int(faiss.get_num_gpus())


class ItemIndex:
    def __init__(
        self,
        vectors: np.ndarray,
        kind: Literal["flat", "hnsw"] = "flat",
        hnsw_m: int = 32,
        hnsw_ef_construction: int = 200,
        hnsw_ef_search: int = 128,
        device: Literal["auto", "cpu", "gpu"] = "auto",
        hnsw_metric: HNSWMetric = "auto",
        probes: np.ndarray | None = None,
    ) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise ValueError(f"item vectors must be a non-empty [n, d] array, got {vectors.shape}")
        self.size, self.dim = vectors.shape
        self.metric: str = "inner-product"
        #: recall@20 against exact search on the probes, per HNSW form built
        self.recall: dict[str, float] = {}
        # with the Euclidean form: the item vectors, a view of the index's own storage
        self._transform: np.ndarray | None = None
        use_gpu = device == "gpu" or (device == "auto" and gpu_count() > 0)
        self._one_at_a_time: contextlib.AbstractContextManager = (
            threading.Lock() if use_gpu else contextlib.nullcontext()
        )
        if use_gpu:
            if gpu_count() == 0:
                raise IndexConfigError("index_device=gpu, but faiss sees no GPU (faiss-gpu?)")
            self._gpu_resources = faiss.StandardGpuResources()
            cpu = faiss.IndexFlatIP(self.dim)
            cpu.add(vectors)
            self.index = faiss.index_cpu_to_gpu(self._gpu_resources, 0, cpu)
            self.kind, self.device = "flat", "gpu"
        elif kind == "hnsw":
            self.index = self._hnsw(
                vectors, hnsw_metric, probes, hnsw_m, hnsw_ef_construction, hnsw_ef_search
            )
            self.kind, self.device = "hnsw", "cpu"
        else:
            index = faiss.IndexFlatIP(self.dim)
            index.add(vectors)
            self.index, self.kind, self.device = index, "flat", "cpu"
        log.info(
            "item index: %s (%s) on %s, %d x %d, probe recall@20 %s",
            self.kind,
            self.metric,
            self.device,
            self.size,
            self.dim,
            self.recall or "not measured",
        )

    def _hnsw(
        self,
        vectors: np.ndarray,
        metric: HNSWMetric,
        probes: np.ndarray | None,
        m: int,
        ef_construction: int,
        ef_search: int,
    ) -> faiss.Index:
        forms = ("inner-product", "euclidean-transform") if metric == "auto" else (metric,)
        built: dict[str, faiss.Index] = {}
        for form in forms:
            transform = form == "euclidean-transform"
            data = euclidean_items(vectors) if transform else vectors
            index = faiss.IndexHNSWFlat(
                data.shape[1], m, faiss.METRIC_L2 if transform else faiss.METRIC_INNER_PRODUCT
            )
            index.hnsw.efConstruction = ef_construction
            index.hnsw.efSearch = ef_search
            index.add(data)
            built[form] = index
        if metric == "auto":
            if probes is None:  # no model to ask: the items stand in for its queries
                probes = vectors[np.random.default_rng(0).choice(len(vectors), 200)]
            probes = np.ascontiguousarray(probes, dtype=np.float32)
            exact = exact_top(vectors, probes, 20)
            for form, index in built.items():
                found = index.search(
                    euclidean_queries(probes) if form != "inner-product" else probes, 20
                )[1]
                self.recall[form] = recall_at(found, exact)
            best = max(forms, key=lambda f: self.recall[f])  # a tie keeps the inner product
        else:
            best = metric
        self.metric = best
        if best == "euclidean-transform":
            self._transform = stored_vectors(built[best])[:, : self.dim]
        return built[best]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` of every query row: scores [m, k] float32, rows [m, k] int64 (-1 = none).

        All queries go in one call, so the K interests of a request, and the
        requests of a micro-batch, share one pass over the index.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self._transform is not None:
            return self._search_transformed(queries, k)
        with self._one_at_a_time:
            return self.index.search(queries, k)

    def _search_transformed(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The Euclidean form's nearest items, scored by their exact inner products."""
        assert self._transform is not None
        _, rows = self.index.search(euclidean_queries(queries), k)
        found = self._transform[np.maximum(rows, 0)]  # [m, k, d]
        scores = np.einsum("md,mkd->mk", queries, found)
        scores[rows < 0] = -np.inf
        order = np.argsort(-scores, axis=1, kind="stable")
        return np.take_along_axis(scores, order, 1), np.take_along_axis(rows, order, 1)

    def describe(self) -> str:
        """What the operator's dashboard shows: the kind, and for HNSW its form and recall."""
        if self.kind != "hnsw":
            return f"{self.kind} (exact) on {self.device}"
        recall = self.recall.get(self.metric)
        measured = f", probe recall@20 {recall:.3f}" if recall is not None else ""
        return f"hnsw ({self.metric}{measured}) on {self.device}"

    def vector(self, row: int) -> np.ndarray:
        """The stored vector of one item row, [d] float32."""
        if self._transform is not None:
            return self._transform[int(row)].copy()
        return self.index.reconstruct(int(row))


def stored_vectors(index: faiss.IndexHNSWFlat) -> np.ndarray:
    """The vectors an HNSW index stores, as a numpy view of its memory (no copy: valid as
    long as the index lives)."""
    storage = faiss.downcast_index(index.storage)
    return faiss.rev_swig_ptr(storage.get_xb(), index.ntotal * index.d).reshape(-1, index.d)


def euclidean_items(vectors: np.ndarray) -> np.ndarray:
    """[x, sqrt(M^2 - |x|^2)]: every item at distance M from the origin (M = the largest norm)."""
    norms = np.einsum("nd,nd->n", vectors, vectors)
    extra = np.sqrt(np.maximum(norms.max() - norms, 0.0))
    return np.hstack([vectors, extra[:, None]]).astype(np.float32)


def euclidean_queries(queries: np.ndarray) -> np.ndarray:
    """[q, 0]: |q' - x'|^2 = |q|^2 + M^2 - 2 q.x, smallest where the inner product is largest."""
    return np.hstack([queries, np.zeros((len(queries), 1), np.float32)])


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Rows of the exact top ``k`` inner products of each query (in no particular order)."""
    scores = queries @ vectors.T
    k = min(k, vectors.shape[0])
    return np.argpartition(-scores, k - 1, axis=1)[:, :k]


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    """The share of each query's exact top items among those found, averaged over queries."""
    hits = (found[:, :, None] == exact[:, None, :]).any(axis=2).sum(axis=1)
    return float(np.mean(hits / exact.shape[1]))
