"""Manual recording: the original ``MetricsCollector`` operations, on the OTel instruments.

Recording goes through the same instruments as automatic capture, so manual and automatic
data share one aggregation. Every method is cheap and never raises: a failure is counted in
the self-telemetry (:class:`~otel_monitoring.self_telemetry.Guard`) and the call returns.
"""

from __future__ import annotations

from typing import Any

from otel_monitoring.capture.instruments import Instruments
from otel_monitoring.self_telemetry import Guard

__all__ = ["Recorder"]


class Recorder:
    """Records requests, cache look-ups and DB operations by hand; see the module docstring."""

    def __init__(self, instruments: Instruments, guard: Guard) -> None:
        self._instruments = instruments
        self._guard = guard

    def record_request(
        self,
        method: str,
        route: str,
        status_code: int,
        duration_ms: float,
        response_size_bytes: int | None = None,
    ) -> None:
        """Record one request (duration in ms, recorded in s; size in bytes). Never raises."""
        try:
            attributes: dict[str, Any] = {
                "http.request.method": method.upper(),
                "http.route": route,
                "http.response.status_code": status_code,
            }
            if status_code >= 500:
                attributes["error.type"] = str(status_code)
            self._instruments.http_duration.record(max(0.0, duration_ms) / 1000.0, attributes)
            if response_size_bytes is not None:
                self._instruments.http_response_size.record(response_size_bytes, attributes)
        except Exception as exc:  # instrumentation boundary
            self._guard.error("record_request", exc)

    def record_cache(self, hit: bool, cache: str = "default") -> None:
        """Count one cache look-up (a hit or a miss) of the named cache. Never raises."""
        try:
            self._instruments.cache_requests.add(
                1, {"cache.name": cache, "cache.result": "hit" if hit else "miss"}
            )
        except Exception as exc:  # instrumentation boundary
            self._guard.error("record_cache", exc)

    def record_database_query(
        self, statement: str, duration_ms: float, *, system: str = "other", error: str | None = None
    ) -> None:
        """Record one DB operation (duration in ms, recorded in s; the statement is reduced
        to its summary, never stored). Never raises."""
        from otel_monitoring.capture.sql_summary import summarize_statement

        try:
            summary, operation = summarize_statement(statement)
            attributes = {
                "db.system.name": system,
                "db.query.summary": summary,
                "db.operation.name": operation,
            }
            if error is not None:
                attributes["error.type"] = error
            self._instruments.db_duration.record(max(0.0, duration_ms) / 1000.0, attributes)
        except Exception as exc:  # instrumentation boundary
            self._guard.error("record_database_query", exc)
