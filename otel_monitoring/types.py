"""Frozen dataclasses and enums that cross module boundaries (and the public API).

Units are in the names: ``*_ms`` milliseconds, ``*_s`` seconds, ``*_bytes`` bytes,
``*_rpm`` requests per minute. Rates named ``*_rate`` are percentages (0-100), as the
original API showed them (``{"error_rate": 0.5}`` for 50 errors in 10,000 requests).
Statistics with no data are ``None``, never a made-up zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CacheStats",
    "DbStatementStats",
    "EndpointStats",
    "ErrorSample",
    "Exemplar",
    "ExternalStats",
    "HealthState",
    "HealthStatus",
    "LatencyStats",
    "MetricStats",
    "NPlusOnePattern",
    "SelfTelemetry",
    "ServiceStats",
    "Window",
]


class Window(StrEnum):
    """Look-back windows of the statistics."""

    M1 = "1m"
    M5 = "5m"
    H1 = "1h"
    H24 = "24h"
    ALL = "all"

    @property
    def seconds(self) -> float | None:
        """Length in seconds; ``None`` for ``all`` (since start)."""
        return _WINDOW_S[self]


_WINDOW_S: dict[Window, float | None] = {
    Window.M1: 60.0,
    Window.M5: 300.0,
    Window.H1: 3600.0,
    Window.H24: 86400.0,
    Window.ALL: None,
}


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Latency distribution, milliseconds. Percentiles are within 1 % of exact ones."""

    min_ms: float | None
    avg_ms: float | None
    max_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True, slots=True)
class Exemplar:
    """One of the slowest traces of a route in an interval."""

    trace_id: str
    span_id: str
    route: str
    method: str
    status_code: int | None
    duration_ms: float
    timestamp_s: float


@dataclass(frozen=True, slots=True)
class ErrorSample:
    """A recent failed request: exception type and a sanitized, truncated message."""

    timestamp_s: float
    route: str
    method: str
    status_code: int | None
    exception_type: str
    message: str
    trace_id: str


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """Statistics of one route template and method over a window.

    ``errors`` counts 5xx responses and exceptions; ``client_errors`` counts 4xx apart.
    """

    route: str
    method: str
    window: Window
    requests: int
    errors: int
    error_rate: float
    client_errors: int
    client_error_rate: float
    latency: LatencyStats
    throughput_rpm: float
    response_size_avg_bytes: float | None
    response_size_max_bytes: float | None
    status_classes: tuple[tuple[str, int], ...]
    exemplars: tuple[Exemplar, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceStats:
    """The same statistics over every route of the service."""

    window: Window
    requests: int
    errors: int
    error_rate: float
    client_errors: int
    client_error_rate: float
    latency: LatencyStats
    throughput_rpm: float
    endpoints_count: int


@dataclass(frozen=True, slots=True)
class DbStatementStats:
    """Database operations grouped by statement summary (e.g. ``SELECT items``)."""

    summary: str
    system: str
    count: int
    errors: int
    avg_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    example: str


@dataclass(frozen=True, slots=True)
class NPlusOnePattern:
    """One statement repeated many times within a single trace."""

    statement: str
    route: str
    method: str
    count: int
    trace_id: str
    timestamp_s: float


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Hits and misses of one named cache; ``hit_ratio`` is a percentage or ``None``."""

    cache: str
    hits: int
    misses: int
    hit_ratio: float | None


@dataclass(frozen=True, slots=True)
class ExternalStats:
    """Outbound HTTP calls to one host (through the OTel httpx/requests instrumentations)."""

    host: str
    count: int
    errors: int
    avg_ms: float | None
    p95_ms: float | None


@dataclass(frozen=True, slots=True)
class MetricStats:
    """Any other OTel metric of the app, per attribute set: a sum, a gauge or a histogram.

    ``value`` is the sum over the window (counters), the last value (gauges) or the mean
    (histograms, in the instrument's unit).
    """

    name: str
    unit: str
    kind: str
    attributes: tuple[tuple[str, str], ...]
    value: float | None
    count: int


class HealthState(StrEnum):
    """Overall state of the service."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True, slots=True)
class StoreTelemetry:
    """The shared SQLite store (``OTEL_MONITORING_STORE``), counts since the process started.

    ``failing``: its last write failed (the file is locked, full, read-only or damaged); what
    was not written waits in ``backlog`` and is retried each collection interval.
    """

    failing: bool
    writes: int
    write_errors: int
    read_errors: int
    backlog: int
    dropped: int


@dataclass(frozen=True, slots=True)
class SelfTelemetry:
    """How the monitoring itself is doing: errors it swallowed, data it dropped; ``store``
    only with a shared store."""

    internal_errors: int
    dropped: int
    clock_steps: int
    series: int
    overflowed: int
    collections: int
    last_collection_age_s: float | None
    store: StoreTelemetry | None = None


@dataclass(frozen=True, slots=True)
class HealthStatus:
    """Health summary. ``reasons`` says why when the state is not healthy."""

    status: HealthState
    reasons: tuple[str, ...]
    uptime_seconds: float
    total_requests: int
    total_errors: int
    error_rate: float
    endpoints_count: int
    active_alerts: int
    self_telemetry: SelfTelemetry
