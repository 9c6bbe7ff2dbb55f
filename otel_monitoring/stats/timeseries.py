"""Time series of HTTP statistics for charts: one point per store bucket.

Points cover the window at the resolution of the finest tier that holds it (10 s up to an
hour, 1 min up to a day). A bucket with no requests has ``count == 0`` and ``value is None``
for ratios and latencies (no made-up zeros), and ``0`` for throughput.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from otel_monitoring.capture.instruments import HTTP_DURATION_METRIC
from otel_monitoring.store.memory import Agg, MetricStore, SeriesKey

__all__ = ["Point", "Series", "TimeseriesMetric", "http_series", "value_of"]


class TimeseriesMetric(StrEnum):
    """Charted statistics and their units."""

    THROUGHPUT = "throughput"
    ERROR_RATE = "error_rate"
    LATENCY_P50 = "latency_p50"
    LATENCY_P95 = "latency_p95"
    LATENCY_P99 = "latency_p99"
    LATENCY_AVG = "latency_avg"

    @property
    def unit(self) -> str:
        """``rpm``, ``%`` or ``ms``."""
        if self is TimeseriesMetric.THROUGHPUT:
            return "rpm"
        if self is TimeseriesMetric.ERROR_RATE:
            return "%"
        return "ms"


@dataclass(frozen=True, slots=True)
class Point:
    """One bucket: start time (Unix seconds), value (``None`` when no data), request count."""

    t: float
    value: float | None
    count: int


@dataclass(frozen=True, slots=True)
class Series:
    """A charted series of one metric, for the service or one route and method."""

    metric: TimeseriesMetric
    unit: str
    window_s: float
    step_s: float
    route: str | None
    method: str | None
    points: tuple[Point, ...]


def value_of(metric: TimeseriesMetric, agg: Agg | None, step_s: float) -> float | None:
    """The chart value of one bucket's aggregate (``None`` when it has no data)."""
    count = agg.count if agg is not None else 0
    if metric is TimeseriesMetric.THROUGHPUT:
        return round(count / (step_s / 60.0), 3)
    if agg is None or count == 0:
        return None
    if metric is TimeseriesMetric.ERROR_RATE:
        return round(100.0 * agg.errors / count, 4)
    hist = agg.hist
    if hist is None or hist.count == 0:
        return None
    seconds = {
        TimeseriesMetric.LATENCY_P50: lambda: hist.quantile(0.50),
        TimeseriesMetric.LATENCY_P95: lambda: hist.quantile(0.95),
        TimeseriesMetric.LATENCY_P99: lambda: hist.quantile(0.99),
        TimeseriesMetric.LATENCY_AVG: lambda: hist.mean,
    }[metric]()
    return None if math.isnan(seconds) else round(seconds * 1000.0, 3)


#: Chart values already computed, per bucket index: ``{index: (value, count)}``, complete
#: from ``first`` up to the last index in it (see
#: :class:`~otel_monitoring.analysis.live_scores.LiveScores`).
Cached = tuple[int, dict[int, tuple[float | None, int]]]


def http_series(
    store: MetricStore,
    metric: TimeseriesMetric,
    *,
    window_s: float,
    now_s: float,
    route: str | None = None,
    method: str | None = None,
    cached: Callable[[float], Cached | None] | None = None,
) -> Series:
    """Chart points of ``metric`` over the last ``window_s`` seconds (oldest first).

    ``cached(step_s)`` may supply values of closed buckets computed earlier; only the
    buckets it does not cover are read from the store.
    """

    def group(key: SeriesKey) -> tuple[str, ...] | None:
        if route is not None and key.get("http.route") != route:
            return None
        if method is not None and key.get("http.request.method") != method:
            return None
        return ("all",)

    select: Callable[[SeriesKey], tuple[str, ...] | None] = group
    step_s = store.width_for(window_s)
    first = math.floor((now_s - window_s) / step_s) + 1
    last = math.floor(now_s / step_s)
    known = cached(step_s) if cached is not None else None
    values: dict[int, tuple[float | None, int]] = {}
    read_first, read_last = first, last
    if known is not None and known[1]:
        cache_first, entries = known
        cache_last = max(entries)
        if cache_first <= first:
            values = {i: v for i, v in entries.items() if first <= i <= last}
            read_first = cache_last + 1
        elif cache_first <= last:
            values = {i: v for i, v in entries.items() if i <= last}
            read_last = cache_first - 1  # before tracking began (rare): read it too
            extra = store.bucket_range(HTTP_DURATION_METRIC, step_s, cache_last + 1, last, select)
            for index, agg in extra.get(("all",), {}).items():
                values[index] = (value_of(metric, agg, step_s), agg.count)
    if read_first <= read_last:
        grouped = store.bucket_range(HTTP_DURATION_METRIC, step_s, read_first, read_last, select)
        for index, agg in grouped.get(("all",), {}).items():
            values[index] = (value_of(metric, agg, step_s), agg.count)
    empty = (value_of(metric, None, step_s), 0)
    points = tuple(
        Point(t=index * step_s, value=value, count=count)
        for index in range(first, last + 1)
        for value, count in (values.get(index, empty),)
    )
    return Series(
        metric=metric,
        unit=metric.unit,
        window_s=window_s,
        step_s=step_s,
        route=route,
        method=method,
        points=points,
    )
