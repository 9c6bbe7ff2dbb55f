"""Public test helpers: a clock you move by hand."""

from __future__ import annotations

__all__ = ["FakeClock"]


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
