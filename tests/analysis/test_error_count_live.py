"""The live error-rate chart is scored by the error count test (failures against the route's
usual share), in process on a fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import analyzers
from otel_monitoring import Monitor, Settings
from otel_monitoring.testing import FakeClock, offline_monitor

ROUTE = "/orders/{order_id}"
STEPS = 6 * 60 * 12  # 12 h of 10-s collections
INCIDENT = range(
    STEPS - 6 * 60, STEPS - 6 * 60 + 6 * 10
)  # 10 min of 10 % errors, 1 h before the end
MEDIUM = analyzers.Sensitivity.MEDIUM.value

Run = tuple[Monitor, FakeClock, list[tuple[int, int]]]


@pytest.fixture(scope="module")
def half_day() -> Iterator[Run]:
    """12 h of a route with 20 requests a minute and 1 % failures, and each bucket's
    (requests, failures)."""
    clock = FakeClock()
    monitor = offline_monitor(Settings(interval_s=3600.0, fine_history_s=86400.0), clock=clock)
    rng = np.random.default_rng(21)
    buckets: list[tuple[int, int]] = []
    for step in range(STEPS):
        share = 0.10 if step in INCIDENT else 0.01
        n = int(rng.poisson(20 / 6))
        failed = int(rng.binomial(n, share))
        for i in range(n):
            monitor.record_request("GET", ROUTE, 500 if i < failed else 200, 25.0)
        buckets.append((n, failed))
        clock.advance(10.0)
        monitor.flush()
    yield monitor, clock, buckets
    monitor.shutdown()


def test_error_rate_chart_scores_are_the_error_count_test(half_day: Run) -> None:
    monitor, clock, buckets = half_day
    history = monitor.finest("error_rate", ROUTE, "GET", "24h")
    assert len(history.values) == history.points_seen > STEPS * 0.9
    first = round(history.times_s[0] / 10.0) - next(i for i, b in enumerate(buckets) if b[0])
    times = (first + np.arange(STEPS)) * 10.0
    test = analyzers.ErrorCountDetector()
    own, ready = {}, {}
    for t, (n, k) in zip(times.tolist(), buckets, strict=True):
        own[t] = test.update(t, n, k, 10.0)
        ready[t] = test.ready
    expected = np.array([own[t] for t in history.times_s.tolist()], dtype=np.float32)
    learnt = np.array([ready[t] for t in history.times_s.tolist()])
    assert 0.9 < learnt.mean() < 0.93  # the first hour of 12 learning: no score
    assert not history.scores[~learnt].any()
    # counts are exact: once the test has learnt the route, its scores bit for bit
    assert np.array_equal(history.scores[learnt], expected[learnt])
    start = clock.now_s() - (STEPS - INCIDENT.start) * 10.0
    end = start + len(INCIDENT) * 10.0
    inside = (history.times_s >= start) & (history.times_s <= end)
    assert history.scores[inside].max() >= MEDIUM
    quiet = history.times_s < start - 10.0
    assert int(np.sum(history.scores[quiet] >= MEDIUM)) == 0
    # the point detector on the ratio pages on buckets of one failure out of few requests
    ratio_alone = analyzers.score_series(history.times_s[quiet], history.values[quiet])
    assert int(np.sum(ratio_alone >= MEDIUM)) >= 1
