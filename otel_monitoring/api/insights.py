"""Monitoring API, analysis: ``POST /anomalies/detect`` (admin, audited),
``GET /trends/{metric}``, ``GET /correlations``, ``GET /recommendations``.

Parses, calls :class:`~otel_monitoring.analysis.service.Analysis` off the event loop and
renders; computes nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query

from otel_monitoring.analysis.service import Analysis
from otel_monitoring.api.auth import Principal
from otel_monitoring.api.deps import (
    MethodParam,
    RouteDeps,
    RouteParam,
    WindowParam,
    off_loop,
    resource_router,
)
from otel_monitoring.api.insight_views import (
    CorrelationOut,
    TrendOut,
    correlation_out,
    insight_out,
    trend_out,
)
from otel_monitoring.api.models import AnomalyOut, DetectIn, DetectOut, InsightOut, Resolution, iso
from otel_monitoring.stats.timeseries import TimeseriesMetric
from otel_monitoring.types import Window

__all__ = ["insights_router"]


def insights_router(analysis: Analysis, deps: RouteDeps) -> APIRouter:
    """The anomaly, trend, correlation and recommendation routes of ``analysis``."""
    router = resource_router()

    @router.post("/anomalies/detect", response_model=DetectOut)
    async def detect_anomalies(
        body: Annotated[DetectIn, Body()],
        who: Principal = deps.admin["detect"],
    ) -> DetectOut:
        """Run anomaly detection on a statistic of the service or one route (audited)."""
        try:
            found = await off_loop(
                lambda: analysis.detect(
                    body.metric,
                    body.route,
                    body.method,
                    body.window,
                    sensitivity=body.sensitivity,
                    resolution=body.resolution,
                    who=who.name,
                )
            )
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return DetectOut(
            metric=body.metric.value,
            route=body.route,
            method=body.method,
            window=body.window.value,
            step_s=found.step_s,
            points=found.points,
            threshold=found.threshold,
            anomalies=[
                AnomalyOut(t=m.t, at=iso(m.t) or "", value=m.value, score=m.score)
                for m in found.anomalies
            ],
            available=found.points > 0,
            reason=found.reason,
        )

    @router.get("/trends/{metric}", response_model=TrendOut)
    async def trends(
        metric: TimeseriesMetric,
        window: WindowParam = Window.H1,
        route: RouteParam = None,
        method: MethodParam = None,
        resolution: Annotated[
            Resolution,
            Query(
                description="chart: the chart's points for the window; finest: the live"
                " charts' points of every collection (OTEL_MONITORING_FINE_HISTORY)."
            ),
        ] = "chart",
        _: Principal = deps.user["trends"],
    ) -> TrendOut:
        """Trend of a statistic: direction with significance, slope per hour, % change."""
        report = await off_loop(
            lambda: analysis.trend_report(metric, route, method, window, resolution)
        )
        return trend_out(report, window, route, method)

    @router.get("/correlations", response_model=list[CorrelationOut])
    async def correlations(
        window: WindowParam = Window.H1, _: Principal = deps.user["correlations"]
    ) -> list[CorrelationOut]:
        """Correlations between throughput, error rate and routes' p95 latency (BH-corrected)."""
        found = await off_loop(lambda: analysis.detect_correlation(window))
        return [correlation_out(pair) for pair in found]

    @router.get("/recommendations", response_model=list[InsightOut])
    async def recommendations(
        window: WindowParam = Window.H1, _: Principal = deps.user["recommendations"]
    ) -> list[InsightOut]:
        """Recommendations with the evidence behind each (numbers, routes, trace ids)."""
        found = await off_loop(lambda: analysis.recommendations(window))
        return [insight_out(i) for i in found]

    return router
