"""Monitoring API, alerts: ``GET /alerts``, ``POST /alerts/{id}/resolve`` (admin, audited).

Parses, calls :class:`~otel_monitoring.analysis.service.Analysis` off the event loop and
renders; computes nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from otel_monitoring.analysis.service import (
    ALERT_STATES,
    AlertAlreadyResolvedError,
    AlertNotFoundError,
    Analysis,
)
from otel_monitoring.api.auth import Principal
from otel_monitoring.api.deps import LimitParam, RouteDeps, off_loop, resource_router
from otel_monitoring.api.models import AlertOut, ResolveIn

__all__ = ["alerts_router"]


def alerts_router(analysis: Analysis, deps: RouteDeps) -> APIRouter:
    """The alert routes of ``analysis``."""
    router = resource_router()

    @router.get("/alerts", response_model=list[AlertOut])
    async def alerts(
        state: Annotated[
            str,
            Query(pattern=f"^({'|'.join(ALERT_STATES)})$", description="Which alerts."),
        ] = "active",
        limit: LimitParam = 100,
        _: Principal = deps.user["alerts"],
    ) -> list[AlertOut]:
        """Alerts by state (``active`` = pending and firing), each with its history."""
        return [AlertOut.of(a) for a in await off_loop(lambda: analysis.alerts(state, limit))]

    @router.post("/alerts/{alert_id}/resolve", response_model=AlertOut)
    async def resolve(
        alert_id: Annotated[str, Path(max_length=64)],
        body: ResolveIn,
        who: Principal = deps.admin["resolve"],
    ) -> AlertOut:
        """Resolve an active alert with a reason; records who and when (audited)."""
        try:
            # with a shared store the alert and the audit record are written to its file
            resolved = await off_loop(
                lambda: analysis.resolve_alert(alert_id, who=who.name, reason=body.reason)
            )
        except AlertAlreadyResolvedError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        except AlertNotFoundError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        return AlertOut.of(resolved)

    return router
