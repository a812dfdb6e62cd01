"""The scoring thread: model steps and index searches off the event loop, micro-batched.

Async handlers submit a ``ScoreJob`` and await its future; one thread takes
every job that is waiting (up to ``max_batch``), runs each job's model work,
sends all their query vectors to the index in one search call per model, and
finishes each job (aggregation) with its slice of the results. Under load,
batches form by themselves while the thread is busy, so no request waits for
a timer, and the event loop never runs CPU-heavy code. ``max_batch = 1``
turns batching off (one search per request), for comparison.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.model_registry import ServingModel

log = logging.getLogger(__name__)


@dataclass
class ScoreJob:
    model: ServingModel
    prepare: Callable[[], np.ndarray]  # -> query vectors [K, d]
    k: int  # results per query vector
    finish: Callable[[np.ndarray, np.ndarray], Any]  # (scores [K, k], rows [K, k]) -> result
    future: Future = field(default_factory=Future)


_STOP = object()


class Scorer:
    def __init__(self, max_batch: int = 64, on_start: Callable[[], None] | None = None) -> None:
        """``on_start`` runs first in the scoring thread (OpenMP thread limits are per thread)."""
        self.max_batch = max_batch
        self._on_start = on_start
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="nextitem-scorer", daemon=True)
        self.batches = 0
        self.jobs = 0
        self._thread.start()

    def submit(self, job: ScoreJob) -> Future:
        self._queue.put(job)
        return job.future

    def run(self, job: ScoreJob) -> Any:
        """Blocking form, for callers outside the event loop."""
        return self.submit(job).result()

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=5)

    def _take_batch(self) -> list[ScoreJob] | None:
        first = self._queue.get()
        if first is _STOP:
            return None
        jobs = [first]
        while len(jobs) < self.max_batch:
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
            self.batches += 1
            self.jobs += len(jobs)
            try:
                self._score(jobs)
            except Exception as exc:  # never let one bad batch stop the thread
                log.exception("scoring batch failed")
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)

    @staticmethod
    def _score(jobs: list[ScoreJob]) -> None:
        ready: list[tuple[ScoreJob, np.ndarray]] = []
        for job in jobs:
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                ready.append((job, job.prepare()))
            except Exception as exc:
                job.future.set_exception(exc)
        # Jobs started on different models (a swap in between) search their own index.
        by_model: dict[int, list[tuple[ScoreJob, np.ndarray]]] = {}
        for job, q in ready:
            by_model.setdefault(id(job.model), []).append((job, q))
        for group in by_model.values():
            index = group[0][0].model.index
            k = min(max(job.k for job, _ in group), index.size)
            scores, rows = index.search(np.concatenate([q for _, q in group]), k)
            start = 0
            for job, q in group:
                end = start + len(q)
                try:
                    job.future.set_result(
                        job.finish(scores[start:end, : job.k], rows[start:end, : job.k])
                    )
                except Exception as exc:
                    job.future.set_exception(exc)
                start = end
