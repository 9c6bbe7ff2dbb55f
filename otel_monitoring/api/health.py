"""Monitoring API, health and dashboard: ``GET /health``, ``GET /dashboard``.

Parses, calls :class:`~otel_monitoring.analysis.service.Analysis` off the event loop and
renders; computes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter

from otel_monitoring.analysis.service import Analysis
from otel_monitoring.api.auth import Principal
from otel_monitoring.api.deps import RouteDeps, WindowParam, off_loop, resource_router
from otel_monitoring.api.insight_views import insight_out
from otel_monitoring.api.models import AlertOut, DashboardOut
from otel_monitoring.types import HealthStatus, Window

__all__ = ["health_router"]


def health_router(analysis: Analysis, deps: RouteDeps) -> APIRouter:
    """The health and dashboard routes of ``analysis``."""
    router = resource_router()

    @router.get("/health", response_model=HealthStatus)
    async def health(_: Principal = deps.user["health"]) -> HealthStatus:
        """System health, uptime, totals, error rate (percent), active alerts, self-telemetry."""
        return await off_loop(analysis.health)

    @router.get("/dashboard", response_model=DashboardOut)
    async def dashboard(
        window: WindowParam = Window.H1, _: Principal = deps.user["dashboard"]
    ) -> DashboardOut:
        """Executive dashboard: health, the worst endpoints, active alerts, insights."""
        found = await off_loop(lambda: analysis.dashboard(window))
        return DashboardOut(
            health=found.health,
            top_endpoints=found.top_endpoints,
            active_alerts=[AlertOut.of(a) for a in found.active_alerts],
            insights=[insight_out(i) for i in found.insights],
            recommendations=[insight_out(i) for i in found.recommendations],
            timestamp=datetime.now(tz=UTC).isoformat(),
        )

    return router
