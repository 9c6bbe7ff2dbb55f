"""Public test helpers: a clock you move by hand, and a monitor that sends nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from otel_monitoring.config import Settings

if TYPE_CHECKING:
    from otel_monitoring.alerting.rules import Rule
    from otel_monitoring.clock import Clock
    from otel_monitoring.monitor import Monitor

__all__ = ["FakeClock", "offline_monitor"]


class FakeClock:
    """A :class:`~otel_monitoring.clock.Clock` that only moves when told to."""

    def __init__(self, start_s: float = 1_700_000_000.0) -> None:
        self.wall_s = start_s
        self.mono_s = 1000.0

    def now_s(self) -> float:
        return self.wall_s

    def monotonic_s(self) -> float:
        return self.mono_s

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        self.wall_s += seconds
        self.mono_s += seconds

    def step_wall(self, seconds: float) -> None:
        """Step only the wall clock (forwards or backwards), as NTP or a VM resume does."""
        self.wall_s += seconds


def offline_monitor(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    rules: Sequence[Rule] = (),
    **kwargs: Any,
) -> Monitor:
    """A :class:`~otel_monitoring.Monitor` for tests and benchmarks: no exporters, no
    environment variables, ``rules`` only (none by default) and a :class:`FakeClock` unless
    ``clock`` is given. ``kwargs`` go to the monitor (``tracer_provider``,
    ``logger_provider``...); the tracer provider defaults to a fresh SDK one."""
    from opentelemetry.sdk.trace import TracerProvider

    from otel_monitoring.monitor import Monitor

    kwargs.setdefault("tracer_provider", TracerProvider())
    return Monitor(
        settings or Settings(),
        span_exporters=[],
        metric_exporters=[],
        clock=clock or FakeClock(),
        env={},
        rules=rules,
        **kwargs,
    )
