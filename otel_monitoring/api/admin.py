"""Monitoring API, maintenance: ``POST /cleanup`` (admin, audited), ``GET /audit``.

Parses, calls :class:`~otel_monitoring.analysis.service.Analysis` off the event loop and
renders; computes nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from otel_monitoring.analysis.service import Analysis
from otel_monitoring.api.auth import Principal
from otel_monitoring.api.deps import LimitParam, RouteDeps, off_loop, resource_router
from otel_monitoring.api.models import AuditOut, CleanupIn, CleanupOut, iso
from otel_monitoring.config import parse_duration_s

__all__ = ["admin_router"]


def admin_router(analysis: Analysis, deps: RouteDeps) -> APIRouter:
    """The cleanup and audit routes of ``analysis``."""
    router = resource_router()

    @router.post("/cleanup", response_model=CleanupOut)
    async def cleanup(
        body: Annotated[CleanupIn, Body()] = CleanupIn(),  # noqa: B008 - a frozen default
        who: Principal = deps.admin["cleanup"],
    ) -> CleanupOut:
        """Remove data older than the retention (or ``max_age``); reports what went (audited)."""
        age_s = parse_duration_s(body.max_age) if body.max_age else None
        # with a shared store this deletes rows from its file: off the loop
        result = await off_loop(lambda: analysis.cleanup(age_s, who=who.name, reason=body.reason))
        return CleanupOut(
            cutoff=iso(result.cutoff_s) or "",
            buckets_removed=result.buckets_removed,
            findings_removed=result.findings_removed,
            alerts_removed=result.alerts_removed,
        )

    @router.get("/audit", response_model=list[AuditOut])
    async def audit(limit: LimitParam = 100, _: Principal = deps.user["audit"]) -> list[AuditOut]:
        """The audit trail of mutating calls, newest first."""
        # with a shared store the records are read from its file: off the loop
        return [AuditOut.of(r) for r in await off_loop(lambda: analysis.audit_records(limit))]

    return router
