"""The monitoring HTTP API: a FastAPI ``APIRouter`` that translates; the core computes.

Mounted by :func:`otel_monitoring.instrument_app` under the prefix (default
``/monitoring``) or served on a side port in zero-code mode. Every route has a rate limit
and, when keys are configured, needs one (``/health`` excepted); mutating routes need an
admin key and leave an audit record. Errors are JSON bodies with a ``detail`` that says
what was wrong; bad input is a 4xx, never a 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse

from otel_monitoring.api_deps import Access, LimitedBodyRoute, echo
from otel_monitoring.api_models import (
    AlertOut,
    AnomalyOut,
    AuditOut,
    CleanupIn,
    CleanupOut,
    DashboardOut,
    DetectIn,
    DetectOut,
    ErrorOut,
    InsightOut,
    Resolution,
    ResolveIn,
    iso,
)
from otel_monitoring.auth import Principal
from otel_monitoring.config import parse_duration_s
from otel_monitoring.insight_views import (
    CorrelationOut,
    TimeseriesOut,
    TrendOut,
    correlation_out,
    insight_out,
    timeseries_out,
    trend_out,
)
from otel_monitoring.live_scores import History
from otel_monitoring.monitor import Monitor
from otel_monitoring.ratelimit import DEFAULT_LIMITS
from otel_monitoring.stats import EndpointSort
from otel_monitoring.timeseries import TimeseriesMetric
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

__all__ = ["install_error_handlers", "make_router"]

MAX_LIMIT = 1000
T = TypeVar("T")

WindowParam = Annotated[Window, Query(description="Look-back window: 1m, 5m, 1h, 24h or all.")]
LimitParam = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Maximum items returned.")]
RouteParam = Annotated[
    str | None, Query(max_length=512, description="Route template, e.g. /items/{item_id}.")
]
MethodParam = Annotated[str | None, Query(max_length=16, pattern=r"^[A-Za-z_]+$")]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in (
        (400, "The request body could not be parsed."),
        (401, "An API key is required or the key is invalid."),
        (403, "The key may not do this, or mutating endpoints are disabled."),
        (404, "Not found."),
        (409, "The alert is already resolved."),
        (413, "Request body larger than 64 KiB."),
        (422, "Invalid parameters."),
        (429, "Rate limit exceeded; see Retry-After."),
        (503, "Fleet statistics unavailable (Prometheus unreachable)."),
    )
}


def make_router(monitor: Monitor, *, include_in_schema: bool | None = None) -> APIRouter:
    """Build the monitoring API for ``monitor`` (mount it with a prefix).

    ``include_in_schema`` (default: ``OTEL_MONITORING_OPENAPI``, off) lists the routes in
    the OpenAPI schema of the app they are mounted in.
    """
    settings = monitor.settings
    router = APIRouter(
        tags=["monitoring"],
        route_class=LimitedBodyRoute,
        responses=_ERRORS,
        include_in_schema=settings.openapi if include_in_schema is None else include_in_schema,
    )
    access = Access(settings, monitor.clock)
    view = monitor.view  # route statistics: the fleet (Prometheus) when configured
    # One dependency per rate-limit name; mutating routes also need an admin key.
    deps: dict[str, Any] = {name: Depends(access.require(name)) for name in DEFAULT_LIMITS}
    admin: dict[str, Any] = {
        name: Depends(access.require(name, mutating=True))
        for name in ("resolve", "detect", "cleanup")
    }
    stats = monitor.stats

    async def run(fn: Callable[[], T]) -> T:
        # Statistics queries take the store lock and may collect: keep them off the loop.
        return await asyncio.to_thread(fn)

    # -- health and dashboard --------------------------------------------------------------
    @router.get("/health", response_model=HealthStatus)
    async def health(_: Principal = deps["health"]) -> HealthStatus:
        """System health, uptime, totals, error rate (percent), active alerts, self-telemetry."""
        return await run(lambda: view.health(active_alerts=len(monitor.alerts.active())))

    @router.get("/dashboard", response_model=DashboardOut)
    async def dashboard(
        window: WindowParam = Window.H1, _: Principal = deps["dashboard"]
    ) -> DashboardOut:
        """Executive dashboard: health, the worst endpoints, active alerts, insights."""

        def build() -> DashboardOut:
            found = monitor.insights(window)
            active = monitor.alerts.active()
            return DashboardOut(
                health=view.health(active_alerts=len(active)),
                top_endpoints=view.top_endpoints(window, limit=10),
                active_alerts=[AlertOut.of(a) for a in active],
                insights=[insight_out(i) for i in found.insights if i not in found.recommendations],
                recommendations=[insight_out(i) for i in found.recommendations],
                timestamp=datetime.now(tz=UTC).isoformat(),
            )

        return await run(build)

    # -- endpoints -------------------------------------------------------------------------
    @router.get("/endpoints", response_model=list[EndpointStats])
    async def endpoints(
        window: WindowParam = Window.H1,
        sort: Annotated[EndpointSort, Query(description="Order, worst or busiest first.")] = (
            EndpointSort.REQUESTS
        ),
        limit: LimitParam = 100,
        _: Principal = deps["endpoints"],
    ) -> list[EndpointStats]:
        """Statistics of every route template and method."""
        return await run(lambda: view.endpoints(window, sort=sort, limit=limit))

    @router.get("/endpoints/{path:path}", response_model=list[EndpointStats])
    async def endpoint(
        path: str,
        method: MethodParam = None,
        window: WindowParam = Window.H1,
        _: Principal = deps["endpoint"],
    ) -> list[EndpointStats]:
        """One route template (e.g. ``/items/{item_id}``, URL-encoded or not), per method."""
        route = path if path.startswith("/") or path == "<unmatched>" else "/" + path
        found = await run(lambda: view.endpoint(route, method, window))
        if not found:
            known = sorted({e.route for e in await run(lambda: view.endpoints(Window.ALL))})
            raise HTTPException(
                status_code=404,
                detail=f"no statistics for route {echo(route)}"
                + (f" and method {method.upper()!r}" if method else "")
                + f" in window {window.value}; known routes: "
                + (", ".join(echo(r) for r in known[:10]) or "none"),
            )
        return found

    @router.get("/timeseries/{metric}", response_model=TimeseriesOut)
    async def timeseries(
        metric: TimeseriesMetric,
        window: WindowParam = Window.H1,
        route: RouteParam = None,
        method: MethodParam = None,
        anomalies: Annotated[bool, Query(description="Mark anomalies on the series.")] = True,
        _: Principal = deps["timeseries"],
    ) -> TimeseriesOut:
        """Chart points of a statistic, for the service or one route and method."""

        def build() -> TimeseriesOut:
            series = monitor.chart(metric, route, method, window)
            marks = []
            if anomalies:
                from otel_monitoring.analysis import detect

                marks = detect(series, live=monitor.chart_scores)[1]
            return timeseries_out(series, window, marks)

        return await run(build)

    # -- alerts ----------------------------------------------------------------------------
    @router.get("/alerts", response_model=list[AlertOut])
    async def alerts(
        state: Annotated[
            str,
            Query(pattern="^(active|pending|firing|resolved|all)$", description="Which alerts."),
        ] = "active",
        limit: LimitParam = 100,
        _: Principal = deps["alerts"],
    ) -> list[AlertOut]:
        """Alerts by state (``active`` = pending and firing), each with its history."""
        await run(stats.refresh)
        found = []
        if state in ("active", "pending", "firing", "all"):
            found += [
                a
                for a in monitor.alerts.active()
                if state in ("active", "all") or a.state.value == state
            ]
        if state in ("resolved", "all"):
            found += monitor.alerts.resolved(limit)
        return [AlertOut.of(a) for a in found[:limit]]

    @router.post("/alerts/{alert_id}/resolve", response_model=AlertOut)
    async def resolve(
        alert_id: Annotated[str, Path(max_length=64)],
        body: ResolveIn,
        who: Principal = admin["resolve"],
    ) -> AlertOut:
        """Resolve an active alert with a reason; records who and when (audited)."""
        # with a shared store the alert and the audit record are written to its file: off the loop
        return await run(lambda: _resolve(alert_id, body.reason, who.name))

    def _resolve(alert_id: str, reason: str, who_name: str) -> AlertOut:
        resolved = monitor.alerts.resolve(alert_id, who=who_name, reason=reason)
        if resolved is None:
            known = monitor.alerts.get(alert_id)
            result = "already resolved" if known is not None else "not found"
            monitor.audit.append(
                who=who_name,
                action="resolve_alert",
                target=alert_id,
                reason=reason,
                result=result,
            )
            if known is not None:
                raise HTTPException(status_code=409, detail=f"alert {alert_id} is already resolved")
            raise HTTPException(status_code=404, detail=f"no active alert with id {alert_id!r}")
        monitor.audit.append(
            who=who_name,
            action="resolve_alert",
            target=alert_id,
            reason=reason,
            result="resolved",
        )
        return AlertOut.of(resolved)

    # -- analysis --------------------------------------------------------------------------
    def finest(
        metric: TimeseriesMetric, route: str | None, method: str | None, window: Window
    ) -> tuple[History, str | None]:
        """A live chart's finest points, or none and the reason they are not available."""
        try:
            return monitor.finest(metric, route, method, window), None
        except ValueError as exc:
            return History.empty(metric, monitor.live_scores.fine_step_s), str(exc)

    @router.post("/anomalies/detect", response_model=DetectOut)
    async def detect_anomalies(
        body: Annotated[DetectIn, Body()],
        who: Principal = admin["detect"],
    ) -> DetectOut:
        """Run anomaly detection on a statistic of the service or one route (audited)."""
        metric, window = body.metric, body.window

        def build() -> DetectOut:
            from otel_monitoring.analysis import detect, detect_history

            reason = "no data for this series in the window"
            if body.resolution == "finest":
                history, unavailable = finest(metric, body.route, body.method, window)
                threshold, marks = detect_history(history, body.sensitivity)
                observed, step_s = len(history.values), history.step_s
                reason = unavailable or reason
            else:
                series = monitor.chart(metric, body.route, body.method, window)
                threshold, marks = detect(series, body.sensitivity, live=monitor.chart_scores)
                observed = sum(1 for p in series.points if p.value is not None)
                step_s = series.step_s
            return DetectOut(
                metric=metric.value,
                route=body.route,
                method=body.method,
                window=window.value,
                step_s=step_s,
                points=observed,
                threshold=threshold,
                anomalies=[
                    AnomalyOut(t=m.t, at=iso(m.t) or "", value=m.value, score=m.score)
                    for m in marks
                ],
                available=observed > 0,
                reason=None if observed else reason,
            )

        try:
            out = await run(build)
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        monitor.audit.append(
            who=who.name,
            action="detect_anomalies",
            target=f"{metric.value} {body.method or ''} {body.route or 'service'}".strip(),
            reason=f"window {window.value}, sensitivity {body.sensitivity}",
            result=f"{len(out.anomalies)} anomalies in {out.points} points",
        )
        return out

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
        _: Principal = deps["trends"],
    ) -> TrendOut:
        """Trend of a statistic: direction with significance, slope per hour, % change."""

        def build() -> TrendOut:
            if resolution == "finest":
                history, unavailable = finest(metric, route, method, window)
                return trend_out(history, window, route, method, unavailable)
            return trend_out(monitor.chart(metric, route, method, window), window, route, method)

        return await run(build)

    @router.get("/correlations", response_model=list[CorrelationOut])
    async def correlations(
        window: WindowParam = Window.H1, _: Principal = deps["correlations"]
    ) -> list[CorrelationOut]:
        """Correlations between throughput, error rate and routes' p95 latency (BH-corrected)."""

        def build() -> list[CorrelationOut]:
            from otel_monitoring.analysis import correlations as compute

            stats.refresh()
            found = compute(stats, window_s=window.seconds or 86400.0, now_s=monitor.clock.now_s())
            return [correlation_out(pair) for pair in found]

        return await run(build)

    @router.get("/recommendations", response_model=list[InsightOut])
    async def recommendations(
        window: WindowParam = Window.H1, _: Principal = deps["recommendations"]
    ) -> list[InsightOut]:
        """Recommendations with the evidence behind each (numbers, routes, trace ids)."""

        def build() -> list[InsightOut]:
            return [insight_out(i) for i in monitor.insights(window).recommendations]

        return await run(build)

    # -- maintenance -----------------------------------------------------------------------
    @router.post("/cleanup", response_model=CleanupOut)
    async def cleanup(
        body: Annotated[CleanupIn, Body()] = CleanupIn(),  # noqa: B008 - a frozen default
        who: Principal = admin["cleanup"],
    ) -> CleanupOut:
        """Remove data older than the retention (or ``max_age``); reports what went (audited)."""
        age_s = parse_duration_s(body.max_age) if body.max_age else None
        # with a shared store this deletes rows from its file: off the loop
        result = await run(
            lambda: monitor.cleanup_old_metrics(age_s, who=who.name, reason=body.reason)
        )
        return CleanupOut(
            cutoff=iso(result.cutoff_s) or "",
            buckets_removed=result.buckets_removed,
            findings_removed=result.findings_removed,
            alerts_removed=result.alerts_removed,
        )

    @router.get("/audit", response_model=list[AuditOut])
    async def audit(limit: LimitParam = 100, _: Principal = deps["audit"]) -> list[AuditOut]:
        """The audit trail of mutating calls, newest first."""
        # with a shared store the records are read from its file: off the loop
        return [AuditOut.of(r) for r in await run(lambda: monitor.audit.records(limit))]

    # -- details ---------------------------------------------------------------------------
    @router.get("/slow-traces", response_model=list[Exemplar])
    async def slow_traces(
        window: WindowParam = Window.H1,
        route: RouteParam = None,
        limit: LimitParam = 20,
        _: Principal = deps["slow_traces"],
    ) -> list[Exemplar]:
        """The slowest traces with their trace ids (exemplars), slowest first."""
        return stats.slow_traces(route=route, window=window, limit=limit)

    @router.get("/errors", response_model=list[ErrorSample])
    async def errors(limit: LimitParam = 50, _: Principal = deps["errors"]) -> list[ErrorSample]:
        """Recent error samples: exception type and a sanitized message."""
        return await run(lambda: stats.errors(limit))  # sanitized at first read

    @router.get("/db", response_model=list[DbStatementStats])
    async def db(
        window: WindowParam = Window.H1, _: Principal = deps["db"]
    ) -> list[DbStatementStats]:
        """DB operations per statement summary, slowest first."""
        return await run(lambda: view.db_statements(window))

    @router.get("/db/n-plus-one", response_model=list[NPlusOnePattern])
    async def n_plus_one(
        limit: LimitParam = 50, _: Principal = deps["db"]
    ) -> list[NPlusOnePattern]:
        """Statements repeated within one trace (N+1 patterns), newest first."""
        return stats.n_plus_one(limit)

    @router.get("/caches", response_model=list[CacheStats])
    async def caches(
        window: WindowParam = Window.H1, _: Principal = deps["caches"]
    ) -> list[CacheStats]:
        """Hit ratio per named cache."""
        return await run(lambda: stats.caches(window))

    @router.get("/external", response_model=list[ExternalStats])
    async def external(
        window: WindowParam = Window.H1, _: Principal = deps["external"]
    ) -> list[ExternalStats]:
        """Outbound HTTP calls per target host."""
        return await run(lambda: stats.external(window))

    @router.get("/metrics", response_model=list[MetricStats])
    async def other_metrics(
        window: WindowParam = Window.H1, _: Principal = deps["metrics"]
    ) -> list[MetricStats]:
        """Every other OTel metric the app defines."""
        return await run(lambda: stats.metrics(window))

    _include_ui(router)
    return router


def install_error_handlers(app: FastAPI) -> None:
    """Answer an unreachable or failing Prometheus (fleet mode) with a 503 and the reason."""
    from otel_monitoring.fleet.prometheus import PrometheusError

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"fleet statistics unavailable: {exc}"}, status_code=503)

    app.add_exception_handler(PrometheusError, unavailable)


def _include_ui(router: APIRouter) -> None:
    try:
        from otel_monitoring.dashboard.ui import make_ui_router
    except ImportError:  # the dashboard assets are not part of this build
        return
    router.include_router(make_ui_router())
