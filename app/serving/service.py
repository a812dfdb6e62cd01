"""What the endpoints do, independent of HTTP: ingest events, recommend, find similar items.

Handlers are async and only wait on I/O here; every model step, index search
and aggregation runs in the scoring threads (``app.serving.scorer``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from app.events.log import LoggedEvent
from app.metrics import Metrics
from app.overload import Overloaded
from app.schemas import Event, EventAck, Fallback
from app.serving.registry import ModelRegistry, ServingModel
from app.serving.scorer import ScoreJob, Scorer
from app.sessions.store import SessionRecord, SessionStore, StoreUnavailable
from app.settings import Settings
from models.aggregators import Ranked, diversity_greedy, max_score
from models.contract import pack_state


class NoModel(Exception):
    """No checkpoint is being served yet."""


class UnknownItem(Exception):
    pass


@dataclass(frozen=True)
class Query:
    n: int
    diversity: float
    exclude_seen: bool


# Answers are plain dicts in the shape of ``schemas.Recommendations``: the hot endpoints
# serialise them directly instead of validating 20 pydantic objects per request.
Answer = dict[str, Any]


_ID_TEXTS: dict[str, list[str]] = {}


def item_texts(sm: ServingModel) -> list[str]:
    """Row -> item id as text, per model version (built once, on first use).

    Item ids are identifiers: answers carry them as strings whatever type the
    catalog stored them with, the same text a shop's events are matched by.
    """
    texts = _ID_TEXTS.get(sm.version)
    if texts is None:
        texts = [str(i) for i in sm.item_ids]
        if len(_ID_TEXTS) >= 4:  # old versions after swaps
            _ID_TEXTS.pop(next(iter(_ID_TEXTS)))
        _ID_TEXTS[sm.version] = texts
    return texts


def _answer(sm: ServingModel, ranked: Ranked, fallback: Fallback | None) -> Answer:
    ids = item_texts(sm)
    return {
        "model_version": sm.version,
        "fallback": fallback,
        "items": [
            {"item_id": ids[r], "score": s, "interest": k}
            for r, s, k in zip(
                ranked.items.tolist(),
                ranked.scores.tolist(),
                ranked.interests.tolist(),
                strict=True,
            )
        ],
    }


def popular(sm: ServingModel, n: int, exclude: Sequence[int] = ()) -> Answer:
    """The most popular items (minus ``exclude``): the answer when there is no usable state."""
    head = sm.by_popularity[: n + len(exclude)]
    if len(exclude):
        head = head[~np.isin(head, np.asarray(exclude))]
    head = head[:n].tolist()
    ids = item_texts(sm)
    return {
        "model_version": sm.version,
        "fallback": None,
        "items": [
            {"item_id": ids[r], "score": float(sm.popularity[r]), "interest": None} for r in head
        ],
    }


class Service:
    def __init__(
        self,
        settings: Settings,
        store: SessionStore,
        registry: ModelRegistry,
        scorer: Scorer,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.scorer = scorer
        self.metrics = metrics

    def model(self) -> ServingModel:
        sm = self.registry.active
        if sm is None:
            raise NoModel(self.registry.public_error or "no model loaded")
        return sm

    # ---- events -------------------------------------------------------------------------------

    async def ingest(self, events: Sequence[Event]) -> list[EventAck]:
        """Log and append events; raises ``StoreUnavailable`` (nothing acknowledged) when down."""
        sm = self.registry.active
        now = time.time()
        latest = now + self.settings.max_clock_skew_seconds
        logged, clamped = [], 0
        for e in events:
            ts = e.epoch_seconds(now)
            if ts > latest:  # future dates would choose a retrain's hold-out: see the setting
                ts, clamped = now, clamped + 1
            logged.append(LoggedEvent(e.session_id, str(e.item_id), ts, e.event_type, e.event_id))
        try:
            fresh = await self.store.ingest(logged)
        except Overloaded as exc:  # the store is up, at a bound: nothing recorded
            self.metrics.overloads.labels(exc.reason).inc()
            self.metrics.events.labels("rejected").inc(len(events))
            raise
        except StoreUnavailable:
            self.metrics.store_up.set(0)
            self.metrics.events.labels("rejected").inc(len(events))
            raise
        self.metrics.store_up.set(1)
        if clamped:
            self.metrics.events.labels("future_clamped").inc(clamped)
        known = [sm is not None and e.item_id in sm.row_of for e in logged]
        n_fresh = sum(fresh)
        self.metrics.events.labels("logged").inc(n_fresh)
        if n_fresh < len(fresh):
            self.metrics.events.labels("duplicate").inc(len(fresh) - n_fresh)
        if not all(known):
            self.metrics.events.labels("unknown_item").inc(len(known) - sum(known))
        return [
            EventAck(status="logged" if f else "duplicate", known_item=k)
            for f, k in zip(fresh, known, strict=True)
        ]

    # ---- recommendations ------------------------------------------------------------------------

    def _fallback(
        self, sm: ServingModel, q: Query, reason: Fallback, seen: Sequence[int] = ()
    ) -> Answer:
        self.metrics.fallbacks.labels(reason).inc()
        out = popular(sm, q.n, seen if q.exclude_seen else ())
        out["fallback"] = reason
        return out

    def _job(
        self,
        sm: ServingModel,
        state: torch.Tensor | None,
        rows: list[int],
        seen: list[int],
        q: Query,
    ) -> tuple[ScoreJob, list[bytes]]:
        """A job folding ``rows`` into ``state``, then ranking; the new state lands in the list."""
        # a set, not np.unique: a visit's few rows sort slower in numpy than they hash
        exclude = np.fromiter(set(seen), np.int64) if q.exclude_seen and seen else None
        n_excluded = 0 if exclude is None else len(exclude)
        per_interest = (q.n * self.settings.diversity_pool if q.diversity > 0 else q.n) + n_excluded
        new_state: list[bytes] = []

        def prepare() -> np.ndarray:
            s = sm.fold(state, rows) if rows or state is None else state
            new_state.append(pack_state(s))
            return sm.queries(s)

        def finish(scores: np.ndarray, ids: np.ndarray) -> Ranked:
            if q.diversity > 0:
                return diversity_greedy(scores, ids, q.n, sm.categories, q.diversity, exclude)
            return max_score(scores, ids, q.n, exclude)

        return ScoreJob(sm, prepare, min(per_interest, sm.index.size), finish), new_state

    async def _score(self, job: ScoreJob) -> Ranked:
        try:
            return await self.scorer.score(job)
        except Overloaded as exc:  # the scoring threads' queue is full: a 503 at once
            self.metrics.overloads.labels(exc.reason).inc()
            raise

    async def for_session(self, session_id: str, q: Query) -> Answer:
        sm = self.model()
        try:
            rec = await self.store.get(session_id)
        except StoreUnavailable:
            self.metrics.store_up.set(0)
            return self._fallback(sm, q, "store_unavailable")
        self.metrics.store_up.set(1)
        if rec is None:
            return self._fallback(sm, q, "new_session")
        seen = sm.rows(rec.items)
        if not seen:
            return self._fallback(sm, q, "no_known_items")
        start, pending = self._resume(sm, rec)
        job, new_state = self._job(sm, start, sm.rows(pending), seen, q)
        ranked = await self._score(job)
        if start is None or pending:
            # the state is only a cache: if it cannot be written, the next call folds again
            with contextlib.suppress(StoreUnavailable):
                await self.store.save_state(session_id, sm.version, new_state[0], rec.n_events)
        return _answer(sm, ranked, None)

    @staticmethod
    def _resume(sm: ServingModel, rec: SessionRecord) -> tuple[torch.Tensor | None, list[str]]:
        """The stored state and the items it does not cover yet, or (None, all recent items).

        A state of another model version, or one so stale that the items it
        misses were trimmed from the list, is rebuilt from the recent items.
        """
        if rec.state_version == sm.version:
            state = sm.state_from_bytes(rec.state)
            missing = rec.n_events - rec.state_covers
            if state is not None and 0 <= missing <= len(rec.items):
                return state, rec.items[len(rec.items) - missing :]
        return None, rec.items

    async def stateless(self, items: Sequence[str | int], q: Query) -> Answer:
        sm = self.model()
        rows = sm.rows([str(i) for i in items])
        if not rows:
            return self._fallback(sm, q, "no_known_items")
        job, _ = self._job(sm, None, rows, rows, q)
        return _answer(sm, await self._score(job), None)

    async def similar(self, item_id: str, n: int) -> Answer:
        sm = self.model()
        row = sm.row_of.get(item_id)
        if row is None:
            raise UnknownItem(item_id)

        def prepare() -> np.ndarray:
            return sm.index.vector(row)[None, :]

        def finish(scores: np.ndarray, ids: np.ndarray) -> Ranked:
            return max_score(scores, ids, n, exclude=np.array([row]))

        job = ScoreJob(sm, prepare, min(n + 1, sm.index.size), finish)
        return _answer(sm, await self._score(job), None)
