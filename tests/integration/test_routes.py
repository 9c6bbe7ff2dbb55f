"""One request, one count, under the route that served it, in code and zero-code mode.

A real uvicorn process serves an app with routes that look like probes (``/healthcare/items``,
``/reports/metrics``, ``/users/pingu``), the probes themselves, a mounted FastAPI app, a
mount with a path parameter, a ``StaticFiles`` mount, one router included under two prefixes
and one under its own, FastAPI's documentation routes and paths that match nothing; and the
same behind a proxy that strips a prefix (``uvicorn --root-path /api``), where every template
starts with the root path (the semantic conventions' application root) and the probes and
the monitoring API are still not the app's traffic. The counts per route must be exact.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

HERE = Path(__file__).resolve().parent

#: path -> (requests sent, status expected)
TRAFFIC: dict[str, tuple[int, int]] = {
    "/healthcare/items": (2, 200),
    "/reports/metrics": (3, 200),
    "/users/pingu": (4, 200),
    "/v1/accounts/7": (2, 200),
    "/v3/accounts/7": (3, 200),
    "/shop/carts/9": (1, 200),
    "/health": (2, 200),
    "/healthz": (2, 200),
    "/metrics": (1, 200),
    "/v2/pong": (7, 200),
    "/tenants/a/orders": (1, 200),
    "/tenants/b/orders": (2, 200),
    "/static/hello.txt": (2, 200),
    "/static/missing.txt": (1, 404),
    "/docs": (1, 200),
    "/redoc": (1, 200),
    "/openapi.json": (1, 200),
    "/docs/oauth2-redirect": (1, 200),
    "/nope": (3, 404),
    "/v2/nothing": (1, 404),
    "/health/deep": (1, 404),
    "/tenants/a/nothing": (1, 404),
}

#: route -> (requests, client errors) expected in /monitoring/endpoints
EXPECTED: dict[str, tuple[int, int]] = {
    "/healthcare/items": (2, 0),
    "/reports/metrics": (3, 0),
    "/users/{name}": (4, 0),
    "/v1/accounts/{account_id}": (2, 0),
    "/v3/accounts/{account_id}": (3, 0),
    "/shop/carts/{cart_id}": (1, 0),
    "/v2/pong": (7, 0),
    "/tenants/{tenant_id}/orders": (3, 0),
    "/static/{path}": (3, 1),
    "/docs": (1, 0),
    "/redoc": (1, 0),
    "/openapi.json": (1, 0),
    "/docs/oauth2-redirect": (1, 0),
    "<unmatched>": (6, 6),  # /nope x3, /v2/nothing, /health/deep, /tenants/a/nothing
}


def _send(base: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        for path, (count, status) in TRAFFIC.items():
            for _ in range(count):
                response = client.get(path)
                assert response.status_code == status, (path, response.status_code)


def _counted(api: str) -> tuple[int, dict[str, tuple[int, int]]]:
    """Total requests, and requests and client errors per route, once the server counted
    every request sent (bounded poll: the last request's bookkeeping may finish after its
    response reached the client) or 30 s passed."""
    total = sum(requests for requests, _ in EXPECTED.values())
    deadline = time.monotonic() + 30
    with httpx.Client(base_url=api, timeout=10) as client:
        while True:
            counted = client.get("/monitoring/health").json()["total_requests"]
            if counted >= total or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        endpoints = client.get("/monitoring/endpoints", params={"window": "5m"}).json()
    return counted, {e["route"]: (e["requests"], e["client_errors"]) for e in endpoints}


def _wait_listening(url: str, server: Any) -> None:
    """Bounded readiness wait for the side port, whose thread may lag the app."""
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url, timeout=5)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.1)


@pytest.mark.parametrize("root_path", ["", "/api"])
@pytest.mark.parametrize("mode", ["code", "zero-code"])
def test_routes_are_named_and_counted_once(
    mode: str,
    root_path: str,
    start_server: Callable[..., Any],
    port: int,
    uvicorn_cmd: Callable[..., list[str]],
    another_port: Callable[[], int],
    tmp_path: Path,
) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "hello.txt").write_text("hello\n")
    env = {
        "ROUTES_APP_STATIC": str(static),
        "OTEL_MONITORING_INTERVAL": "1s",
        "OTEL_SERVICE_NAME": "routes",
    }
    prefix: tuple[str, ...] = ()
    api = f"http://127.0.0.1:{port}"
    if mode == "code":
        env["ROUTES_APP_INSTRUMENT"] = "1"
    else:
        api_port = another_port()
        env["OTEL_MONITORING_PORT"] = str(api_port)
        api = f"http://127.0.0.1:{api_port}"
        prefix = (str(Path(sys.executable).parent / "opentelemetry-instrument"),)
    argv = [*uvicorn_cmd("routes_app:app", port, *prefix), "--app-dir", str(HERE)]
    if root_path:
        argv += ["--root-path", root_path]
    server = start_server(argv, env, port)
    if mode == "zero-code":
        _wait_listening(api + "/monitoring/health", server)
    _send(server.url)
    expected = {
        route if route == "<unmatched>" else root_path + route: counts
        for route, counts in EXPECTED.items()
    }
    total = sum(requests for requests, _ in EXPECTED.values())
    assert _counted(api) == (total, expected)
