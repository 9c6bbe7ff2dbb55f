"""``StatsView``: the read API that this process's statistics and the fleet's both give.

:class:`otel_monitoring.stats.local.Stats` reads the in-process store and
:class:`otel_monitoring.fleet.stats.FleetStats` reads Prometheus; the API, the dashboard
and the alert evaluator take either as a :class:`StatsView`, and the type checker proves
that both satisfy it. What turns counts into the frozen dataclasses of
:mod:`otel_monitoring.types` is written here once and called by both: percentages,
requests per minute, endpoint ordering and the health verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Protocol, TypedDict

from otel_monitoring.types import (
    DbStatementStats,
    EndpointStats,
    HealthState,
    HealthStatus,
    LatencyStats,
    SelfTelemetry,
    ServiceStats,
    Window,
)

__all__ = [
    "EndpointSort",
    "RequestFigures",
    "StatsView",
    "health_status",
    "ms",
    "pct",
    "request_figures",
    "slowest_first",
    "sort_endpoints",
    "window_minutes",
    "worst_endpoints",
]

_MIN_REQUESTS_FOR_HEALTH = 10


class EndpointSort(StrEnum):
    """Orders of :meth:`StatsView.endpoints` (worst or busiest first)."""

    REQUESTS = "requests"
    ERROR_RATE = "error_rate"
    P95 = "p95"
    P99 = "p99"
    THROUGHPUT = "throughput"


class StatsView(Protocol):
    """Route, service and DB statistics over a window, and the health verdict.

    Windows are :class:`~otel_monitoring.types.Window` values or their names (``"5m"``).
    Implementations may raise their own errors for an unreachable source (the fleet's
    ``PrometheusError``); none of them is on an application's request path.
    """

    def endpoints(
        self,
        window: Window | str = ...,
        *,
        sort: EndpointSort | str = ...,
        limit: int | None = ...,
        route: str | None = ...,
        method: str | None = ...,
    ) -> list[EndpointStats]:
        """Statistics per route template and method, busiest or worst first."""
        ...

    def endpoint(
        self, route: str, method: str | None = ..., window: Window | str = ...
    ) -> list[EndpointStats]:
        """Statistics of one route template (every method, or just ``method``)."""
        ...

    def top_endpoints(self, window: Window | str = ..., *, limit: int = ...) -> list[EndpointStats]:
        """The worst endpoints: by error rate, then p95 latency."""
        ...

    def service(self, window: Window | str = ...) -> ServiceStats:
        """Statistics over all routes."""
        ...

    def db_statements(self, window: Window | str = ...) -> list[DbStatementStats]:
        """DB operations per statement summary, slowest (by p95) first."""
        ...

    def slo_counts(
        self,
        window_s: float,
        *,
        route: str | None = ...,
        method: str | None = ...,
        latency_threshold_ms: float | None = ...,
    ) -> tuple[int, int]:
        """Requests over the last ``window_s`` seconds and how many were bad."""
        ...

    def health(self, active_alerts: int = ...) -> HealthStatus:
        """Overall health, degraded while ``active_alerts`` is not zero."""
        ...


# -- arithmetic ------------------------------------------------------------------------------
def pct(part: int, whole: int) -> float:
    """``part`` as a percentage of ``whole`` (4 decimals); 0.0 when ``whole`` is 0."""
    return round(100.0 * part / whole, 4) if whole else 0.0


def ms(seconds: float | None) -> float | None:
    """Seconds as milliseconds (3 decimals); ``None`` for ``None``, NaN or infinity."""
    if seconds is None or not math.isfinite(seconds):
        return None
    return round(seconds * 1000.0, 3)


def window_minutes(window_s: float | None, age_s: float | None) -> float:
    """Minutes that a window's counts span: the window (``None``: everything), cut to the age
    of what was counted when known, never less than one second (so a rate stays finite)."""
    spans = [s for s in (window_s, age_s) if s is not None]
    return max(min(spans) if spans else 0.0, 1.0) / 60.0


class RequestFigures(TypedDict):
    """The request fields that :class:`EndpointStats` and :class:`ServiceStats` share."""

    requests: int
    errors: int
    error_rate: float
    client_errors: int
    client_error_rate: float
    latency: LatencyStats
    throughput_rpm: float


def request_figures(
    *, requests: int, errors: int, client_errors: int, latency: LatencyStats, minutes: float
) -> RequestFigures:
    """Counts with their rates: error rates in percent of ``requests``, throughput in
    requests per minute over ``minutes`` (3 decimals)."""
    return RequestFigures(
        requests=requests,
        errors=errors,
        error_rate=pct(errors, requests),
        client_errors=client_errors,
        client_error_rate=pct(client_errors, requests),
        latency=latency,
        throughput_rpm=round(requests / minutes, 3),
    )


# -- ordering --------------------------------------------------------------------------------
_SORT_KEYS: dict[EndpointSort, Callable[[EndpointStats], float]] = {
    EndpointSort.REQUESTS: lambda e: float(e.requests),
    EndpointSort.ERROR_RATE: lambda e: e.error_rate,
    EndpointSort.P95: lambda e: e.latency.p95_ms or 0.0,
    EndpointSort.P99: lambda e: e.latency.p99_ms or 0.0,
    EndpointSort.THROUGHPUT: lambda e: e.throughput_rpm,
}


def sort_endpoints(
    found: list[EndpointStats], sort: EndpointSort, limit: int | None
) -> list[EndpointStats]:
    """Order endpoint statistics by ``sort`` (largest first) and keep ``limit`` of them."""
    found.sort(key=_SORT_KEYS[sort], reverse=True)
    return found[:limit] if limit is not None else found


def worst_endpoints(found: list[EndpointStats], limit: int) -> list[EndpointStats]:
    """The ``limit`` worst endpoints: by error rate, then p95 latency, then requests."""
    found.sort(key=lambda e: (e.error_rate, e.latency.p95_ms or 0.0, e.requests), reverse=True)
    return found[:limit]


def slowest_first(found: list[DbStatementStats]) -> list[DbStatementStats]:
    """DB statement statistics ordered by p95 latency, slowest first (in place)."""
    found.sort(key=lambda s: s.p95_ms or 0.0, reverse=True)
    return found


# -- health ----------------------------------------------------------------------------------
def health_status(
    *,
    recent: ServiceStats,
    total: ServiceStats,
    endpoints: Iterable[EndpointStats],
    latency_threshold_ms: float,
    active_alerts: int,
    uptime_s: float,
    self_telemetry: SelfTelemetry,
    degraded_by: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> HealthStatus:
    """The health verdict from the last 5 minutes (``recent``) and the totals.

    Unhealthy at >= 10 % errors (with at least 10 requests), degraded at >= 1 %, when an
    endpoint's p95 exceeds ``latency_threshold_ms`` (ms), for each reason in ``degraded_by``
    (e.g. instances down) and with active alerts. ``notes`` are reasons listed last that
    leave the state as it is (the monitoring's own faults, not the service's).
    """
    reasons: list[str] = []
    state = HealthState.HEALTHY
    if recent.requests >= _MIN_REQUESTS_FOR_HEALTH and recent.error_rate >= 10.0:
        state = HealthState.UNHEALTHY
        reasons.append(f"error rate {recent.error_rate:.2f}% over the last 5 min (>= 10%)")
    elif recent.requests >= _MIN_REQUESTS_FOR_HEALTH and recent.error_rate >= 1.0:
        state = HealthState.DEGRADED
        reasons.append(f"error rate {recent.error_rate:.2f}% over the last 5 min (>= 1%)")
    slow = [
        f"{e.method} {e.route} p95 {p95:.0f} ms over the last 5 min"
        f" (> {latency_threshold_ms:.0f} ms)"
        for e in endpoints
        if (p95 := e.latency.p95_ms) is not None and p95 > latency_threshold_ms
    ]
    alerts = [f"{active_alerts} active alert(s)"] if active_alerts else []
    for reason in (*slow, *degraded_by, *alerts):
        if state is HealthState.HEALTHY:
            state = HealthState.DEGRADED
        reasons.append(reason)
    reasons.extend(notes)
    return HealthStatus(
        status=state,
        reasons=tuple(reasons),
        uptime_seconds=round(uptime_s, 3),
        total_requests=total.requests,
        total_errors=total.errors,
        error_rate=total.error_rate,
        endpoints_count=total.endpoints_count,
        active_alerts=active_alerts,
        self_telemetry=self_telemetry,
    )
