"""The load benchmark's in-process side: search figures and the endpoint's ratios to them."""

from __future__ import annotations

import faiss
import numpy as np

from tests.bench.api import _endpoint_against_search, search_figures


def test_endpoint_is_held_against_each_in_process_figure() -> None:
    search = {
        "hnsw_qps_batch1": 4000.0,
        "hnsw_qps_batch32_1thread": 4800.0,
        "hnsw_qps_batch32": 8000.0,
        "flat_qps_batch1": 1.0,
        "flat_qps_batch32_1thread": 1.0,
        "flat_qps_batch32": 1.0,
    }
    results = {"recommendations_batched": {"rps": 900.0}}
    out = _endpoint_against_search(search, "hnsw", 4, results)
    # K=4 queries per recommendation: 4000/4 = 1000, 4800/4 = 1200, 8000/4 = 2000 per second
    assert out == {
        "single_one_core_per_s": 1000.0,
        "endpoint_x_single_one_core": 0.9,
        "batched_one_core_per_s": 1200.0,
        "endpoint_x_batched_one_core": 0.75,
        "batched_all_cores_per_s": 2000.0,
        "endpoint_x_batched_all_cores": 0.45,
    }
    exact = _endpoint_against_search(search, "flat", 1, results)
    assert exact["single_one_core_per_s"] == 1.0 and exact["endpoint_x_single_one_core"] == 900.0


def test_search_figures_on_a_small_catalog_restores_the_thread_count() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((600, 8)).astype(np.float32)
    queries = rng.standard_normal((64, 8)).astype(np.float32)
    threads = faiss.omp_get_max_threads()
    out = search_figures(vectors, queries, queries[:16], m=16, ef=64, efc=80)
    assert faiss.omp_get_max_threads() == threads
    assert 0.5 < out["recall@20"] <= 1.0  # HNSW on 600 items at ef 64 finds most of the top 20
    # the served form is the one that found more for the probes, the other is reported beside
    chosen, other = (
        out["hnsw_metric"],
        {"inner-product", "euclidean-transform"} - {out["hnsw_metric"]},
    )
    assert out["probe_recall@20"][chosen] >= out["probe_recall@20"][other.pop()]
    for name in ("flat", "hnsw"):
        for key in ("batch1", "batch32_1thread", "batch32"):
            assert out[f"{name}_qps_{key}"] > 0
    # a search whose candidate list holds the whole catalog finds (nearly) the exact top 20
    wide = search_figures(vectors, queries, queries[:16], m=16, ef=600, efc=80)
    assert wide["recall@20"] >= 0.99
