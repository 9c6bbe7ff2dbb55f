"""Streaming anomaly scores of the live charts, kept current after each collection.

Rescoring a day of points on every request would cost seconds for a hundred routes; instead
one streaming detector per chart (service and each route and method, for p95 latency, error
rate and throughput, at the finest and the 1-minute resolution) is fed each completed bucket
once, right after the collection that completed it, and its scores are kept as long as the
store keeps the buckets. A request then reads scores instead of computing them. Per
collection the work is one detector update per chart (a few microseconds each), and memory is
bounded by charts x buckets (charts capped at ``max_charts``).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from otel_monitoring.instruments import HTTP_DURATION_METRIC
from otel_monitoring.store import Agg, Kind, MetricStore, SeriesKey
from otel_monitoring.timeseries import Cached, TimeseriesMetric, value_of

__all__ = ["WATCHED_METRICS", "LiveScores"]

WATCHED_METRICS = (
    TimeseriesMetric.LATENCY_P95,
    TimeseriesMetric.ERROR_RATE,
    TimeseriesMetric.THROUGHPUT,
)
ChartKey = tuple[TimeseriesMetric, str | None, str | None, float]


@dataclass(slots=True)
class _Chart:
    detector: Any
    scores: deque[tuple[int, float, float, int]]  # (bucket index, value, score, count)
    start_index: int
    last_index: int | None = None


class LiveScores:
    """Per-chart streaming detectors; see the module docstring. Thread-safe."""

    def __init__(
        self,
        store: MetricStore,
        *,
        max_charts: int = 3000,
        metrics: tuple[TimeseriesMetric, ...] = WATCHED_METRICS,
    ) -> None:
        self.store = store
        self.max_charts = max_charts
        self.metrics = tuple(dict.fromkeys((*WATCHED_METRICS, *metrics)))
        self._charts: dict[ChartKey, _Chart] = {}
        self._lock = threading.Lock()

    def update(self, now_s: float) -> None:
        """Feed every chart the buckets completed since the last call."""
        for tier in self.store.tiers[:2]:
            step = tier.width_s

            def by_route(key: SeriesKey) -> tuple[str, str]:
                return key.get("http.route"), key.get("http.request.method")

            current = math.floor(now_s / step)
            grouped = self.store.bucket_range(
                HTTP_DURATION_METRIC, step, current - 3, current, by_route
            )
            service: dict[int, Agg] = {}
            for per_index in grouped.values():
                for index, agg in per_index.items():
                    service.setdefault(index, Agg()).merge(agg, Kind.HISTOGRAM)
            self._feed((None, None), service, step, current)
            for (route, method), per_index in grouped.items():
                self._feed((route, method), per_index, step, current)

    def _feed(
        self,
        subject: tuple[str | None, str | None],
        per_index: dict[int, Agg],
        step: float,
        current: int,
    ) -> None:
        import analyzers

        route, method = subject
        completed = sorted(i for i in per_index if i < current)
        if not completed:
            return
        with self._lock:
            for metric in self.metrics:
                key = (metric, route, method, step)
                chart = self._charts.get(key)
                if chart is None:
                    if len(self._charts) >= self.max_charts:
                        continue
                    slots = next(t.slots for t in self.store.tiers if t.width_s == step)
                    chart = self._charts[key] = _Chart(
                        analyzers.AnomalyDetector(), deque(maxlen=slots), completed[0]
                    )
                for index in completed:
                    if chart.last_index is not None and index <= chart.last_index:
                        continue
                    chart.last_index = index
                    agg = per_index[index]
                    value = value_of(metric, agg, step)
                    if value is None:
                        continue
                    score = chart.detector.update(index * step, value)
                    chart.scores.append((index, value, score, agg.count))

    def matching(
        self, metric: TimeseriesMetric, route: str | None, method: str | None, step: float
    ) -> list[list[tuple[float, float, float]]]:
        """Scores of every chart of ``metric`` at ``step`` for the service (``route`` None)
        or for ``route`` with ``method`` (any method when ``method`` is None)."""
        with self._lock:
            return [
                [(index * step, value, score) for index, value, score, _ in chart.scores]
                for (m, r, me, st), chart in self._charts.items()
                if m is metric
                and st == step
                and r == route
                and (method is None or me == method)
                and (route is not None or me is None)
            ]

    def scores(
        self, metric: TimeseriesMetric, route: str | None, method: str | None, step: float
    ) -> tuple[int, list[tuple[float, float, float]]] | None:
        """``(points seen, [(t, value, score), ...])`` of a chart, or ``None`` if not watched."""
        with self._lock:
            chart = self._charts.get((metric, route, method, step))
            if chart is None:
                return None
            return (
                chart.detector.points_seen,
                [(index * step, value, score) for index, value, score, _ in chart.scores],
            )

    def cached(
        self, metric: TimeseriesMetric, route: str | None, method: str | None, step: float
    ) -> Cached | None:
        """Chart values of closed buckets, for :func:`~otel_monitoring.timeseries.http_series`:
        complete from the returned first index to the last one held (absent = no data)."""
        with self._lock:
            chart = self._charts.get((metric, route, method, step))
            if chart is None or chart.last_index is None:
                return None
            entries: dict[int, tuple[float | None, int]] = {
                index: (value, count) for index, value, _, count in chart.scores
            }
            first = chart.start_index
            if chart.scores.maxlen is not None and len(chart.scores) == chart.scores.maxlen:
                first = max(first, chart.scores[0][0])
            entries.setdefault(chart.last_index, (value_of(metric, None, step), 0))
            return first, entries
