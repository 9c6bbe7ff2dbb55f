"""The live throughput chart is scored by the rate count test (requests against the route's
usual rate), fed every completed bucket - the empty ones too, so that a route that goes
silent pages while it is silent. In process on a fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import analyzers
from otel_monitoring import Monitor, Settings
from otel_monitoring.testing import FakeClock, offline_monitor

ROUTE = "/orders/{order_id}"
STEPS = 6 * 60 * 8  # 8 h of 10-s collections
SILENCE = range(STEPS - 6 * 60, STEPS - 6 * 60 + 6 * 10)  # 10 min without a request
MEDIUM = analyzers.Sensitivity.MEDIUM.value

Run = tuple[Monitor, FakeClock, list[int]]


@pytest.fixture(scope="module")
def eight_hours() -> Iterator[Run]:
    """8 h of a route with 30 requests a minute, silent for 10 minutes an hour before the
    end; each bucket's requests."""
    clock = FakeClock()
    monitor = offline_monitor(Settings(interval_s=3600.0, fine_history_s=86400.0), clock=clock)
    rng = np.random.default_rng(22)
    buckets: list[int] = []
    for step in range(STEPS):
        n = 0 if step in SILENCE else int(rng.poisson(30 / 6))
        for _ in range(n):
            monitor.record_request("GET", ROUTE, 200, 25.0)
        buckets.append(n)
        clock.advance(10.0)
        monitor.flush()
    yield monitor, clock, buckets
    monitor.shutdown()


def test_throughput_chart_scores_are_the_rate_count_test(eight_hours: Run) -> None:
    monitor, clock, buckets = eight_hours
    history = monitor.finest("throughput", ROUTE, "GET", "24h")
    first = next(i for i, n in enumerate(buckets) if n)
    # every bucket from the first request on has a point, the empty ones included
    assert len(history.values) >= STEPS - first - 2
    counts = np.rint(history.values * 10.0 / 60.0).astype(int)
    assert counts.tolist() == buckets[first : first + len(counts)]
    test = analyzers.RateCountDetector()
    own, ready = [], []
    for t, n in zip(history.times_s.tolist(), counts.tolist(), strict=True):
        own.append(test.update(t, n, 10.0))
        ready.append(test.ready)
    # once the test has learnt the route (an hour) the chart's scores are its own, bit for
    # bit; before, none
    learnt = np.array(ready)
    assert 0.86 < learnt.mean() < 0.89
    assert not history.scores[~learnt].any()
    assert np.array_equal(history.scores[learnt], np.array(own, dtype=np.float32)[learnt])
    start = clock.now_s() - (STEPS - SILENCE.start) * 10.0
    inside = (history.times_s >= start) & (history.times_s < start + len(SILENCE) * 10.0)
    alarms = history.times_s[inside & (history.scores >= MEDIUM)]
    assert len(alarms) and alarms[0] - start <= 60.0  # seen within the minute, while silent
    assert int(np.sum(history.scores[history.times_s < start] >= MEDIUM)) == 0
    # the service's chart is the same traffic: it pages too
    service = monitor.finest("throughput", None, None, "24h")
    assert service.scores[(service.times_s >= start) & (service.times_s < start + 600)].max() >= (
        MEDIUM
    )


@pytest.mark.parametrize("timezone", [None, "Europe/Paris"])
def test_the_live_charts_count_tests_follow_the_services_clock(timezone: str | None) -> None:
    """``OTEL_MONITORING_TIMEZONE`` reaches every live chart's count test (latency, errors,
    traffic): their daily cycles are placed by that zone's hours."""
    clock = FakeClock()
    monitor = offline_monitor(Settings(interval_s=3600.0, timezone=timezone), clock=clock)
    try:
        for _ in range(3):
            monitor.record_request("GET", ROUTE, 200, 25.0)
            clock.advance(10.0)
            monitor.flush()
        charts = monitor.live_scores._charts.values()
        tests = [chart.count_test for chart in charts if chart.count_test is not None]
        assert {type(test).__name__ for test in tests} == {
            "ExceedanceDetector",
            "ErrorCountDetector",
            "RateCountDetector",
        }
        assert {test.settings.timezone for test in tests} == {timezone}
    finally:
        monitor.shutdown()
