"""The monitoring HTTP API: a FastAPI ``APIRouter`` that translates; the core computes.

Mounted by :func:`otel_monitoring.instrument_app` under the prefix (default
``/monitoring``) or served on a side port in zero-code mode. Every route has a rate limit
and, when keys are configured, needs one (``/health`` excepted); mutating routes need an
admin key and leave an audit record. Errors are JSON bodies with a ``detail`` that says
what was wrong; bad input is a 4xx, never a 500.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from otel_monitoring.api.admin import admin_router
from otel_monitoring.api.alerts import alerts_router
from otel_monitoring.api.deps import MAX_LIMIT, Access, LimitedBodyRoute, RouteDeps
from otel_monitoring.api.details import details_router
from otel_monitoring.api.endpoints import endpoints_router
from otel_monitoring.api.health import health_router
from otel_monitoring.api.insights import insights_router
from otel_monitoring.api.models import ErrorOut
from otel_monitoring.monitor import Monitor

__all__ = ["MAX_LIMIT", "install_error_handlers", "make_router"]

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
    """Build the monitoring API for ``monitor`` (mount it with a prefix): one router per
    resource, each calling the monitor's :class:`~otel_monitoring.analysis.service.Analysis`.

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
    deps = RouteDeps.of(Access(settings, monitor.clock))
    for resource in (
        health_router,
        endpoints_router,
        alerts_router,
        insights_router,
        admin_router,
        details_router,
    ):
        router.include_router(resource(monitor.analysis, deps))
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
