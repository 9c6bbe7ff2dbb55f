"""The traffic the ``OTEL_*`` variable tests send to ``otel_env_app``, and the exact figures
the monitoring API must then show, whatever the variables (``test_otel_env.py``).

:func:`send` sends :data:`TRAFFIC`; :func:`figures` waits (bounded) until the API counts
every request, then returns what it shows, in one comparable shape; :func:`expected` is
that shape for a correct monitor. Latencies are milliseconds, as the API shows them.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

__all__ = ["DB_MS", "REQUESTS", "SLOW_MS", "TRAFFIC", "expected", "figures", "send"]

DB_MS = 30.0  # otel_env_app.DB_MS
SLOW_MS = 80.0  # otel_env_app.SLOW_MS
#: (path, requests, status)
TRAFFIC = (
    ("/items/1", 3, 200),
    ("/items/99", 1, 404),
    ("/slow", 2, 200),
    ("/boom", 2, 500),
    ("/call", 2, 200),
)
REQUESTS = sum(n for _, n, _ in TRAFFIC)
#: route -> (requests, errors, client errors)
ROUTES = {
    "/items/{item_id}": (4, 0, 1),
    "/slow": (2, 0, 0),
    "/boom": (2, 2, 0),
    "/call": (2, 0, 0),
}


def send(url: str) -> None:
    """Send :data:`TRAFFIC` to the app at ``url`` (and a probe, never counted), a connection
    each (uvicorn may reset a kept-alive one after an app's exception)."""
    with httpx.Client(base_url=url, timeout=10, headers={"Connection": "close"}) as client:
        for path, times, status in TRAFFIC:
            for _ in range(times):
                assert client.get(path).status_code == status, path
        assert client.get("/healthz").status_code == 200


def figures(api: str, timeout_s: float = 15.0) -> dict[str, Any]:
    """What the monitoring API at ``api`` shows once it counts :data:`REQUESTS` requests
    (or, if it never does, after ``timeout_s``, polled twice a second):
    per route (requests, errors, client errors), total requests, the ``SELECT items``
    statement's count, the outbound calls per host, the error samples' (route, method,
    status, type), the slow traces' (route, method, status) and the minimum latencies of
    ``/slow`` (the route's statistics and its slowest trace) and of the DB statement."""
    params = {"window": "5m"}
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=api, timeout=10) as client:
        while True:
            rows = client.get("/monitoring/endpoints", params=params).json()
            if sum(r["requests"] for r in rows) >= REQUESTS or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        health = client.get("/monitoring/health").json()
        db = client.get("/monitoring/db", params=params).json()
        external = client.get("/monitoring/external", params=params).json()
        errors = client.get("/monitoring/errors").json()
        slow = client.get("/monitoring/slow-traces", params={"window": "5m", "limit": "50"})
    select = [d for d in db if d["summary"] == "SELECT items"]
    slow_row = [r for r in rows if r["route"] == "/slow"]
    return {
        "routes": {
            r["route"]: (r["requests"], r["errors"], r["client_errors"])
            for r in rows
            if r["method"] == "GET"
        },
        "methods": sorted({r["method"] for r in rows}),
        "total": health["total_requests"],
        "db_count": select[0]["count"] if select else 0,
        "external": {e["host"]: e["count"] for e in external},
        "errors": sorted(
            {(e["route"], e["method"], e["status_code"], e["exception_type"]) for e in errors}
        ),
        "slow_traces": sorted({(t["route"], t["method"], t["status_code"]) for t in slow.json()}),
        "slow_ms_ok": bool(slow_row) and SLOW_MS <= slow_row[0]["latency"]["min_ms"] < 1000,
        "db_ms_ok": bool(select) and DB_MS <= select[0]["avg_ms"] < 1000,
    }


def expected(*, external: bool = True) -> dict[str, Any]:
    """:func:`figures` of a correct monitor (``external``: the outbound calls counted)."""
    return {
        "routes": ROUTES,
        "methods": ["GET"],
        "total": REQUESTS,
        "db_count": 4,
        "external": {"127.0.0.1": 2} if external else {},
        "errors": [("/boom", "GET", 500, "RuntimeError")],
        "slow_traces": sorted(
            [
                ("/items/{item_id}", "GET", 200),
                ("/items/{item_id}", "GET", 404),
                ("/slow", "GET", 200),
                ("/boom", "GET", 500),
                ("/call", "GET", 200),
            ]
        ),
        "slow_ms_ok": True,
        "db_ms_ok": True,
    }
