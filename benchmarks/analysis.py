"""Analysis throughput: a day of 10-s points for 100 routes.

Fills a monitor (in process, a fake clock stepping 10 s) with ``--hours`` of traffic on
``--routes`` routes, collecting every step as the reader would, so the live anomaly scores
are kept current as the data arrives. Then it times, in one run:

* ``live``: the per-collection cost of keeping every chart's scores current;
* ``finest``: answering, for every route, the anomaly alarms and the trend of its last 24 h of
  10-s p95 points (what ``POST /anomalies/detect`` and ``GET /trends`` do with
  ``resolution=finest``; the monitor keeps a day of them, ``OTEL_MONITORING_FINE_HISTORY=24h``),
  and the memory those points take;
* ``request``: the same on the 24-h charts (1-min points, what ``/timeseries`` and ``/trends``
  do by default), from the store and the live scores;
* ``rescore``: for comparison, scoring the same charts afresh (what a request would cost
  without the live scores);
* ``raw``: the analyzers alone on 100 series of 8,640 points (24 h of 10-s points): batch
  anomaly scores and binned trends.

Usage::

    python benchmarks/analysis.py [--routes 100] [--hours 24]

Target (issue 4): the analysis of 24 h of 10-s points for 100 routes answers in under 1 s.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import statistics
import time

import numpy as np

import analyzers
from otel_monitoring import Monitor, Settings
from otel_monitoring.analysis.bridge import detect, trend
from otel_monitoring.analysis.live_scores import LiveScores
from otel_monitoring.stats.timeseries import Series, TimeseriesMetric, http_series
from otel_monitoring.testing import FakeClock, offline_monitor


def rss_mb() -> float:
    """Resident set size of this process (MB), from /proc (Linux)."""
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def fill(monitor: Monitor, clock: FakeClock, routes: int, hours: float) -> list[float]:
    """Record traffic step by step; returns the per-collection times (seconds)."""
    rng = np.random.default_rng(7)
    steps = int(hours * 360)
    per_collect = []
    for step in range(steps):
        for r in range(routes):
            base = 20.0 + 5.0 * math.sin(step / 360 * 2 * math.pi) + r % 7
            monitor.record_request(
                "GET", f"/r{r}/{{id}}", 200, float(rng.lognormal(math.log(base), 0.2))
            )
        clock.advance(10.0)
        started = time.perf_counter()
        monitor.flush()
        per_collect.append(time.perf_counter() - started)
    return per_collect


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", type=int, default=100)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()

    clock = FakeClock()
    monitor = offline_monitor(
        Settings(interval_s=3600.0, max_series=2000, fine_history_s=args.hours * 3600.0),
        clock=clock,
    )
    started = time.perf_counter()
    rss_before = rss_mb()
    per_collect = fill(monitor, clock, args.routes, args.hours)
    print(
        f"filled {args.routes} routes x {args.hours:g} h in {time.perf_counter() - started:.1f} s;"
        f" RSS grew by {rss_mb() - rss_before:.0f} MB (store + live charts)"
    )
    print(
        f"live: per collection (ingest + scores for {args.routes + 1} charts x 3 metrics): median"
        f" {statistics.median(per_collect) * 1000:.1f} ms"
    )

    now = clock.now_s()
    routes = [f"/r{r}/{{id}}" for r in range(args.routes)]
    live = monitor.live_scores
    charts, held = live.footprint()
    print(
        f"live history: {charts} charts, {held / 1e6:.1f} MB"
        f" ({live.fine_history_s / 3600:g} h of {live.fine_step_s:g}-s points per chart)"
    )
    # a restart on a persistent store: the new process's first collection feeds what the
    # store holds into fresh detectors (here the in-memory store stands for the file's day)
    replay = LiveScores(monitor.store, fine_history_s=live.fine_history_s)
    started = time.perf_counter()
    replay.update(now)
    print(
        f"replay at a restart: the stored buckets into fresh detectors for"
        f" {replay.footprint()[0]} charts: {time.perf_counter() - started:.2f} s (once, off the"
        " request path)"
    )
    window = "24h" if args.hours >= 24 else "1h"
    # a process's first trend imports scipy.stats (about 1-2 s here, once): timed apart, so
    # the figures below are what every later request costs
    started = time.perf_counter()
    analyzers.analyze_trend([0.0, 60.0, 120.0, 180.0], [1.0, 2.0, 3.0, 4.0])
    print(
        f"first trend in the process (imports scipy.stats): {time.perf_counter() - started:.3f} s"
    )
    started = time.perf_counter()
    marks = points = 0
    for route in routes:
        alarms = monitor.detect_latency_anomalies(route, "GET", window, resolution="finest")
        marks += len(alarms)
        history = monitor.finest(TimeseriesMetric.LATENCY_P95, route, "GET", window)
        points += len(history.values)
        analyzers.analyze_trend(history.times_s, history.values)
    finest_s = time.perf_counter() - started
    print(
        f"finest: {window} of 10-s p95 points, anomalies + trend, for {args.routes} routes"
        f" ({points:,} points, {marks} alarms): {finest_s:.3f} s (target < 1 s)"
    )

    started = time.perf_counter()
    marks = 0

    def day_of_p95(route: str) -> Series:
        # what the API does: closed buckets come from the live scores, the rest from the store
        return monitor.chart(TimeseriesMetric.LATENCY_P95, route, "GET", "24h")

    for route in routes:
        series = day_of_p95(route)
        marks += len(detect(series, live=monitor.live_scores)[1])
        trend(series)
    request_s = time.perf_counter() - started
    print(
        f"request: 24-h p95 chart (1-min points) anomaly marks + trend for {args.routes} routes:"
        f" {request_s:.3f} s ({marks} marks)"
    )

    started = time.perf_counter()
    for route in routes[:10]:
        series = http_series(
            monitor.store,
            TimeseriesMetric.LATENCY_P95,
            window_s=86400.0,
            now_s=now,
            route=route,
            method="GET",
        )
        detect(series)
    rescore_s = (time.perf_counter() - started) * len(routes) / 10
    print(
        f"rescore: the same charts read from the store and scored afresh: {rescore_s:.3f} s"
        " (estimated from 10 routes)"
    )

    rng = np.random.default_rng(1)
    ts = np.arange(8640) * 10.0
    series_values = [rng.lognormal(3.0, 0.2, 8640) for _ in range(args.routes)]
    started = time.perf_counter()
    for values in series_values[:10]:
        analyzers.score_series(ts, values)
    score_s = (time.perf_counter() - started) * args.routes / 10
    started = time.perf_counter()
    for values in series_values:
        analyzers.analyze_trend(ts, values)
    trend_s = time.perf_counter() - started
    points = args.routes * 8640
    print(
        f"raw: batch anomaly scores of {points:,} points: {score_s:.2f} s"
        f" ({points / score_s:,.0f} points/s, estimated from 10 series);"
        f" binned trends of {args.routes} series: {trend_s:.3f} s"
    )
    monitor.shutdown()


if __name__ == "__main__":
    main()
