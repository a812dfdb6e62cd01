"""ItemIndex (exact and HNSW results, GPU selection) and the micro-batching scorer."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import faiss
import numpy as np
import pytest

import app.serving.item_index as item_index
from app.metrics import Metrics
from app.serving.item_index import (
    IndexConfigError,
    ItemIndex,
    euclidean_items,
    euclidean_queries,
    exact_top,
    recall_at,
)
from app.serving.registry import probe_queries
from app.serving.scorer import ScoreJob, Scorer
from models.aggregators import max_score
from models.sasrec import SASRec, SASRecConfig


def test_flat_index_is_exact() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((500, 16)).astype(np.float32)
    queries = rng.standard_normal((3, 16)).astype(np.float32)
    scores, rows = ItemIndex(vectors, device="cpu").search(queries, 10)
    brute = queries @ vectors.T
    np.testing.assert_array_equal(rows, np.argsort(-brute, axis=1)[:, :10])
    np.testing.assert_allclose(scores, np.sort(brute, axis=1)[:, ::-1][:, :10], rtol=1e-5)


def test_hnsw_index_finds_most_of_the_exact_top10() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((2000, 16)).astype(np.float32)
    queries = rng.standard_normal((50, 16)).astype(np.float32)
    index = ItemIndex(vectors, kind="hnsw", hnsw_m=16, hnsw_ef_search=64, device="cpu")
    assert (index.kind, index.device) == ("hnsw", "cpu")
    _, approx = index.search(queries, 10)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.9
    np.testing.assert_array_equal(index.vector(7), vectors[7])


def test_gpu_is_selected_when_faiss_sees_one(monkeypatch: pytest.MonkeyPatch) -> None:
    moved = []

    def to_gpu(resources, device, index):
        moved.append((device, index.ntotal))
        return index  # stands in for the GPU copy

    monkeypatch.setattr(faiss, "StandardGpuResources", lambda: SimpleNamespace(), raising=False)
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "index_cpu_to_gpu", to_gpu, raising=False)
    vectors = np.eye(4, dtype=np.float32)
    index = ItemIndex(vectors, kind="hnsw")  # auto: the GPU wins, exact there
    assert (index.kind, index.device, moved) == ("flat", "gpu", [(0, 4)])
    assert ItemIndex(vectors, device="cpu").device == "cpu"


def test_gpu_index_takes_one_search_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """FAISS GPU indexes are not thread-safe: two scoring threads must not search at once."""
    monkeypatch.setattr(faiss, "StandardGpuResources", lambda: SimpleNamespace(), raising=False)
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "index_cpu_to_gpu", lambda r, d, index: index, raising=False)
    vectors = np.eye(4, dtype=np.float32)
    inside, most = [0], [0]

    def watched(search):
        def run(q, k):
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            time.sleep(0.02)
            inside[0] -= 1
            return search(q, k)

        return run

    most_at_once = {}
    for device in ("gpu", "cpu"):
        index = ItemIndex(vectors, device=device)
        index.index = SimpleNamespace(search=watched(index.index.search))
        inside[0] = most[0] = 0
        threads = [threading.Thread(target=index.search, args=(vectors[:1], 2)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        most_at_once[device] = most[0]
    assert most_at_once["gpu"] == 1
    assert most_at_once["cpu"] >= 2, "CPU indexes search concurrently"


def test_gpu_requested_without_one_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(item_index, "gpu_count", lambda: 0)
    with pytest.raises(IndexConfigError, match="no GPU"):
        ItemIndex(np.eye(4, dtype=np.float32), device="gpu")


class _Model(SimpleNamespace):
    """The part of a ServingModel the scorer uses."""


def _hold_searches(index: ItemIndex, pause: float = 0.0) -> tuple[threading.Event, threading.Event]:
    """Make ``index`` searches wait for the returned gate; the other event says one began.

    A held search keeps the scoring thread busy, so the jobs submitted meanwhile queue
    up into one batch. ``pause`` adds that long to every search once the gate opens.
    """
    gate, searching = threading.Event(), threading.Event()
    real_search = index.search

    def held_search(q, k):
        searching.set()
        gate.wait(5)
        time.sleep(pause)
        return real_search(q, k)

    index.search = held_search
    return gate, searching


def test_scorer_batches_waiting_jobs_and_keeps_results_apart() -> None:
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((300, 8)).astype(np.float32)
    index = ItemIndex(vectors, device="cpu")
    searches: list[int] = []
    gate = threading.Event()
    real_search = index.search

    def counting_search(q, k):
        gate.wait(5)  # hold the thread so that the other jobs queue up
        searches.append(len(q))
        return real_search(q, k)

    index.search = counting_search
    model = _Model(index=index)
    scorer = Scorer(max_batch=64)
    queries = [rng.standard_normal((1, 8)).astype(np.float32) for _ in range(20)]

    def job(q, k=5):
        return ScoreJob(model, lambda: q, k, lambda s, r: max_score(s, r, k).items.tolist())

    def boom() -> np.ndarray:
        raise ValueError("bad state")

    futures = [scorer.submit(job(q)) for q in queries]
    bad = scorer.submit(ScoreJob(model, boom, 5, lambda s, r: None))
    gate.set()
    results = [f.result(timeout=10) for f in futures]
    with pytest.raises(ValueError, match="bad state"):
        bad.result(timeout=10)
    scorer.close()
    # jobs that waited while the thread was busy went to the index together
    assert len(searches) < len(queries) and sum(searches) == 20
    for q, got in zip(queries, results, strict=True):
        assert got == np.argsort(-(q @ vectors.T)[0])[:5].tolist()


def test_scorer_hands_async_results_back_once_per_batch() -> None:
    """Async callers: results settle on their loop, one loop wake-up for a whole batch."""
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((50, 8)).astype(np.float32)
    index = ItemIndex(vectors, device="cpu")
    gate, searching = _hold_searches(index)
    model = _Model(index=index)
    scorer = Scorer(max_batch=64)
    queries = [rng.standard_normal((1, 8)).astype(np.float32) for _ in range(6)]

    def boom() -> np.ndarray:
        raise ValueError("bad state")

    async def run() -> tuple[list, int]:
        loop = asyncio.get_running_loop()
        wakeups = 0
        real_call = loop.call_soon_threadsafe

        def counting(*args, **kwargs):
            nonlocal wakeups
            wakeups += 1
            return real_call(*args, **kwargs)

        loop.call_soon_threadsafe = counting
        jobs = [ScoreJob(model, lambda q=q: q, 3, lambda s, r: r[0].tolist()) for q in queries]
        jobs.append(ScoreJob(model, boom, 3, lambda s, r: None))
        pending = [asyncio.ensure_future(scorer.score(jobs[0]))]
        await asyncio.to_thread(searching.wait, 5)  # the first job is in the index
        wakeups = 0  # (to_thread itself woke the loop once)
        pending += [asyncio.ensure_future(scorer.score(job)) for job in jobs[1:]]
        await asyncio.sleep(0.1)  # all queued behind the held first batch
        gate.set()
        got = await asyncio.gather(*pending, return_exceptions=True)
        return got, wakeups

    got, wakeups = asyncio.run(run())
    scorer.close()
    for q, rows in zip(queries, got[:-1], strict=True):
        assert rows == np.argsort(-(q @ vectors.T)[0])[:3].tolist()
    assert isinstance(got[-1], ValueError)
    # the first job went alone, the six that waited behind it as one batch
    assert scorer.batches == 2 and wakeups == 2


def test_two_scoring_threads_overlap_a_search_with_the_next_batch() -> None:
    """With two threads, one job's queries are computed while another job is searching."""
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((100, 8)).astype(np.float32)
    index = ItemIndex(vectors, device="cpu")
    prepared_meanwhile = threading.Event()
    searching = [0]  # searches under way
    real_search = index.search

    def slow_search(q, k):
        searching[0] += 1
        prepared_meanwhile.wait(5)  # released only by a prepare during this search
        searching[0] -= 1
        return real_search(q, k)

    index.search = slow_search
    model = _Model(index=index)
    scorer = Scorer(max_batch=1, threads=2)
    queries = [rng.standard_normal((1, 8)).astype(np.float32) for _ in range(8)]

    def prepare(q: np.ndarray) -> np.ndarray:
        if searching[0]:
            prepared_meanwhile.set()
        return q

    jobs = [ScoreJob(model, lambda q=q: prepare(q), 4, lambda s, r: r[0].tolist()) for q in queries]
    futures = [scorer.submit(j) for j in jobs]
    results = [f.result(timeout=10) for f in futures]
    threads = list(scorer._threads)
    scorer.close()
    assert prepared_meanwhile.is_set()
    assert not any(t.is_alive() for t in threads), "close() stops every thread"
    for q, got in zip(queries, results, strict=True):
        assert got == np.argsort(-(q @ vectors.T)[0])[:4].tolist()


