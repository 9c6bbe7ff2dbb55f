"""Code mode joins the app's own SDK MeterProvider (``add_metric_reader``) under uvicorn."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

APP = "tests.integration.own_meter_app:app"


def _app_orders(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/monitoring/metrics", params={"window": "5m"})
    assert response.status_code == 200, response.text
    rows = response.json()
    return [row for row in rows if row["name"] == "app.orders"]


def test_app_metrics_reach_the_statistics_and_the_apps_reader(
    start_server: Callable[..., Any], uvicorn_cmd: Callable[..., list[str]], port: int
) -> None:
    env = {"OTEL_MONITORING_INTERVAL": "1s", "OTEL_SERVICE_NAME": "own-meter"}
    server = start_server(uvicorn_cmd(APP, port), env, port, ready_path="/app-reader")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(3):
            assert client.post("/orders").status_code == 201
        deadline = time.monotonic() + 25  # polled twice a second: under the 60/min limit
        while not (found := _app_orders(client)) or found[0]["value"] < 3:
            assert time.monotonic() < deadline, f"app.orders not in /monitoring/metrics: {found}"
            time.sleep(0.5)
        assert [(r["unit"], r["attributes"], r["value"]) for r in found] == [
            ("{order}", [["order.kind", "book"]], 3.0)
        ], found
        # The app's own reader still receives its counter (and our instruments, on the
        # same provider now).
        collected = client.get("/app-reader").json()
        assert collected["app.orders"] == 3.0
        assert "http.server.request.duration" in collected
