"""Prometheus metrics of one app (its own registry, so several apps can share a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "nextitem_request_seconds",
            "HTTP request latency by route",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
        )
        self.events = Counter(
            "nextitem_events_total",
            "events received, by outcome (logged, duplicate, unknown_item, rejected; "
            "future_clamped: dated too far ahead, logged at the time received)",
            ["outcome"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "nextitem_fallbacks_total",
            "recommendations answered without the session's model state, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "nextitem_model_info",
            "the model being served (value 1)",
            ["version", "kind"],
            registry=self.registry,
        )
        self.index_size = Gauge(
            "nextitem_index_items", "items in the retrieval index", registry=self.registry
        )
        self.swaps = Counter(
            "nextitem_model_swaps_total",
            "model versions swapped in by this process (start-up included), by outcome",
            ["outcome"],  # swapped, failed (the previous model kept serving)
            registry=self.registry,
        )
        self.load_seconds = Histogram(
            "nextitem_model_load_seconds",
            "time to load and check a checkpoint before a swap",
            registry=self.registry,
            buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
        )
        # Whether the scoring threads are the bottleneck, and what to change if so:
        # busy / (elapsed x threads) near 1 asks for more NEXTITEM_SEARCH_WORKERS or a
        # cheaper search; search / busy tells the index's share from the model's.
        self.scorer_batch_jobs = Histogram(
            "nextitem_scorer_batch_jobs",
            "requests scored together in one micro-batch",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
        )
        self.scorer_busy = Counter(
            "nextitem_scorer_busy_seconds",
            "time the scoring threads spent on batches (all threads together)",
            registry=self.registry,
        )
        self.scorer_search = Counter(
            "nextitem_scorer_search_seconds",
            "the part of the busy time spent in index searches",
            registry=self.registry,
        )
        self.overloads = Counter(
            "nextitem_overload_total",
            "requests refused at a bound with 503 and Retry-After, by reason (scorer_busy, "
            "event_ids_full, redis_full, stream_full)",
            ["reason"],
            registry=self.registry,
        )
        self.store_up = Gauge(
            "nextitem_store_up",
            "1 when the session store answered its last call",
            registry=self.registry,
        )

    def serving(self, version: str, kind: str, index_size: int) -> None:
        self.model_info.clear()
        self.model_info.labels(version=version, kind=kind).set(1)
        self.index_size.set(index_size)
