"""WebSocket sessions beside HTTP routes, in code mode (lean and with spans) and zero-code
mode, under a real uvicorn: the sessions work as without monitoring (echo, close codes, a
refused handshake, a crashing handler) and stay out of the HTTP statistics: a session held
open for seconds is not a slow request, a refused handshake is not a server error, a
crashing handler is not an HTTP error sample, a session's queries (one per message) are not
an N+1. The HTTP routes' figures and the DB counts stay exact."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from app_modes import APP_MODES, api_until
from ws_client import HandshakeRefusedError, WsClient

APP = "tests.integration.websocket_app:app"
HOLD_S = 1.5  # how long the echo session stays open
MESSAGES = 6  # echoed in that session, one query each (an N+1 at 5 within one request)
#: route -> (requests, errors) of the HTTP traffic (the readiness probe included)
EXPECTED = {"/ready": (1, 0), "/items": (5, 0), "/boom": (2, 2)}


@pytest.fixture(params=APP_MODES)
def served(request: pytest.FixtureRequest, serve_app: Callable[..., Any]) -> Any:
    """The WebSocket app under uvicorn, in each of the three modes."""
    return serve_app(APP, request.param, {}, "/ready")


def _websocket_traffic(port: int) -> None:
    """Every kind of session, each checked as the app answers it without monitoring."""
    session = WsClient("127.0.0.1", port, "/ws")
    deadline = time.monotonic() + HOLD_S
    for n in range(MESSAGES):
        session.send_text(f"m{n}")
        assert session.receive_text() == f"echo:m{n}"
        time.sleep(max(0.0, deadline - time.monotonic()) / (MESSAGES - n))
    assert session.close() == 1000
    policy = WsClient("127.0.0.1", port, "/ws")
    policy.send_text("forbidden")
    assert policy.closed_with() == 1008
    with pytest.raises(HandshakeRefusedError) as refused:
        WsClient("127.0.0.1", port, "/ws/private")
    assert refused.value.status == 403
    crash = WsClient("127.0.0.1", port, "/ws/crash")
    crash.send_text("x")
    # 1011 (websockets) or a dropped connection, 1006 (wsproto), as uvicorn does bare
    assert crash.closed_with() in (1011, 1006)


def test_websocket_sessions_stay_out_of_http_statistics(served: Any) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as client:
        for _ in range(5):
            assert client.get("/items").status_code == 200
        for _ in range(2):  # uvicorn closes a connection whose app raised: a new one each
            assert client.get("/boom", headers={"Connection": "close"}).status_code == 500
    _websocket_traffic(served.port)
    with httpx.Client(base_url=served.url, timeout=10) as client:
        assert client.get("/items").json() == [1, 2, 3]  # the server still serves HTTP
    expected = {**EXPECTED, "/items": (6, 0)}
    total = sum(requests for requests, _ in expected.values())

    health = api_until(served.api, "/monitoring/health", lambda h: h["total_requests"] >= total)
    assert (health["total_requests"], health["total_errors"]) == (total, 2), health
    assert health["self_telemetry"]["internal_errors"] == 0, health
    rows = api_until(served.api, "/monitoring/endpoints", lambda r: True, {"window": "5m"})
    counted = {r["route"]: (r["requests"], r["errors"]) for r in rows}
    assert counted == expected, rows
    assert all(r["latency"]["max_ms"] < HOLD_S * 1000 / 2 for r in rows), rows
    traces = api_until(served.api, "/monitoring/slow-traces", lambda t: True, {"window": "5m"})
    slowest = [(t["route"], t["method"], round(t["duration_ms"])) for t in traces]
    assert {t["route"] for t in traces} <= set(expected), slowest
    assert all(t["duration_ms"] < HOLD_S * 1000 / 2 for t in traces), slowest
    errors = api_until(served.api, "/monitoring/errors", lambda e: True)
    samples = [(e["route"], e["status_code"], e["exception_type"]) for e in errors]
    assert samples == [("/boom", 500, "RuntimeError")] * 2, samples  # named alike in each mode
    db = api_until(served.api, "/monitoring/db", lambda r: True, {"window": "5m"})
    assert {r["summary"]: r["count"] for r in db}["INSERT messages"] == MESSAGES, db
    patterns = api_until(served.api, "/monitoring/db/n-plus-one", lambda p: True)
    assert patterns == [], patterns
    log = served.output()
    assert "otel-monitoring: error" not in log, log
    # the app's own exceptions only: two /boom requests and the crashing session
    assert log.count("Traceback") == 3, log
    assert log.count("RuntimeError: http boom") == 2, log
    assert log.count("RuntimeError: ws crash") == 1, log
