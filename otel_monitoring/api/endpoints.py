"""Monitoring API, route statistics and charts: ``GET /endpoints``,
``GET /endpoints/{route}``, ``GET /timeseries/{metric}``.

Parses, calls :class:`~otel_monitoring.analysis.service.Analysis` off the event loop and
renders; computes nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from otel_monitoring.analysis.service import Analysis
from otel_monitoring.api.auth import Principal
from otel_monitoring.api.deps import (
    LimitParam,
    MethodParam,
    RouteDeps,
    RouteParam,
    WindowParam,
    echo,
    off_loop,
    resource_router,
)
from otel_monitoring.api.insight_views import TimeseriesOut, timeseries_out
from otel_monitoring.semconv import UNMATCHED_ROUTE
from otel_monitoring.stats.local import EndpointSort
from otel_monitoring.stats.timeseries import TimeseriesMetric
from otel_monitoring.types import EndpointStats, Window

__all__ = ["endpoints_router"]

#: Known routes named in a 404's detail.
_KNOWN_SHOWN = 10


def endpoints_router(analysis: Analysis, deps: RouteDeps) -> APIRouter:
    """The route statistics and chart routes of ``analysis``."""
    router = resource_router()

    @router.get("/endpoints", response_model=list[EndpointStats])
    async def endpoints(
        window: WindowParam = Window.H1,
        sort: Annotated[EndpointSort, Query(description="Order, worst or busiest first.")] = (
            EndpointSort.REQUESTS
        ),
        limit: LimitParam = 100,
        _: Principal = deps.user["endpoints"],
    ) -> list[EndpointStats]:
        """Statistics of every route template and method."""
        return await off_loop(lambda: analysis.endpoints(window, sort=sort, limit=limit))

    @router.get("/endpoints/{path:path}", response_model=list[EndpointStats])
    async def endpoint(
        path: str,
        method: MethodParam = None,
        window: WindowParam = Window.H1,
        _: Principal = deps.user["endpoint"],
    ) -> list[EndpointStats]:
        """One route template (e.g. ``/items/{item_id}``, URL-encoded or not), per method."""
        route = path if path.startswith("/") or path == UNMATCHED_ROUTE else "/" + path
        found = await off_loop(lambda: analysis.endpoint(route, method, window))
        if not found:
            known = await off_loop(analysis.known_routes)
            raise HTTPException(
                status_code=404,
                detail=f"no statistics for route {echo(route)}"
                + (f" and method {method.upper()!r}" if method else "")
                + f" in window {window.value}; known routes: "
                + (", ".join(echo(r) for r in known[:_KNOWN_SHOWN]) or "none"),
            )
        return found

    @router.get("/timeseries/{metric}", response_model=TimeseriesOut)
    async def timeseries(
        metric: TimeseriesMetric,
        window: WindowParam = Window.H1,
        route: RouteParam = None,
        method: MethodParam = None,
        anomalies: Annotated[bool, Query(description="Mark anomalies on the series.")] = True,
        _: Principal = deps.user["timeseries"],
    ) -> TimeseriesOut:
        """Chart points of a statistic, for the service or one route and method."""
        series, marks = await off_loop(
            lambda: analysis.chart_with_anomalies(
                metric, route, method, window, anomalies=anomalies
            )
        )
        return timeseries_out(series, window, marks)

    return router
