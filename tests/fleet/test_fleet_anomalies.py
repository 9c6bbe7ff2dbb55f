"""Anomaly rules in fleet mode: detectors fed from Prometheus find an incident on the fleet.

Two shop instances under uvicorn, a real Prometheus scraping both every second; this test
process serves nothing itself, so only the fleet's numbers can show the incident.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from analyzers import DetectorSettings
from otel_monitoring.alerting.evaluate import Evaluator
from otel_monitoring.alerting.rules import AnomalyRule, Statistic
from otel_monitoring.config import Settings
from otel_monitoring.fleet import FleetStats, PrometheusClient
from otel_monitoring.fleet.scores import FleetScores
from otel_monitoring.self_telemetry import Guard
from otel_monitoring.stats.timeseries import TimeseriesMetric
from otel_monitoring.testing import offline_monitor


def _traffic(url: str, slow: threading.Event, stop: threading.Event) -> None:
    """One client calling ``/slow``: 1 ms per request, 300 ms while ``slow`` is set. Ends
    when ``stop`` is set, or after two minutes whatever happens."""
    deadline = time.monotonic() + 120.0
    with httpx.Client(base_url=url, timeout=10.0) as client:
        while not stop.is_set() and time.monotonic() < deadline:
            client.get("/slow", params={"ms": 300 if slow.is_set() else 1})
            time.sleep(0.05)


def test_an_anomaly_rule_in_fleet_mode_finds_a_latency_incident_of_the_fleet(
    fleet: tuple[list[str], str],
) -> None:
    (url_a, url_b), prom_url = fleet
    slow_on_b, stop = threading.Event(), threading.Event()
    clients = [
        threading.Thread(target=_traffic, args=(url_a, threading.Event(), stop)),
        threading.Thread(target=_traffic, args=(url_b, slow_on_b, stop)),
    ]
    for client in clients:
        client.start()
    local = offline_monitor(Settings(resolution_s=1.0))  # 1-s "finest" steps
    try:
        with PrometheusClient(prom_url) as prom:
            fleet_stats = FleetStats(prom, selector='job="shop"')
            scores = FleetScores(
                fleet_stats,
                min_step_s=1.0,
                settle_s=2.5,
                history_points=600,
                settings=DetectorSettings(warmup_points=10),
            )
            rule = AnomalyRule("fleet-latency", Statistic.LATENCY_P95, route="/slow")
            evaluate = Evaluator(local.stats, [rule], Guard(), scores, view=fleet_stats)
            time.sleep(25.0)  # a baseline of ~2 ms p95 on both instances
            evaluate()  # the detector catches up on the baseline in one range query
            incident_s = time.time()
            slow_on_b.set()  # instance B answers in 300 ms: the fleet's p95 with it

            def incident_flagged() -> bool:
                # the alert's value is the flagged point's p95 (ms): the incident's (~400 ms,
                # or less on the step it began in), ten times the baseline's at least
                return any(f.breach and f.value > 50.0 for f in evaluate())

            deadline = time.monotonic() + 60.0  # scrape, settle and evaluation, on a loaded host
            while not incident_flagged():
                if time.monotonic() >= deadline:
                    (seen,) = scores.histories(TimeseriesMetric.LATENCY_P95, "/slow", None, 1.0)
                    points = [
                        (round(float(t - incident_s), 1), round(float(v), 1), round(float(s), 2))
                        for t, v, s in zip(seen.times_s, seen.values, seen.scores, strict=True)
                    ]
                    pytest.fail(f"the fleet's incident was not flagged: {points}")
                time.sleep(1.0)
            (history,) = scores.histories(TimeseriesMetric.LATENCY_P95, "/slow", None, 1.0)
            flagged = history.scores >= 0.34
            assert (history.times_s[flagged] >= incident_s - 1.0).any()
            # this process served nothing: its own charts could not have shown it
            assert (
                local.live_scores.histories(TimeseriesMetric.LATENCY_P95, "/slow", None, 1.0) == []
            )
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=15)
        local.shutdown()


def test_fleet_scores_refuse_settings_prometheus_could_not_answer() -> None:
    with PrometheusClient("http://127.0.0.1:9") as prom:
        fleet_stats = FleetStats(prom)
        for bad in ({"min_step_s": 0.0}, {"settle_s": -1.0}, {"history_points": 20_000}):
            with pytest.raises(ValueError, match="history_points"):
                FleetScores(fleet_stats, **bad)  # type: ignore[arg-type]
