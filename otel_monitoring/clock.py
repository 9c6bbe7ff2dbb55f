"""Clocks: the one seam through which time enters the package.

Logic that depends on time takes a :class:`Clock`; tests pass
:class:`otel_monitoring.testing.FakeClock` and never sleep.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "SystemClock", "iso"]


class Clock(Protocol):
    """Source of wall-clock and monotonic time, both in seconds."""

    def now_s(self) -> float:
        """Wall-clock time (Unix epoch), seconds. May step backwards or forwards."""
        ...

    def monotonic_s(self) -> float:
        """Monotonic time, seconds. Never steps; only differences are meaningful."""
        ...


class SystemClock:
    """The real clock: :func:`time.time` and :func:`time.monotonic`."""

    def now_s(self) -> float:
        return time.time()

    def monotonic_s(self) -> float:
        return time.monotonic()


def iso(t_s: float | None) -> str | None:
    """Unix seconds as an ISO-8601 UTC string (``None`` stays ``None``)."""
    if t_s is None:
        return None
    return datetime.fromtimestamp(t_s, tz=UTC).isoformat()
