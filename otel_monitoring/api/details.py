"""Monitoring API, details: ``GET /slow-traces``, ``/errors``, ``/db``, ``/db/n-plus-one``,
``/caches``, ``/external``, ``/metrics``.

Reads the statistics :class:`~otel_monitoring.analysis.service.Analysis` holds (route
statistics from its view; traces, errors and the rest from this process) and renders them;
computes nothing.
"""

from __future__ import annotations

from fastapi import APIRouter

from otel_monitoring.analysis.service import Analysis
from otel_monitoring.api.auth import Principal
from otel_monitoring.api.deps import (
    LimitParam,
    RouteDeps,
    RouteParam,
    WindowParam,
    off_loop,
    resource_router,
)
from otel_monitoring.types import (
    CacheStats,
    DbStatementStats,
    ErrorSample,
    Exemplar,
    ExternalStats,
    MetricStats,
    NPlusOnePattern,
    Window,
)

__all__ = ["details_router"]


def details_router(analysis: Analysis, deps: RouteDeps) -> APIRouter:
    """The detail routes (traces, errors, DB, caches, outbound calls, other metrics)."""
    router = resource_router()
    stats, view = analysis.stats, analysis.view

    @router.get("/slow-traces", response_model=list[Exemplar])
    async def slow_traces(
        window: WindowParam = Window.H1,
        route: RouteParam = None,
        limit: LimitParam = 20,
        _: Principal = deps.user["slow_traces"],
    ) -> list[Exemplar]:
        """The slowest traces with their trace ids (exemplars), slowest first."""
        return stats.slow_traces(route=route, window=window, limit=limit)

    @router.get("/errors", response_model=list[ErrorSample])
    async def errors(
        limit: LimitParam = 50, _: Principal = deps.user["errors"]
    ) -> list[ErrorSample]:
        """Recent error samples: exception type and a sanitized message."""
        return await off_loop(lambda: stats.errors(limit))  # sanitized at first read

    @router.get("/db", response_model=list[DbStatementStats])
    async def db(
        window: WindowParam = Window.H1, _: Principal = deps.user["db"]
    ) -> list[DbStatementStats]:
        """DB operations per statement summary, slowest first."""
        return await off_loop(lambda: view.db_statements(window))

    @router.get("/db/n-plus-one", response_model=list[NPlusOnePattern])
    async def n_plus_one(
        limit: LimitParam = 50, _: Principal = deps.user["db"]
    ) -> list[NPlusOnePattern]:
        """Statements repeated within one trace (N+1 patterns), newest first."""
        return stats.n_plus_one(limit)

    @router.get("/caches", response_model=list[CacheStats])
    async def caches(
        window: WindowParam = Window.H1, _: Principal = deps.user["caches"]
    ) -> list[CacheStats]:
        """Hit ratio per named cache."""
        return await off_loop(lambda: stats.caches(window))

    @router.get("/external", response_model=list[ExternalStats])
    async def external(
        window: WindowParam = Window.H1, _: Principal = deps.user["external"]
    ) -> list[ExternalStats]:
        """Outbound HTTP calls per target host."""
        return await off_loop(lambda: stats.external(window))

    @router.get("/metrics", response_model=list[MetricStats])
    async def other_metrics(
        window: WindowParam = Window.H1, _: Principal = deps.user["metrics"]
    ) -> list[MetricStats]:
        """Every other OTel metric the app defines."""
        return await off_loop(lambda: stats.metrics(window))

    return router