def test_scorer_reports_batches_busy_and_search_time() -> None:
    """The scoring metrics: one histogram sample per batch (its job count), busy time that
    includes the search time, the search time at least what the index took."""
    vectors = np.eye(6, dtype=np.float32)
    index = ItemIndex(vectors, device="cpu")
    gate, searching = _hold_searches(index, pause=0.05)
    model = _Model(index=index)
    metrics = Metrics()
    scorer = Scorer(max_batch=64, metrics=metrics)

    def job(row: int) -> ScoreJob:
        return ScoreJob(model, lambda: vectors[row : row + 1], 2, lambda s, r: r[0].tolist())

    futures = [scorer.submit(job(0))]
    assert searching.wait(5)
    futures += [scorer.submit(job(r)) for r in range(1, 5)]  # they wait for the first
    gate.set()
    assert [f.result(timeout=10)[0] for f in futures] == [0, 1, 2, 3, 4]
    scorer.close()

    def value(name: str, labels: dict | None = None) -> float:
        return metrics.registry.get_sample_value(name, labels or {})

    assert value("nextitem_scorer_batch_jobs_count") == 2  # the first alone, then four
    assert value("nextitem_scorer_batch_jobs_sum") == 5
    assert value("nextitem_scorer_batch_jobs_bucket", {"le": "1.0"}) == 1
    assert value("nextitem_scorer_batch_jobs_bucket", {"le": "4.0"}) == 2
    search = value("nextitem_scorer_search_seconds_total")
    assert 0.1 <= search <= value("nextitem_scorer_busy_seconds_total")


