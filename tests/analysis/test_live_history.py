"""A day of 10-s points kept by the live charts (``OTEL_MONITORING_FINE_HISTORY``) and the
``resolution=finest`` analyses on them, in process on a fake clock."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import analyzers
from otel_monitoring import Monitor, Settings
from otel_monitoring.analysis.bridge import detect_history
from otel_monitoring.api.router import install_error_handlers, make_router
from otel_monitoring.testing import FakeClock, offline_monitor

ROUTE = "/items/{item_id}"
ADMIN = {"Authorization": "Bearer admin-secret-123"}
STEPS = 8640  # a day of 10-s collections
INCIDENT = range(5000, 5006)  # one minute of GET latency x6, 10 h before the end


def day_of_traffic(**settings: float) -> tuple[Monitor, FakeClock]:
    clock = FakeClock()
    monitor = offline_monitor(
        Settings(interval_s=3600.0, api_keys=(("admin-secret-123", "admin"),), **settings),
        clock=clock,
    )
    rng = np.random.default_rng(3)
    for step in range(STEPS):
        slow = 6.0 if step in INCIDENT else 1.0
        for ms in rng.lognormal(math.log(20.0), 0.1, 3):
            monitor.record_request("GET", ROUTE, 200, float(ms) * slow)
        monitor.record_request("POST", ROUTE, 201, 30.0)
        clock.advance(10.0)
        monitor.flush()
    return monitor, clock


@pytest.fixture(scope="module")
def day() -> Iterator[tuple[Monitor, FakeClock]]:
    monitor, clock = day_of_traffic(fine_history_s=86400.0)
    yield monitor, clock
    monitor.shutdown()


def test_a_day_of_finest_points_is_kept_and_scored(day: tuple[Monitor, FakeClock]) -> None:
    monitor, clock = day
    history = monitor.finest("latency_p95", ROUTE, "GET", "24h")
    assert history.step_s == 10.0
    assert len(history.values) >= STEPS - 2
    assert history.times_s[-1] - history.times_s[0] >= 86400.0 - 30.0
    # the store itself keeps 10-s buckets for an hour only: its 24-h chart is per minute
    assert monitor.chart("latency_p95", ROUTE, "GET", "24h").step_s == 60.0
    # the incident, 10 h back, is found at 10-s resolution, within its minute (the count
    # test marks it again as its evidence grows), and nothing near it is marked
    start = clock.now_s() - (STEPS - INCIDENT.start) * 10.0
    _, marks = detect_history(history, "medium")
    inside = [m for m in marks if start - 10.0 <= m.t <= start + 60.0]
    assert inside and inside[0].value > 80.0
    near = [m for m in marks if abs(m.t - start) <= 3600.0]
    assert near == inside
    # the last hour agrees with the store's 10-s chart, bucket by bucket
    chart = monitor.chart("latency_p95", ROUTE, "GET", "1h")
    stored = {p.t: p.value for p in chart.points if p.value is not None}
    held = dict(zip(history.times_s.tolist(), history.values.tolist(), strict=True))
    common = sorted(set(stored) & set(held))
    assert len(common) >= 350
    assert all(held[t] == stored[t] for t in common)


def test_finest_trend_and_detect_through_the_api(day: tuple[Monitor, FakeClock]) -> None:
    monitor, clock = day
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(make_router(monitor), prefix="/monitoring")
    client = TestClient(app)
    body = {"route": ROUTE, "method": "GET", "window": "24h", "resolution": "finest"}
    found = client.post("/monitoring/anomalies/detect", json=body, headers=ADMIN)
    assert found.status_code == 200, found.text
    out = found.json()
    assert out["step_s"] == 10.0 and out["points"] >= STEPS - 2 and out["available"]
    start = clock.now_s() - (STEPS - INCIDENT.start) * 10.0
    assert any(start - 10.0 <= a["t"] <= start + 60.0 for a in out["anomalies"])
    chart = client.post(
        "/monitoring/anomalies/detect", json={**body, "resolution": "chart"}, headers=ADMIN
    ).json()
    assert chart["step_s"] == 60.0 and chart["points"] <= 1440

    trend = client.get(
        "/monitoring/trends/throughput",
        params={"window": "24h", "resolution": "finest"},
        headers=ADMIN,
    ).json()
    assert trend["available"] and trend["step_s"] == 10.0 and trend["points"] >= STEPS - 2
    assert trend["direction"] == "none"  # 4 requests every 10 s all day

    # the finest points are kept for the watched statistics only
    other = client.get(
        "/monitoring/trends/latency_p50",
        params={"window": "1h", "resolution": "finest"},
        headers=ADMIN,
    ).json()
    assert not other["available"] and "chart resolution" in other["reason"]
    several = client.post(
        "/monitoring/anomalies/detect", json={**body, "method": None}, headers=ADMIN
    ).json()
    assert not several["available"] and "GET, POST" in several["reason"]


def test_finest_errors_say_what_to_change() -> None:
    clock = FakeClock()
    monitor = offline_monitor(Settings(interval_s=3600.0), clock=clock)
    try:
        for _ in range(200):
            monitor.record_request("GET", ROUTE, 200, 20.0)
            clock.advance(10.0)
            monitor.flush()
        assert monitor.live_scores.fine_history_s == 3600.0  # default: the finest tier
        assert len(monitor.finest("latency_p95", ROUTE, window="1h").values) >= 198
        with pytest.raises(ValueError, match="OTEL_MONITORING_FINE_HISTORY"):
            monitor.finest("latency_p95", ROUTE, "GET", "24h")
        with pytest.raises(ValueError, match="latency_p95, error_rate, throughput"):
            monitor.finest("latency_p99", ROUTE, "GET", "1h")
        assert len(monitor.finest("error_rate", "/unknown", "GET", "1h").values) == 0
        trend = monitor.calculate_trend("latency_p95", ROUTE, "GET", "1h", resolution="finest")
        assert isinstance(trend, analyzers.TrendResult)
    finally:
        monitor.shutdown()


@pytest.mark.parametrize(
    ("history", "resolution", "message"),
    [("25h", "10s", "at most 24h"), ("24h", "1s", "at most 8640s"), ("-1h", "10s", "")],
)
def test_fine_history_setting_is_checked(history: str, resolution: str, message: str) -> None:
    from otel_monitoring.errors import ConfigError

    env = {"OTEL_MONITORING_FINE_HISTORY": history, "OTEL_MONITORING_RESOLUTION": resolution}
    with pytest.raises(ConfigError, match="OTEL_MONITORING_FINE_HISTORY"):
        Settings.from_env(env=env)
    if message:
        with pytest.raises(ConfigError, match=message):
            Settings.from_env(env=env)
