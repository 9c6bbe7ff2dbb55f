"""What a response is measured as, in code mode (lean and with spans) and in zero-code mode
(the contrib middleware), under a real uvicorn: its ``BackgroundTasks``, which run after it
is sent inside the same ASGI call, are not its latency; its size is its own."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

APP = "tests.integration.responses_app:app"
INSTRUMENT = str(Path(sys.executable).parent / "opentelemetry-instrument")
JOB_MS = 600.0  # responses_app.JOB_S
MODES = ["code", "code-spans", "zero-code"]


def _serve(
    mode: str,
    start_server: Callable[..., Any],
    uvicorn_cmd: Callable[..., list[str]],
    port: int,
    another_port: Callable[[], int],
) -> tuple[str, str, Any]:
    """Start the app in ``mode``: its URL, the monitoring API's URL, the server."""
    env = {
        "OTEL_MONITORING_INTERVAL": "1s",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_TRACES_EXPORTER": "none",
    }
    api = None
    if mode == "code-spans":  # a span per request (an exporter is configured)
        env["OTEL_TRACES_EXPORTER"] = "console"
    if mode == "zero-code":
        api_port = another_port()
        api = f"http://127.0.0.1:{api_port}"
        env.update(RESPONSES_ZERO_CODE="1", OTEL_MONITORING_PORT=str(api_port))
    cmd = uvicorn_cmd(APP, port, INSTRUMENT) if api else uvicorn_cmd(APP, port)
    server = start_server(cmd, env, port, ready_path="/jobs")
    return server.url, api or server.url, server


def _endpoints(api: str, route: str, requests: int) -> dict[str, Any]:
    """The route's row of ``/monitoring/endpoints`` once it counts ``requests`` (bounded)."""
    with httpx.Client(base_url=api, timeout=10) as client:
        deadline = time.monotonic() + 25  # polled twice a second: under the 50/min limit
        while True:
            try:
                rows = client.get("/monitoring/endpoints", params={"window": "5m"}).json()
            except httpx.TransportError:  # the side port's thread may lag the app
                rows = []
            found = [r for r in rows if r["route"] == route]
            if found and found[0]["requests"] == requests:
                return dict(found[0])
            assert time.monotonic() < deadline, rows
            time.sleep(0.5)


@pytest.mark.parametrize("mode", MODES)
def test_background_tasks_are_not_the_requests_latency(
    mode: str,
    start_server: Callable[..., Any],
    uvicorn_cmd: Callable[..., list[str]],
    port: int,
    another_port: Callable[[], int],
) -> None:
    url, api, server = _serve(mode, start_server, uvicorn_cmd, port, another_port)
    with httpx.Client(base_url=url, timeout=10) as app_client:
        for _ in range(3):
            assert app_client.post("/signup").status_code == 201
        deadline = time.monotonic() + 10
        while app_client.get("/jobs").json()["done"] < 3:  # the jobs ran, after the answers
            assert time.monotonic() < deadline
            time.sleep(0.1)
    latency = _endpoints(api, "/signup", 3)["latency"]
    # each answer took a few milliseconds; with its job counted it took 600 ms or more
    assert latency["max_ms"] < JOB_MS / 2, latency
    assert "Traceback" not in server.output(), server.output()


@pytest.mark.parametrize("mode", MODES)
def test_each_response_is_counted_at_its_own_size(
    mode: str,
    start_server: Callable[..., Any],
    uvicorn_cmd: Callable[..., list[str]],
    port: int,
    another_port: Callable[[], int],
) -> None:
    """A streamed response (no ``content-length``) after a sized one is not counted at the
    sized one's size (the contrib kept one value for every request)."""
    url, api, server = _serve(mode, start_server, uvicorn_cmd, port, another_port)
    with httpx.Client(base_url=url, timeout=10) as app_client:
        for _ in range(2):
            assert len(app_client.get("/report").content) == 10_000
            assert app_client.get("/events").content == b"abcde"
    report = _endpoints(api, "/report", 2)
    assert report["response_size_max_bytes"] == 10_000, report
    events = _endpoints(api, "/events", 2)
    # code mode counts the bytes streamed; the contrib only a content-length, and none came
    assert events["response_size_max_bytes"] in (5, None), events
    assert "Traceback" not in server.output(), server.output()