def test_a_long_batch_is_shared_with_idle_threads_and_a_short_one_is_not() -> None:
    """The split rule of ``Scorer._take_batch``, on a stopped scorer's queue: ten waiting
    jobs, one other thread idle. Jobs of 1 ms against a 3 ms limit: this thread takes five
    and leaves five; jobs of 0.1 ms (a batch of 1 ms): it takes all ten."""
    scorer = Scorer(max_batch=64, threads=2, split_seconds=0.003)
    scorer.close()  # no thread takes from the queue any more
    model = _Model(index=ItemIndex(np.eye(4, dtype=np.float32), device="cpu"))
    jobs = [
        ScoreJob(model, lambda: np.eye(4, dtype=np.float32)[:1], 1, lambda s, r: r)
        for _ in range(10)
    ]

    def take(job_seconds: float, idle: int) -> list[int]:
        for job in jobs:
            scorer._queue.put(job)
        scorer._idle, scorer._job_seconds = idle, job_seconds
        sizes = []
        while scorer._queue.qsize():
            batch = scorer._take_batch()
            assert batch is not None
            sizes.append(len(batch))
            scorer._idle = idle  # the other thread is still waiting
        return sizes

    # 10 waiting: 5 | 5 waiting: 3 | 2 waiting: 2 ms < 3 ms, taken whole
    assert take(0.001, idle=1) == [5, 3, 2]
    assert take(0.0001, idle=1) == [10]
    assert take(0.001, idle=0) == [10]  # nobody to share with
    # three threads: a third each, rounded up (10: 4 | 6: 2 | 4: 2 | 2: whole)
    assert take(0.001, idle=2) == [4, 2, 2, 2]


def test_scorer_keeps_a_moving_average_of_the_time_per_job() -> None:
    vectors = np.eye(6, dtype=np.float32)
    index = ItemIndex(vectors, device="cpu")
    real_search = index.search

    def slow_search(q, k):
        time.sleep(0.02)
        return real_search(q, k)

    index.search = slow_search
    model = _Model(index=index)
    scorer = Scorer(max_batch=1)
    for row in range(3):  # one at a time: three batches of one 20 ms job
        job = ScoreJob(model, lambda row=row: vectors[row : row + 1], 1, lambda s, r: r[0, 0])
        assert scorer.run(job) == row
    scorer.close()
    # 0 -> 2 ms -> 3.8 ms -> 5.4 ms (a tenth of the way to 20 ms per batch), sleep overshoots
    assert 0.0054 <= scorer._job_seconds < 0.0054 * 1.5


