"""The monitoring HTTP API: a FastAPI ``APIRouter`` that translates; the core computes.

Mounted by :func:`otel_monitoring.instrument_app` under the prefix (default
``/monitoring``) or served on a side port in zero-code mode. Responses are the frozen
dataclasses of :mod:`otel_monitoring.types`, serialised by FastAPI/pydantic; errors are JSON
bodies with a ``detail`` that says what was wrong.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from otel_monitoring.monitor import Monitor
from otel_monitoring.stats import EndpointSort
from otel_monitoring.types import (
    CacheStats,
    DbStatementStats,
    EndpointStats,
    ErrorSample,
    Exemplar,
    ExternalStats,
    HealthStatus,
    MetricStats,
    NPlusOnePattern,
    Window,
)

__all__ = ["make_router"]

MAX_LIMIT = 1000

WindowParam = Annotated[Window, Query(description="Look-back window: 1m, 5m, 1h, 24h or all.")]
LimitParam = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Maximum items returned.")]


def make_router(monitor: Monitor) -> APIRouter:
    """Build the monitoring API for ``monitor`` (mount it with a prefix)."""
    router = APIRouter(tags=["monitoring"])
    stats = monitor.stats

    @router.get("/health", response_model=HealthStatus)
    def health() -> HealthStatus:
        """System health, uptime, totals, error rate (percent) and self-telemetry."""
        return stats.health()

    @router.get("/endpoints", response_model=list[EndpointStats])
    def endpoints(
        window: WindowParam = Window.H1,
        sort: Annotated[EndpointSort, Query(description="Order, worst or busiest first.")] = (
            EndpointSort.REQUESTS
        ),
        limit: LimitParam = 100,
    ) -> list[EndpointStats]:
        """Statistics of every route template and method."""
        return stats.endpoints(window, sort=sort, limit=limit)

    @router.get("/endpoints/{path:path}", response_model=list[EndpointStats])
    def endpoint(
        path: str,
        method: Annotated[str | None, Query(max_length=16, pattern=r"^[A-Za-z_]+$")] = None,
        window: WindowParam = Window.H1,
    ) -> list[EndpointStats]:
        """One route template (e.g. ``/items/{item_id}``, URL-encoded or not), per method."""
        route = path if path.startswith("/") or path == "<unmatched>" else "/" + path
        found = stats.endpoint(route, method, window)
        if not found:
            known = sorted({e.route for e in stats.endpoints(Window.ALL)})
            raise HTTPException(
                status_code=404,
                detail=f"no statistics for route {route!r}"
                + (f" and method {method.upper()!r}" if method else "")
                + f" in window {window.value}; known routes: {known[:20]}",
            )
        return found

    @router.get("/slow-traces", response_model=list[Exemplar])
    def slow_traces(
        window: WindowParam = Window.H1,
        route: Annotated[str | None, Query(max_length=512)] = None,
        limit: LimitParam = 20,
    ) -> list[Exemplar]:
        """The slowest traces with their trace ids (exemplars), slowest first."""
        return stats.slow_traces(route=route, window=window, limit=limit)

    @router.get("/errors", response_model=list[ErrorSample])
    def errors(limit: LimitParam = 50) -> list[ErrorSample]:
        """Recent error samples: exception type and a sanitized message."""
        return stats.errors(limit)

    @router.get("/db", response_model=list[DbStatementStats])
    def db(window: WindowParam = Window.H1) -> list[DbStatementStats]:
        """DB operations per statement summary, slowest first."""
        return stats.db_statements(window)

    @router.get("/db/n-plus-one", response_model=list[NPlusOnePattern])
    def n_plus_one(limit: LimitParam = 50) -> list[NPlusOnePattern]:
        """Statements repeated within one trace (N+1 patterns), newest first."""
        return stats.n_plus_one(limit)

    @router.get("/caches", response_model=list[CacheStats])
    def caches(window: WindowParam = Window.H1) -> list[CacheStats]:
        """Hit ratio per named cache."""
        return stats.caches(window)

    @router.get("/external", response_model=list[ExternalStats])
    def external(window: WindowParam = Window.H1) -> list[ExternalStats]:
        """Outbound HTTP calls per target host."""
        return stats.external(window)

    @router.get("/metrics", response_model=list[MetricStats])
    def other_metrics(window: WindowParam = Window.H1) -> list[MetricStats]:
        """Every other OTel metric the app defines."""
        return stats.metrics(window)

    return router
