"""The demo's traffic generator: a mixed request stream with scheduled incidents.

Sends requests to a loopback base URL at about ``rps`` requests per second. Every
``cycle_s`` seconds it plays a schedule: normal traffic, then a latency incident on
``/items/{item_id}`` (p95 above one second), normal again, then an error burst, so alerts
and anomalies show up within the first minute. Stops by itself at ``stop`` or ``duration_s``.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

import httpx

from otel_monitoring.demo.shop import Incidents

__all__ = ["Phase", "TrafficGenerator", "schedule_phase"]


@dataclass(frozen=True, slots=True)
class Phase:
    """What the shop does during a part of the cycle."""

    name: str
    extra_latency_s: float
    error_ratio: float


_CYCLE: tuple[tuple[float, Phase], ...] = (
    (0.0, Phase("normal", 0.0, 0.0)),
    (20.0, Phase("latency incident", 1.2, 0.0)),
    (35.0, Phase("normal", 0.0, 0.0)),
    (45.0, Phase("error burst", 0.0, 0.8)),
    (55.0, Phase("normal", 0.0, 0.0)),
)


def schedule_phase(elapsed_s: float, cycle_s: float = 90.0) -> Phase:
    """The phase at ``elapsed_s`` seconds into the demo."""
    position = elapsed_s % cycle_s
    current = _CYCLE[0][1]
    for start, phase in _CYCLE:
        if position >= start:
            current = phase
    return current


class TrafficGenerator:
    """Background thread sending demo traffic; see the module docstring."""

    def __init__(
        self, base_url: str, *, rps: float = 20.0, duration_s: float | None = None, seed: int = 1
    ) -> None:
        self.base_url = base_url
        self.rps = rps
        self.duration_s = duration_s
        self.random = random.Random(seed)
        self.stop = threading.Event()
        self.sent = 0
        self.phase = schedule_phase(0.0)
        self.thread = threading.Thread(target=self._run, name="demo-traffic", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _request(self, client: httpx.Client) -> None:
        r = self.random.random()
        if r < 0.45:
            client.get(f"/items/{self.random.randint(1, 55)}")
        elif r < 0.60:
            client.get(f"/products/{self.random.randint(1, 12)}")
        elif r < 0.70:
            client.get("/items", params={"limit": self.random.choice((5, 10, 20))})
        elif r < 0.78:
            client.post("/orders", json={"item_id": self.random.randint(1, 50), "quantity": 2})
        elif r < 0.83:
            client.get(f"/categories/{self.random.randint(1, 5)}/items")
        elif r < 0.86:
            client.get(f"/does-not-exist/{self.random.randint(1, 1000)}")
        elif r < 0.87:
            httpx.get(self.base_url + "/boom", timeout=5.0)  # closes its connection
        else:
            client.get("/items/1")

    def _run(self) -> None:
        started = time.monotonic()
        interval = 1.0 / self.rps
        with httpx.Client(base_url=self.base_url, timeout=10.0) as client:
            while not self.stop.is_set():
                elapsed = time.monotonic() - started
                if self.duration_s is not None and elapsed >= self.duration_s:
                    break
                self.phase = schedule_phase(elapsed)
                Incidents.extra_latency_s = self.phase.extra_latency_s
                Incidents.error_ratio = self.phase.error_ratio
                try:
                    self._request(client)
                    self.sent += 1
                except httpx.HTTPError:
                    pass  # the server is starting or stopping
                self.stop.wait(interval)
        Incidents.extra_latency_s = 0.0
        Incidents.error_ratio = 0.0
