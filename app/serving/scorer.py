"""The scoring thread: model steps and index searches off the event loop, micro-batched.

Async handlers submit a ``ScoreJob`` and await its future; one thread takes
every job that is waiting (up to ``max_batch``), runs each job's model work,
sends all their query vectors to the index in one search call per model, and
finishes each job (aggregation) with its slice of the results. Under load,
batches form by themselves while the thread is busy, so no request waits for
a timer, and the event loop never runs CPU-heavy code. ``max_batch = 1``
turns batching off (one search per request), for comparison.

Async callers (``score``) get their results back in one hand-over per batch
and event loop: a wake-up of the loop from another thread is a system call
and a GIL hand-over, too dear to pay once per request.

``threads > 1`` runs several such threads on the one queue. The index search
releases the interpreter lock, so while one thread searches another can compute
the next batch's queries (a K-interest extractor is a tenth of a millisecond of
Python and numpy per visit): with one thread the two take turns, and the search,
the part that can use the second core, idles meanwhile.

A thread that finds other threads idle leaves them their share of the waiting
jobs when the batch would keep it busy for longer than ``split_seconds`` (judged
by the recent time per job). A batch of multi-interest visits can keep one
thread busy for milliseconds while the other waits: split, the two search side
by side and every visit of the batch is answered sooner. Cheap batches stay
whole: for a GRU4Rec visit the event loop is the bottleneck, and each extra
batch is one more hand-over to it.

``max_pending`` bounds the jobs of async callers waiting for a thread or being
scored: one more is refused at once (``ScorerBusy``, a 503 with Retry-After)
rather than queued behind them, since past the bound every request would only
wait longer and the queue would grow for as long as the overload lasts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from app.metrics import Metrics
from app.overload import Overloaded
from app.serving.registry import ServingModel

log = logging.getLogger(__name__)


class ScorerBusy(Overloaded):
    """The scoring threads have ``max_pending`` jobs waiting or in progress."""

    reason: ClassVar[str] = "scorer_busy"
    detail: ClassVar[str] = "the service is busy scoring other requests; retry later"


@dataclass
class ScoreJob:
    model: ServingModel
    prepare: Callable[[], np.ndarray]  # -> query vectors [K, d]
    k: int  # results per query vector
    finish: Callable[[np.ndarray, np.ndarray], Any]  # (scores [K, k], rows [K, k]) -> result
    future: Future | None = None  # for ``submit`` (thread callers)
    waiter: asyncio.Future | None = field(default=None, repr=False)  # for ``score`` (async)

    def cancelled(self) -> bool:
        if self.waiter is not None:
            return self.waiter.cancelled()
        return self.future is not None and not self.future.set_running_or_notify_cancel()


# A finished job: (job, result, exception)
_Outcome = tuple[ScoreJob, Any, BaseException | None]


_STOP = object()


class Scorer:
    def __init__(
        self,
        max_batch: int = 64,
        on_start: Callable[[], None] | None = None,
        threads: int = 1,
        metrics: Metrics | None = None,
        split_seconds: float = 0.003,
        max_pending: int | None = None,
    ) -> None:
        """``on_start`` runs first in each scoring thread (OpenMP thread limits are per thread);
        ``max_pending``: jobs of async callers waiting or being scored (None: no bound)."""
        if threads < 1:
            raise ValueError("threads must be at least 1")
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._pending = 0  # jobs submitted and not yet scored (under ``_counting``)
        self.split_seconds = split_seconds
        self._on_start = on_start
        self._metrics = metrics
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._run, name=f"nextitem-scorer-{i}", daemon=True)
            for i in range(threads)
        ]
        self.batches = 0  # statistics, kept by every thread under one lock
        self.jobs = 0
        self._counting = threading.Lock()
        self._idle = 0  # threads waiting for a job
        self._job_seconds = 0.0  # recent busy time per job (moving average)
        for thread in self._threads:
            thread.start()

    def submit(self, job: ScoreJob) -> Future:
        """For callers on a thread of their own (they wait for the future): never refused."""
        job.future = Future()
        with self._counting:
            self._pending += 1
        self._queue.put(job)
        return job.future

    async def score(self, job: ScoreJob) -> Any:
        """The job's result, for a caller on an event loop; ``ScorerBusy`` at once when
        ``max_pending`` jobs are waiting or being scored."""
        with self._counting:
            if self.max_pending is not None and self._pending >= self.max_pending:
                raise ScorerBusy(f"{self._pending} jobs waiting or being scored")
            self._pending += 1
        job.waiter = asyncio.get_running_loop().create_future()
        self._queue.put(job)
        return await job.waiter

    def run(self, job: ScoreJob) -> Any:
        """Blocking form, for callers outside the event loop."""
        return self.submit(job).result()

    def close(self) -> None:
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout=5)

    def _take_batch(self) -> list[ScoreJob] | None:
        with self._counting:
            self._idle += 1
        first = self._queue.get()
        with self._counting:
            self._idle -= 1
            idle, job_seconds = self._idle, self._job_seconds
        if first is _STOP:
            return None
        jobs = [first]
        limit = self.max_batch
        waiting = 1 + self._queue.qsize()
        if idle and job_seconds * min(waiting, limit) > self.split_seconds:
            limit = min(limit, -(-waiting // (1 + idle)))  # this thread's share, rounded up
        while len(jobs) < limit:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                self._queue.put(_STOP)
                break
            jobs.append(job)
        return jobs

    def _run(self) -> None:
        if self._on_start is not None:
            self._on_start()
        while (jobs := self._take_batch()) is not None:
            outcomes: list[_Outcome] = []
            start, searching = time.perf_counter(), 0.0
            try:
                searching = self._score(jobs, outcomes)
            except Exception as exc:  # never let one bad batch stop the thread
                log.exception("scoring batch failed")
                done = {id(job) for job, _, _ in outcomes}
                outcomes += [(job, None, exc) for job in jobs if id(job) not in done]
            busy = time.perf_counter() - start
            with self._counting:
                self._pending -= len(jobs)
                self.batches += 1
                self.jobs += len(jobs)
                self._job_seconds += 0.1 * (busy / len(jobs) - self._job_seconds)
            if self._metrics is not None:  # per batch, not per request; before the answers
                self._metrics.scorer_batch_jobs.observe(len(jobs))
                self._metrics.scorer_busy.inc(busy)
                self._metrics.scorer_search.inc(searching)
            _deliver(outcomes)

    @staticmethod
    def _score(jobs: list[ScoreJob], outcomes: list[_Outcome]) -> float:
        """Score ``jobs`` into ``outcomes``; the seconds spent searching."""
        searching = 0.0
        ready: list[tuple[ScoreJob, np.ndarray]] = []
        for job in jobs:
            if job.cancelled():
                continue
            try:
                ready.append((job, job.prepare()))
            except Exception as exc:
                outcomes.append((job, None, exc))
        # Jobs started on different models (a swap in between) search their own index.
        by_model: dict[int, list[tuple[ScoreJob, np.ndarray]]] = {}
        for job, q in ready:
            by_model.setdefault(id(job.model), []).append((job, q))
        for group in by_model.values():
            index = group[0][0].model.index
            k = min(max(job.k for job, _ in group), index.size)
            t0 = time.perf_counter()
            scores, rows = index.search(np.concatenate([q for _, q in group]), k)
            searching += time.perf_counter() - t0
            start = 0
            for job, q in group:
                end = start + len(q)
                try:
                    result = job.finish(scores[start:end, : job.k], rows[start:end, : job.k])
                    outcomes.append((job, result, None))
                except Exception as exc:
                    outcomes.append((job, None, exc))
                start = end
        return searching


def _deliver(outcomes: list[_Outcome]) -> None:
    """Settle thread callers' futures here, and async callers' in one call per loop."""
    by_loop: dict[int, tuple[asyncio.AbstractEventLoop, list[_Outcome]]] = {}
    for outcome in outcomes:
        job = outcome[0]
        if job.waiter is not None:
            loop = job.waiter.get_loop()
            by_loop.setdefault(id(loop), (loop, []))[1].append(outcome)
        elif job.future is not None and not job.future.done():
            if outcome[2] is None:
                job.future.set_result(outcome[1])
            else:
                job.future.set_exception(outcome[2])
    for loop, settled in by_loop.values():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_settle, settled)


def _settle(outcomes: list[_Outcome]) -> None:
    for job, result, exc in outcomes:
        waiter = job.waiter
        if waiter is None or waiter.done():  # cancelled meanwhile
            continue
        if exc is None:
            waiter.set_result(result)
        else:
            waiter.set_exception(exc)
