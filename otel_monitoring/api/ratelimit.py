"""Rate limits of the monitoring API: GCRA on a monotonic clock, bounded memory.

Why not the ``limits`` library's storage: its in-memory storage reads the wall clock
(``time.time()``), so an NTP or VM clock step of an hour either locks every client out
(backward) or resets their limits early (forward). The algorithm here is the generic cell
rate algorithm on an injected monotonic clock; ``limits`` still parses the rate strings
(``"100/minute"``). Keys are (route template, client); the least recently used keys are
evicted past ``max_keys``, so memory is bounded whatever the number of clients.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from limits import parse

from otel_monitoring.clock import Clock

__all__ = ["DEFAULT_LIMITS", "Decision", "RateLimiter", "parse_rate"]

#: The design's table: endpoint name -> limit.
DEFAULT_LIMITS: Mapping[str, str] = {
    "health": "100/minute",
    "dashboard": "50/minute",
    "endpoints": "50/minute",
    "endpoint": "100/minute",
    "alerts": "30/minute",
    "resolve": "20/minute",
    "detect": "10/minute",
    "trends": "30/minute",
    "cleanup": "5/minute",
    "recommendations": "20/minute",
    "timeseries": "120/minute",
    "slow_traces": "60/minute",
    "errors": "60/minute",
    "db": "60/minute",
    "caches": "60/minute",
    "external": "60/minute",
    "metrics": "60/minute",
    "audit": "30/minute",
    "correlations": "20/minute",
    # GET /metrics on the app (Prometheus export): generous for scrapers sharing an address;
    # its cost is bounded by the cached rendering, one collection per interval.
    "prometheus": "600/minute",
}


def parse_rate(text: str) -> tuple[int, float]:
    """``"100/minute"`` -> ``(100, 60.0)``: requests and period in seconds.

    Raises:
        ValueError: not a rate such as ``10/second``, ``100/minute`` or ``1000/hour``, or
            a rate of 0.
    """
    try:
        item = parse(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a rate (examples: 10/second, 100/minute)") from exc
    if item.amount < 1:
        raise ValueError(f"{text!r} allows no request; the smallest rate is 1 per period")
    return int(item.amount), float(item.get_expiry())


@dataclass(frozen=True, slots=True)
class Decision:
    """Outcome for one request; seconds are rounded up for headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_s: float
    retry_after_s: float


class RateLimiter:
    """Thread-safe GCRA limiter keyed by ``(name, client)``."""

    def __init__(
        self, clock: Clock, limits: Mapping[str, str] | None = None, max_keys: int = 10_000
    ) -> None:
        self.clock = clock
        self.rates = {
            name: parse_rate(text) for name, text in {**DEFAULT_LIMITS, **(limits or {})}.items()
        }
        self.max_keys = max_keys
        self._tat: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, name: str, client: str) -> Decision:
        """Count one request of ``client`` to the endpoint ``name``."""
        amount, period = self.rates.get(name, (60, 60.0))
        interval = period / amount
        now = self.clock.monotonic_s()
        key = (name, client)
        with self._lock:
            tat = max(self._tat.get(key, now), now)
            new_tat = tat + interval
            if new_tat - now > period + 1e-9:
                retry = new_tat - now - period
                return Decision(False, amount, 0, math.ceil(tat - now), math.ceil(retry))
            self._tat[key] = new_tat
            self._tat.move_to_end(key)
            if len(self._tat) > self.max_keys:
                self._tat.popitem(last=False)
        remaining = int((period - (new_tat - now)) // interval + 1e-9)
        return Decision(True, amount, max(0, remaining), math.ceil(new_tat - now), 0.0)
