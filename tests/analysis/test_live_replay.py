"""A restart on a persistent store: the live charts learn again from the stored buckets.

Two monitors in turn share one SQLite file on a fake clock (a deploy). The second one's first
collection replays the last 7 hours the store holds into its charts' detectors, so its 1-min p95
chart is scored by its count test at once (which needs 6 hours of the route) and a 3-minute
five-fold incident minutes after the restart pages; with nothing replayed the chart would
have had neither its count test nor its point detector (150 points) for hours.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import analyzers
from otel_monitoring import Monitor, Settings
from otel_monitoring.stats.timeseries import TimeseriesMetric
from otel_monitoring.testing import FakeClock, offline_monitor

ROUTE = "/search"
MEDIUM = analyzers.Sensitivity.MEDIUM.value
P95 = TimeseriesMetric.LATENCY_P95


def run(
    monitor: Monitor, clock: FakeClock, minutes: int, rng: np.random.Generator, x: float
) -> None:
    """``minutes`` of 20 requests a minute, log-normal latency (median 25 ms x ``x``), one
    collection a minute."""
    for _ in range(minutes):
        for ms in x * 25.0 * np.exp(0.4 * rng.standard_normal(20)):
            monitor.record_request("GET", ROUTE, 200, float(ms))
        clock.advance(60.0)
        monitor.flush()


def test_a_restart_learns_again_from_the_stored_day(tmp_path: Path) -> None:
    clock = FakeClock()
    rng = np.random.default_rng(5)
    # collections a minute apart: a shared store settles buckets a collection after they end
    settings = Settings(interval_s=60.0, store_url=f"sqlite:///{tmp_path / 'm.db'}")
    before = offline_monitor(settings, clock=clock)
    run(before, clock, 7 * 60, rng, 1.0)  # 7 hours
    first = before.live_scores.history(P95, ROUTE, "GET", 60.0)
    before.shutdown()
    assert first is not None
    restarted_s = clock.now_s()

    after = offline_monitor(settings, clock=clock)
    try:
        run(after, clock, 10, rng, 1.0)
        live = after.live_scores
        chart = live.history(P95, ROUTE, "GET", 60.0)
        assert chart is not None
        # the stored 7 hours are in the chart, scored as the first process scored them
        assert chart.times_s[0] < restarted_s - 6.5 * 3600 and chart.points_seen >= 400
        same = np.isin(chart.times_s, first.times_s)
        assert same.sum() == len(first.times_s) >= 400
        assert np.array_equal(chart.scores[same], first.scores)
        incident_s = clock.now_s()
        run(after, clock, 3, rng, 5.0)
        run(after, clock, 3, rng, 1.0)
        chart = live.history(P95, ROUTE, "GET", 60.0, start_s=incident_s)
        assert chart is not None
        pages = chart.times_s[chart.scores >= MEDIUM]
        assert len(pages) and pages[0] < incident_s + 180, (chart.times_s, chart.scores)
    finally:
        after.shutdown()


MONDAY = 1767571200.0  # 2026-01-05T00:00:00Z
DAY = 86400.0
THROUGHPUT = TimeseriesMetric.THROUGHPUT


def steady(monitors: list[Monitor], clock: FakeClock, until_s: float, every_s: float) -> None:
    """Poisson requests up to ``until_s``: 60 a minute on weekdays, 18 at weekends, into each
    of ``monitors``, collected every ``every_s`` seconds (their interval)."""
    rng = np.random.default_rng(int(until_s) % 1000)
    while clock.now_s() < until_s:
        weekend = (clock.now_s() - MONDAY) // DAY % 7 >= 5
        for _ in range(rng.poisson(18.0 if weekend else 60.0)):
            for monitor in monitors:
                monitor.record_request("GET", ROUTE, 200, 20.0)
        clock.advance(60.0)
        if clock.now_s() % every_s == 0.0:
            for monitor in monitors:
                monitor.flush()


def test_a_restart_keeps_the_request_rate_profile_from_the_stored_weeks(tmp_path: Path) -> None:
    # a store that keeps 10 days has their hourly buckets: restarted on a Friday at 22:00 after
    # a week, the 1-min request-rate chart learns its weekly profile from them, and the
    # Saturday 00:00 step to weekend traffic is expected. A process started at the same time
    # on an empty store (nothing to learn from) pages at that step, as in a first week.
    friday = MONDAY + 4 * DAY
    clock = FakeClock(friday)
    url = f"sqlite:///{tmp_path / 'm.db'}"
    # the week collected every 10 minutes (its hours are what counts), its last 8 hours
    # every minute (the 1-min buckets a restart replays)
    week = offline_monitor(
        Settings(interval_s=600.0, retention_s=10 * DAY, store_url=url), clock=clock
    )
    restart_s = friday + 7 * DAY + 22 * 3600.0
    steady([week], clock, restart_s - 8 * 3600.0, 600.0)
    week.shutdown()
    minutes = Settings(interval_s=60.0, retention_s=10 * DAY, store_url=url)
    last_hours = offline_monitor(minutes, clock=clock)
    steady([last_hours], clock, restart_s, 60.0)
    last_hours.shutdown()
    after = offline_monitor(minutes, clock=clock)
    fresh = offline_monitor(Settings(interval_s=60.0, retention_s=10 * DAY), clock=clock)
    try:
        steady([after, fresh], clock, restart_s + 4 * 3600.0, 60.0)
        saturday = restart_s + 2 * 3600.0
        for monitor, pages in ((after, False), (fresh, True)):
            chart = monitor.live_scores.history(THROUGHPUT, ROUTE, "GET", 60.0, start_s=saturday)
            assert chart is not None and len(chart.times_s) >= 100
            assert bool(np.any(chart.scores >= MEDIUM)) is pages, chart.scores.max()
    finally:
        after.shutdown()
        fresh.shutdown()
