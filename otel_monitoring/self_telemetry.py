"""The instrumentation boundary: count and log errors, never raise into the host app.

Every hook that runs on the request path (middleware bookkeeping, span processor, DB
listeners, metric ingestion) funnels its failures into one :class:`Guard`, which counts them
and logs at most one line per ``log_interval_s`` so a persistent fault cannot flood the logs.
"""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["Guard"]

_logger = logging.getLogger("otel_monitoring")


class Guard:
    """Counts swallowed errors, dropped items and clock steps; logs errors rate-limited."""

    def __init__(self, log_interval_s: float = 60.0) -> None:
        self.log_interval_s = log_interval_s
        self.internal_errors = 0
        self.dropped = 0
        self.clock_steps = 0
        self._last_log = -float("inf")
        self._suppressed = 0
        self._lock = threading.Lock()

    def error(self, where: str, exc: BaseException) -> None:
        """Record an error swallowed in ``where``. Never raises."""
        try:
            with self._lock:
                self.internal_errors += 1
                now = time.monotonic()
                if now - self._last_log < self.log_interval_s:
                    self._suppressed += 1
                    return
                suppressed, self._suppressed = self._suppressed, 0
                self._last_log = now
            _logger.warning(
                "otel-monitoring: error in %s (%s: %s); the request was not affected"
                " (%d similar errors suppressed since the last report)",
                where,
                type(exc).__name__,
                exc,
                suppressed,
            )
        except Exception:
            pass

    def drop(self, count: int = 1) -> None:
        """Count items dropped because a bounded buffer was full."""
        self.dropped += count

    def clock_step(self, count: int = 1) -> None:
        """Count a duration that came out negative (the wall clock stepped back)."""
        self.clock_steps += count
