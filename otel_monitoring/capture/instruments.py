"""The OTel instruments this package records through (stable semantic-convention names).

Recording goes through the OpenTelemetry API, so the same aggregation feeds both the
in-process store and any OTLP export.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.metrics import Counter, Histogram, Meter

__all__ = [
    "CACHE_METRIC",
    "DB_DURATION_METRIC",
    "HTTP_CLIENT_DURATION_METRIC",
    "HTTP_DURATION_METRIC",
    "HTTP_RESPONSE_SIZE_METRIC",
    "Instruments",
]

HTTP_DURATION_METRIC = "http.server.request.duration"
HTTP_RESPONSE_SIZE_METRIC = "http.server.response.body.size"
HTTP_CLIENT_DURATION_METRIC = "http.client.request.duration"
DB_DURATION_METRIC = "db.client.operation.duration"
CACHE_METRIC = "otel_monitoring.cache.requests"


@dataclass(frozen=True, slots=True)
class Instruments:
    """Instruments created on one meter."""

    http_duration: Histogram
    http_response_size: Histogram
    db_duration: Histogram
    cache_requests: Counter

    @classmethod
    def create(cls, meter: Meter) -> Instruments:
        """Create (or get, instruments are idempotent per meter) every instrument."""
        return cls(
            http_duration=meter.create_histogram(
                HTTP_DURATION_METRIC, unit="s", description="Duration of HTTP server requests."
            ),
            http_response_size=meter.create_histogram(
                HTTP_RESPONSE_SIZE_METRIC,
                unit="By",
                description="Size of HTTP server response bodies.",
            ),
            db_duration=meter.create_histogram(
                DB_DURATION_METRIC, unit="s", description="Duration of database operations."
            ),
            cache_requests=meter.create_counter(
                CACHE_METRIC,
                unit="{request}",
                description="Cache look-ups by cache name and result (hit or miss).",
            ),
        )
