"""``ItemIndex``: FAISS inner-product search over a checkpoint's item vectors.

Exact (``IndexFlatIP``) by default; HNSW for large catalogs where exact search
is the bottleneck (its recall against exact search is measured by the load
benchmark). On a machine where ``faiss-gpu`` sees a GPU the index moves there
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
    ) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise ValueError(f"item vectors must be a non-empty [n, d] array, got {vectors.shape}")
        self.size, self.dim = vectors.shape
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
            index = faiss.IndexHNSWFlat(self.dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = hnsw_ef_construction
            index.hnsw.efSearch = hnsw_ef_search
            index.add(vectors)
            self.index, self.kind, self.device = index, "hnsw", "cpu"
        else:
            index = faiss.IndexFlatIP(self.dim)
            index.add(vectors)
            self.index, self.kind, self.device = index, "flat", "cpu"
        log.info("item index: %s on %s, %d x %d", self.kind, self.device, self.size, self.dim)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` of every query row: scores [m, k] float32, rows [m, k] int64 (-1 = none).

        All queries go in one call, so the K interests of a request, and the
        requests of a micro-batch, share one pass over the index.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        with self._one_at_a_time:
            return self.index.search(queries, k)

    def vector(self, row: int) -> np.ndarray:
        """The stored vector of one item row, [d] float32."""
        return self.index.reconstruct(int(row))
