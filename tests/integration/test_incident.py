"""End to end: a latency incident in a running app is found through the API."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

SHOP = "otel_monitoring.demo.shop:app"
ADMIN = {"Authorization": "Bearer incident-admin-key"}


def _drive(client: httpx.Client, ms: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert client.get("/slow", params={"ms": ms}).status_code == 200


def test_latency_incident_is_detected_through_the_api(
    start_server: Callable[..., Any], port: int, shop_env: dict[str, str], uvicorn_cmd: Any
) -> None:
    env = {
        **shop_env,
        "SHOP_INSTRUMENT": "1",
        "OTEL_MONITORING_RESOLUTION": "200ms",
        "OTEL_MONITORING_INTERVAL": "200ms",
        "OTEL_MONITORING_API_KEY": "incident-admin-key:admin",
    }
    server = start_server(uvicorn_cmd(SHOP, port), env, port)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        _drive(client, ms=3, seconds=9.0)  # ~45 buckets of normal latency
        incident_started = time.time()
        # the incident: 3 s (15 buckets), long enough that a loaded machine still completes
        # several of its buckets before the normal latency returns
        _drive(client, ms=120, seconds=3.0)
        _drive(client, ms=3, seconds=1.0)

        found = client.post(
            "/monitoring/anomalies/detect",
            json={"metric": "latency_p95", "route": "/slow", "method": "GET", "window": "1m"},
            headers=ADMIN,
        )
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["available"] and body["points"] >= 30  # of ~60 buckets; fewer under load
        during = [
            a
            for a in body["anomalies"]
            if incident_started - 0.5 <= a["t"] <= incident_started + 3.5
        ]
        assert during, body  # an alarm opens within the incident
        first = during[0]
        assert first["value"] >= 100.0 and first["score"] >= body["threshold"]

        chart = client.get(
            "/monitoring/timeseries/latency_p95",
            params={"window": "1m", "route": "/slow", "method": "GET"},
            headers=ADMIN,
        ).json()
        assert chart["step_s"] == 0.2
        assert any(abs(mark["t"] - first["t"]) < 1e-6 for mark in chart["anomalies"])

        trend = client.get(
            "/monitoring/trends/latency_p95",
            params={"window": "1m", "route": "/slow"},
            headers=ADMIN,
        ).json()
        assert trend["available"] and trend["points"] >= 30

        audit = client.get("/monitoring/audit", headers=ADMIN).json()
        assert audit[0]["action"] == "detect_anomalies"
