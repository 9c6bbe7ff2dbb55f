"""Pydantic models at the HTTP edge: request bodies and responses that are not plain stats.

Times are ISO-8601 strings (UTC) for people and ``*_s`` Unix seconds where charts need
numbers. Every request model forbids unknown fields and bounds its strings.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from otel_monitoring.clock import iso
from otel_monitoring.stats.timeseries import TimeseriesMetric
from otel_monitoring.types import EndpointStats, HealthStatus, Window

if TYPE_CHECKING:
    from otel_monitoring.alerting.model import Alert
    from otel_monitoring.audit import AuditRecord

__all__ = [
    "AlertEventOut",
    "AlertOut",
    "AnomalyOut",
    "AuditOut",
    "CleanupIn",
    "CleanupOut",
    "DashboardOut",
    "DetectIn",
    "DetectOut",
    "ErrorOut",
    "EvidenceOut",
    "InsightOut",
    "Resolution",
    "ResolveIn",
    "iso",
]


class ErrorOut(BaseModel):
    """Every error body: what was wrong."""

    detail: str | list[dict[str, Any]]


class AlertEventOut(BaseModel):
    at: str
    state: str
    note: str


class AlertOut(BaseModel):
    """An alert with its history; ``value`` and ``threshold`` share the rule's unit."""

    id: str
    fingerprint: str
    rule: str
    severity: str
    state: str
    summary: str
    labels: dict[str, str]
    value: float
    threshold: float
    started_at: str
    updated_at: str
    resolved_at: str | None
    resolved_by: str | None
    resolution_reason: str | None
    history: list[AlertEventOut]

    @classmethod
    def of(cls, alert: Alert) -> AlertOut:
        return cls(
            id=alert.id,
            fingerprint=alert.fingerprint,
            rule=alert.rule,
            severity=alert.severity,
            state=alert.state.value,
            summary=alert.summary,
            labels=dict(alert.labels),
            value=alert.value,
            threshold=alert.threshold,
            started_at=iso(alert.started_s) or "",
            updated_at=iso(alert.updated_s) or "",
            resolved_at=iso(alert.resolved_s),
            resolved_by=alert.resolved_by,
            resolution_reason=alert.resolution_reason,
            history=[
                AlertEventOut(at=iso(e.at_s) or "", state=e.state.value, note=e.note)
                for e in alert.history
            ],
        )


class ResolveIn(BaseModel):
    """Why the alert is resolved (kept in the alert and the audit trail)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


#: A cleanup age: digits limited per unit so that every match is under 10**9 s (31 years),
#: the bound :meth:`~otel_monitoring.Monitor.cleanup_old_metrics` takes.
CLEANUP_AGE_PATTERN = (
    r"^\s*(\d{1,12}(\.\d{1,6})?\s*ms|\d{1,9}(\.\d{1,6})?\s*s?|\d{1,7}(\.\d{1,6})?\s*m"
    r"|\d{1,5}(\.\d{1,6})?\s*h|\d{1,4}(\.\d{1,6})?\s*d)\s*$"
)


class CleanupIn(BaseModel):
    """Remove data older than ``max_age`` (default: the retention), e.g. ``"1h"``; at
    most 9999d, 99999h, 9999999m or 999999999s."""

    model_config = ConfigDict(extra="forbid")
    max_age: str | None = Field(
        default=None, max_length=32, json_schema_extra={"pattern": CLEANUP_AGE_PATTERN}
    )
    reason: str = Field(default="maintenance", min_length=1, max_length=1000)

    @field_validator("max_age")
    @classmethod
    def _bounded(cls, value: str | None) -> str | None:
        # Checked here rather than by ``pattern=`` so the error says what is wrong.
        if value is None or re.match(CLEANUP_AGE_PATTERN, value):
            return value
        from otel_monitoring.config import parse_duration_s

        parse_duration_s(value)  # ValueError: not a duration, with examples
        raise ValueError("too large: at most 9999d, 99999h, 9999999m or 999999999s (31 years)")


class CleanupOut(BaseModel):
    """What a cleanup removed."""

    cutoff: str
    buckets_removed: int
    findings_removed: int
    alerts_removed: int


class AuditOut(BaseModel):
    id: int
    at: str
    who: str
    action: str
    target: str
    reason: str
    result: str

    @classmethod
    def of(cls, record: AuditRecord) -> AuditOut:
        return cls(
            id=record.id,
            at=iso(record.at_s) or "",
            who=record.who,
            action=record.action,
            target=record.target,
            reason=record.reason,
            result=record.result,
        )


class EvidenceOut(BaseModel):
    name: str
    value: float | int | str
    unit: str | None


class InsightOut(BaseModel):
    """A finding, what to do about it, and the evidence it rests on."""

    kind: str
    severity: str
    title: str
    message: str
    recommendation: str
    route: str | None
    trace_ids: list[str]
    evidence: list[EvidenceOut]


class DashboardOut(BaseModel):
    """The executive dashboard: health, worst endpoints, alerts, insights.

    ``recommendations`` are the findings that need action (warning and worse);
    ``insights`` are the other, informational findings (no finding is in both).
    """

    health: HealthStatus
    top_endpoints: list[EndpointStats]
    active_alerts: list[AlertOut]
    insights: list[InsightOut]
    recommendations: list[InsightOut]
    timestamp: str


#: ``chart``: the chart's points for the window (10 s up to 1 h, 1 min up to 24 h);
#: ``finest``: the live charts' finest points (every collection), kept for
#: ``OTEL_MONITORING_FINE_HISTORY`` (p95 latency, error rate and throughput).
Resolution = Literal["chart", "finest"]


class DetectIn(BaseModel):
    """What to scan for anomalies: a charted metric of the service or one route."""

    model_config = ConfigDict(extra="forbid")
    metric: TimeseriesMetric = TimeseriesMetric.LATENCY_P95
    route: str | None = Field(default=None, max_length=512)
    method: str | None = Field(default=None, max_length=16, pattern=r"^[A-Za-z_]+$")
    window: Window = Window.H1
    sensitivity: Literal["low", "medium", "high"] = "medium"
    resolution: Resolution = "chart"


class AnomalyOut(BaseModel):
    t: float
    at: str
    value: float
    score: float


class DetectOut(BaseModel):
    """Anomaly scores of a series and the alarms at the chosen sensitivity."""

    metric: str
    route: str | None
    method: str | None
    window: str
    step_s: float
    points: int
    threshold: float
    anomalies: list[AnomalyOut]
    available: bool
    reason: str | None = None