def _cone(n: int = 3000, d: int = 16, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Item vectors in a narrow cone (a strong shared direction, short vectors), queries
    long and in every direction: the geometry of SASRec's shared embedding and its
    layer-normed queries, where the graph over raw inner products loses items."""
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((n, d))
    directions[:, 0] += 4.0
    queries = 18 * rng.standard_normal((600, d)) / np.sqrt(d)
    return (0.1 * directions).astype(np.float32), queries.astype(np.float32)


def _spread(n: int = 3000, d: int = 16, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Norms spread over orders of magnitude, where the Euclidean transform fails."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, d)) * rng.lognormal(0.0, 1.0, (n, 1))
    return vectors.astype(np.float32), rng.standard_normal((600, d)).astype(np.float32)


@pytest.mark.parametrize(
    ("make", "chosen"), [(_cone, "euclidean-transform"), (_spread, "inner-product")]
)
def test_auto_hnsw_keeps_the_form_that_finds_more_for_unseen_queries(make, chosen) -> None:
    vectors, queries = make()
    probes, held_out = queries[:200], queries[200:]  # chosen on some queries, held to others
    index = ItemIndex(vectors, kind="hnsw", hnsw_m=8, hnsw_ef_search=32, probes=probes)
    assert index.metric == chosen
    recall = index.recall[chosen]
    assert index.describe() == f"hnsw ({chosen}, probe recall@20 {recall:.3f}) on cpu"
    other = next(f for f in index.recall if f != chosen)
    assert index.recall[chosen] >= index.recall[other] + 0.1
    exact = exact_top(vectors, held_out, 10)
    found = {
        form: recall_at(
            ItemIndex(vectors, kind="hnsw", hnsw_m=8, hnsw_ef_search=32, hnsw_metric=form).search(
                held_out, 10
            )[1],
            exact,
        )
        for form in ("inner-product", "euclidean-transform")
    }
    assert found[chosen] >= found[other] + 0.1
    assert recall_at(index.search(held_out, 10)[1], exact) == pytest.approx(found[chosen])


def test_the_euclidean_transform_orders_items_by_inner_product() -> None:
    """Exact Euclidean search over the transformed vectors is exact inner-product search,
    and the transformed HNSW index scores what it finds by the exact inner product."""
    vectors, queries = _cone(n=400)
    l2 = faiss.IndexFlatL2(vectors.shape[1] + 1)
    l2.add(euclidean_items(vectors))
    _, nearest = l2.search(euclidean_queries(queries), 10)
    exact = queries @ vectors.T  # the same items, up to float32 ties in |q'-x'|^2
    np.testing.assert_allclose(
        np.take_along_axis(exact, nearest, axis=1), -np.sort(-exact, axis=1)[:, :10], atol=1e-4
    )

    index = ItemIndex(vectors, kind="hnsw", hnsw_m=16, hnsw_metric="euclidean-transform")
    scores, rows = index.search(queries, 10)
    np.testing.assert_allclose(
        scores, np.take_along_axis(queries @ vectors.T, rows, axis=1), atol=1e-5
    )
    assert (np.diff(scores, axis=1) <= 0).all()
    np.testing.assert_array_equal(index.vector(7), vectors[7])
    scores, rows = index.search(queries[:1], 500)  # more than the catalog holds
    assert (rows[0, 400:] == -1).all() and np.isneginf(scores[0, 400:]).all()


def test_probe_queries_are_the_models_own_for_visits_of_popular_items() -> None:
    model = SASRec(SASRecConfig(n_items=30, dim=8, n_blocks=1, max_len=5)).eval()
    popularity = np.zeros(30)
    popularity[[4, 9]] = 1e6  # nearly every click on these two
    probes = probe_queries(model, popularity, visits=20)
    assert probes.shape == (20, 8) and probes.dtype == np.float32
    np.testing.assert_array_equal(probes, probe_queries(model, popularity, visits=20))
    one_click = {
        item: model.interests(model.step(model.init_state(), item)).numpy()[0] for item in (4, 9)
    }
    # visits of one click are one of the two popular items' queries
    singles = [p for p in probes if any(np.allclose(p, q, atol=1e-5) for q in one_click.values())]
    assert singles
