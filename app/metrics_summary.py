"""This process's own Prometheus metrics, read back as the few figures an operator watches.

Why: the dashboard shows request rates, latency percentiles per route,
fallbacks, events by outcome and the store's health without a Prometheus
server beside the service. The figures come from the same collectors
``/metrics`` exposes, so the two never disagree. Percentiles are estimated
from the latency histogram's buckets as Prometheus's ``histogram_quantile``
does (linear within a bucket), over the whole life of the process.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

from prometheus_client.metrics import MetricWrapperBase

from app.metrics import Metrics
from app.schemas import RouteStats


def bucket_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of a histogram given as (upper bound, cumulative count), bounds rising.

    Linear interpolation inside the bucket the quantile falls in; in the last
    (+Inf) bucket, the highest finite bound. None for an empty histogram.
    """
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank and count > below:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def _samples(metric: MetricWrapperBase) -> Iterable[tuple[str, dict[str, str], float]]:
    for family in metric.collect():
        for s in family.samples:
            yield s.name, s.labels, s.value


def _by_label(metric: MetricWrapperBase, label: str) -> dict[str, int]:
    """A counter's totals by one label (``_created`` samples left out)."""
    out: dict[str, int] = {}
    for name, labels, value in _samples(metric):
        if name.endswith("_total"):
            out[labels[label]] = int(value)
    return out


def latency_bounds_ms(metrics: Metrics) -> list[float]:
    """The finite upper bounds of the latency histogram's buckets, in milliseconds."""
    bounds = {
        float(labels["le"])
        for name, labels, _ in _samples(metrics.latency)
        if name.endswith("_bucket")
    }
    return [round(b * 1000, 6) for b in sorted(bounds) if not math.isinf(b)]


def route_stats(metrics: Metrics) -> list[RouteStats]:
    """Requests, 5xx answers, latency percentiles (ms) and the histogram per (method, route),
    busiest first."""
    buckets: dict[tuple[str, str], dict[float, float]] = defaultdict(lambda: defaultdict(float))
    errors: dict[tuple[str, str], float] = defaultdict(float)
    for name, labels, value in _samples(metrics.latency):
        key = (labels["method"], labels["route"])
        if name.endswith("_bucket"):
            buckets[key][float(labels["le"])] += value
        elif name.endswith("_count") and labels["status"].startswith("5"):
            errors[key] += value
    out = []
    for (method, route), by_bound in buckets.items():
        cumulative = sorted(by_bound.items())
        pct: dict[str, float | None] = {}
        for q in (0.5, 0.95, 0.99):
            v = bucket_quantile(q, cumulative)
            pct[f"p{round(q * 100)}_ms"] = None if v is None else round(v * 1000, 3)
        out.append(
            RouteStats(
                method=method,
                route=route,
                requests=int(cumulative[-1][1]),
                errors=int(errors[(method, route)]),
                histogram=[int(count) for _, count in cumulative],
                **pct,
            )
        )
    out.sort(key=lambda r: (-r.requests, r.route, r.method))
    return out


def counters(metrics: Metrics) -> dict[str, dict[str, int]]:
    """Events by outcome, fallbacks by reason, model swaps by outcome."""
    return {
        "events": _by_label(metrics.events, "outcome"),
        "fallbacks": _by_label(metrics.fallbacks, "reason"),
        "swaps": _by_label(metrics.swaps, "outcome"),
    }
