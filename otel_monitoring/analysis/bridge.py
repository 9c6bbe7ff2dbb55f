"""Live statistics -> :mod:`analyzers`: insights, anomalies, trends and correlations.

The only module of the package that calls the analyzers, and it imports them lazily (on
first analysis), so ``import otel_monitoring`` and the request path never load scipy.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from otel_monitoring.analysis.live_scores import History, LiveScores
from otel_monitoring.stats.local import Stats
from otel_monitoring.stats.timeseries import Series, TimeseriesMetric, http_series
from otel_monitoring.types import Window

if TYPE_CHECKING:
    import analyzers

__all__ = [
    "AnomalyPoint",
    "Insights",
    "correlations",
    "detect",
    "detect_history",
    "insights",
    "observed",
    "trend",
    "version_labels",
]


@dataclass(frozen=True, slots=True)
class AnomalyPoint:
    """An alarm on a chart: bucket start (Unix seconds), value and score in [0, 1]."""

    t: float
    value: float
    score: float


@dataclass(frozen=True, slots=True)
class Insights:
    """Findings (all) and recommendations (warnings and worse) with their evidence."""

    insights: tuple[analyzers.Insight, ...]
    recommendations: tuple[analyzers.Insight, ...]


def observed(series: Series) -> tuple[list[float], list[float]]:
    """Times (bucket starts, Unix seconds) and values of the points of ``series`` with data."""
    points = [p for p in series.points if p.value is not None]
    return [p.t for p in points], [float(p.value) for p in points if p.value is not None]


def version_labels(
    times_s: Sequence[float], versions: Sequence[tuple[float, str]]
) -> tuple[str, ...] | None:
    """The ``service.version`` running at each time (``"unknown"`` before the first one
    recorded), or ``None`` when the times span fewer than two versions."""
    starts = [t for t, _ in versions]
    labels = tuple(
        versions[i - 1][1] if (i := bisect.bisect_right(starts, t)) else "unknown" for t in times_s
    )
    return labels if len(set(labels)) > 1 else None


def insights(
    stats: Stats,
    *,
    window: Window = Window.H1,
    latency_threshold_ms: float = 1000.0,
    db_threshold_ms: float = 500.0,
    latency_series: Sequence[Series] = (),
    versions: Sequence[tuple[float, str]] = (),
) -> Insights:
    """Insights and recommendations on the live statistics of ``window``.

    ``latency_series`` (p95 charts of routes) adds regressions (change points) and trends
    toward the latency threshold; ``versions`` (``(first seen, service.version)``, oldest
    first) lets a regression name the version it started with.
    """
    import analyzers

    endpoints = stats.endpoints(window)
    n_plus_one: dict[str, list[tuple[str, int]]] = {}
    # newest first, those with a trace id (sampled) before those without
    for pattern in sorted(stats.n_plus_one(limit=100), key=lambda p: not p.trace_id):
        n_plus_one.setdefault(pattern.statement, []).append((pattern.trace_id, pattern.count))
    summaries = [
        analyzers.EndpointSummary(
            route=e.route,
            method=e.method,
            requests=e.requests,
            errors=e.errors,
            error_rate=e.error_rate / 100.0,
            p50_ms=e.latency.p50_ms or 0.0,
            p95_ms=e.latency.p95_ms or 0.0,
            p99_ms=e.latency.p99_ms or 0.0,
            # sampled traces only: an unsampled request's exemplar has no trace id
            slowest_trace_ids=tuple(x.trace_id for x in e.exemplars if x.trace_id)[:3],
        )
        for e in endpoints
    ]
    queries = [
        analyzers.QuerySummary(
            statement=q.example,
            count=q.count,
            avg_ms=q.avg_ms or 0.0,
            p95_ms=q.p95_ms or 0.0,
            max_ms=q.max_ms or 0.0,
            n_plus_one_traces=tuple(t for t, _ in n_plus_one.pop(q.example, [])[:3]),
        )
        for q in stats.db_statements(window)
    ]
    for statement, seen in n_plus_one.items():  # repeated statements of other summaries
        executions = sum(count for _, count in seen)
        traces = tuple(t for t, _ in seen[:3])
        queries.append(analyzers.QuerySummary(statement, executions, 0.0, 0.0, 0.0, traces))
    caches = [analyzers.CacheSummary(c.cache, c.hits, c.misses) for c in stats.caches(window)]
    thresholds = analyzers.Thresholds(
        slow_p95_ms=latency_threshold_ms,
        slow_query_ms=db_threshold_ms,
        slo_p95_ms=latency_threshold_ms,
        # live p95 drifts with the daily cycle by tens of percent; a regression worth a
        # recommendation is a step of at least half again
        regression_ratio=0.5,
    )
    series = []
    for chart in latency_series:
        times, values = observed(chart)
        if len(times) >= 10 and chart.route is not None:
            series.append(
                analyzers.LatencySeries(
                    route=chart.route,
                    method=chart.method or "",
                    timestamps_s=tuple(times),
                    p95_ms=tuple(values),
                    versions=version_labels(times, versions),
                )
            )
    found = analyzers.insights(
        summaries, queries, caches, latency_series=series, thresholds=thresholds
    )
    recommended = tuple(i for i in found if i.severity >= analyzers.Severity.WARNING)
    return Insights(found, recommended)


def _threshold(sensitivity: str) -> tuple[analyzers.Sensitivity, float]:
    import analyzers

    try:
        level = analyzers.Sensitivity[sensitivity.upper()]
    except KeyError:
        raise ValueError(f"unknown sensitivity {sensitivity!r}: use low, medium or high") from None
    return level, float(level.value)


def _alarms(
    history: History, threshold: float, start_s: float = -math.inf, end_s: float = math.inf
) -> list[AnomalyPoint]:
    times = history.times_s
    hits = np.flatnonzero((history.scores >= threshold) & (times >= start_s) & (times <= end_s))
    return [
        AnomalyPoint(float(times[i]), float(history.values[i]), float(history.scores[i]))
        for i in hits.tolist()
    ]


def detect_history(
    history: History, sensitivity: str = "medium"
) -> tuple[float, list[AnomalyPoint]]:
    """Alarms at ``sensitivity`` among the points of a live chart history (scored as they
    arrived; none while its detector is still in its warm-up) and the threshold.

    Raises:
        ValueError: unknown sensitivity.
    """
    threshold = _threshold(sensitivity)[1]
    return threshold, _alarms(history, threshold)


def detect(
    series: Series, sensitivity: str = "medium", live: LiveScores | None = None
) -> tuple[float, list[AnomalyPoint]]:
    """Alarms on a chart series at ``sensitivity`` (low, medium, high) and the threshold.

    When ``live`` watches this chart and its detector is past its warm-up, the alarms come
    from the scores it computed as the buckets completed (history since start, no rescoring);
    otherwise the series is scored afresh, learning on its first quarter.

    Raises:
        ValueError: unknown sensitivity.
    """
    import analyzers

    level, threshold = _threshold(sensitivity)
    times, values = observed(series)
    if not times:
        return threshold, []
    if live is not None:
        start, end = series.points[0].t, series.points[-1].t
        history = live.history(series.metric, series.route, series.method, series.step_s)
        warm = analyzers.DetectorSettings().warmup_points
        if history is not None and history.points_seen >= warm:
            return threshold, _alarms(history, threshold, start, end)
    # A chart window holds a few hundred points; the detector's default warm-up (150 points,
    # tuned on series of thousands) would hide most of it, so learn on the first quarter.
    settings = analyzers.DetectorSettings(warmup_points=max(20, min(150, len(values) // 4)))
    report = analyzers.detect_anomalies(times, values, sensitivity=level, settings=settings)
    return report.threshold, [
        AnomalyPoint(a.timestamp_s, a.value, a.score) for a in report.anomalies
    ]


def trend(series: Series) -> analyzers.TrendResult:
    """Trend of a chart series (direction, significance, slope per hour, % change).

    Raises:
        analyzers.AnalysisError: fewer than 3 points with data.
    """
    import analyzers

    times, values = observed(series)
    return analyzers.analyze_trend(times, values)


def correlations(
    stats: Stats, *, window_s: float, now_s: float, fdr: float = 0.05
) -> tuple[Any, ...]:
    """Correlations between service throughput, error rate and each route's p95 latency.

    Buckets with no data in any series are left out; Benjamini-Hochberg corrects for the
    number of pairs.
    """
    import analyzers

    named: dict[str, Series] = {
        "service throughput": http_series(
            stats.store, TimeseriesMetric.THROUGHPUT, window_s=window_s, now_s=now_s
        ),
        "service error_rate": http_series(
            stats.store, TimeseriesMetric.ERROR_RATE, window_s=window_s, now_s=now_s
        ),
        "service p95": http_series(
            stats.store, TimeseriesMetric.LATENCY_P95, window_s=window_s, now_s=now_s
        ),
    }
    for e in stats.endpoints(Window.ALL, limit=10):
        named[f"{e.method} {e.route} p95"] = http_series(
            stats.store,
            TimeseriesMetric.LATENCY_P95,
            window_s=window_s,
            now_s=now_s,
            route=e.route,
            method=e.method,
        )
    length = len(next(iter(named.values())).points)
    keep = [
        i
        for i in range(length)
        if all(
            s.points[i].value is not None and math.isfinite(s.points[i].value or 0.0)
            for s in named.values()
        )
    ]
    if len(keep) < 3:
        return ()
    arrays = {name: [float(s.points[i].value or 0.0) for i in keep] for name, s in named.items()}
    return tuple(analyzers.correlate_many(arrays, fdr=fdr))
