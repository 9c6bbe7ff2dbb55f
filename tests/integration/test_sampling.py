"""Trace sampling as the standard OTel set-up configures it (``OTEL_TRACES_SAMPLER``), with a
trace exporter on, in code mode with spans and zero-code mode, under a real uvicorn: the
statistics are the requests sent, not the sampled ones (counts, errors, latency, DB timings),
N+1 patterns and error samples are found in unsampled requests too, and a trace id is only
offered when its trace was sampled (exported): an unsampled request's is empty."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_modes import api_until

APP = "tests.integration.async_db_app:app"
SAMPLERS = {
    "ratio-0.1": {
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    },
    "always-off": {"OTEL_TRACES_SAMPLER": "always_off"},
}
#: path -> (requests sent, status)
TRAFFIC = {"/orders/1": (12, 200), "/orders/99": (4, 404), "/orders": (5, 200), "/crash": (3, 500)}
ROUTES = {"/orders/1": "/orders/{order_id}", "/orders/99": "/orders/{order_id}"}
ROUTES |= {"/orders": "/orders", "/crash": "/crash"}
#: route -> (requests, errors, client errors)
EXPECTED = {"/orders/{order_id}": (16, 0, 4), "/orders": (5, 0, 0), "/crash": (3, 3, 0)}
LINES = "SELECT sku, qty FROM lines WHERE order_id = ?"


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("mode", ["code-spans", "zero-code"])
def test_sampled_traces_leave_the_statistics_exact(
    mode: str, sampler: str, serve_app: Callable[..., Any], tmp_path: Path
) -> None:
    env = {
        "ASYNC_DB_PATH": str(tmp_path / "orders.db"),
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        **SAMPLERS[sampler],
    }
    server = serve_app(APP, mode, env, "/openapi.json")
    slowest_ms: dict[str, float] = {}  # route -> the slowest answer the client saw
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for path, (count, status) in TRAFFIC.items():
            route = ROUTES[path]
            for _ in range(count):
                started = time.perf_counter()
                # uvicorn closes a connection whose app raised: a new one each
                response = client.get(path, headers={"Connection": "close"})
                elapsed_ms = (time.perf_counter() - started) * 1000
                assert response.status_code == status, (path, response.status_code)
                slowest_ms[route] = max(slowest_ms.get(route, 0.0), elapsed_ms)
    total = sum(count for count, _ in TRAFFIC.values()) + 1  # and the readiness probe
    health = api_until(server.api, "/monitoring/health", lambda h: h["total_requests"] >= total)
    assert (health["total_requests"], health["total_errors"]) == (total, 3), health
    rows = api_until(server.api, "/monitoring/endpoints", lambda r: True, {"window": "5m"})
    counted = {r["route"]: (r["requests"], r["errors"], r["client_errors"]) for r in rows}
    assert counted == {**EXPECTED, "/openapi.json": (1, 0, 0)}, rows
    for row in rows:  # every request timed, none slower than its client saw it
        latency = row["latency"]
        assert 0 < latency["min_ms"] <= latency["max_ms"], row
        assert latency["p95_ms"] <= latency["max_ms"] * 1.01, row
        if row["route"] in slowest_ms:
            assert latency["max_ms"] <= slowest_ms[row["route"]], (row, slowest_ms)
    db = api_until(server.api, "/monitoring/db", lambda r: True, {"window": "5m"})
    counts = {row["summary"]: row["count"] for row in db}
    # 16 look-ups, 5 lists, 3 crashes' look-ups, the start's 6; each list's 6 lines
    assert (counts["SELECT orders"], counts["SELECT lines"]) == (16 + 5 + 3, 5 * 6), db
    patterns = api_until(server.api, "/monitoring/db/n-plus-one", lambda p: True)
    found = [(p["statement"], p["route"], p["count"]) for p in patterns]
    assert found == [(LINES, "/orders", 6)] * 5, found
    errors = api_until(server.api, "/monitoring/errors", lambda e: True)
    assert [(e["route"], e["status_code"]) for e in errors] == [("/crash", 500)] * 3, errors
    traces = api_until(server.api, "/monitoring/slow-traces", lambda t: True, {"window": "5m"})
    log = server.output()
    assert "otel-monitoring: error" not in log, log
    advice = api_until(
        server.api,
        "/monitoring/recommendations",
        lambda found: any(i["kind"] == "n_plus_one" for i in found),
        {"window": "5m"},
    )
    (n_plus_one,) = [i for i in advice if i["kind"] == "n_plus_one"]
    assert "in 3 request(s)" in n_plus_one["message"], n_plus_one  # the first 3 cited
    offered = {t["trace_id"] for t in traces} | {e["trace_id"] for e in errors}
    offered |= {p["trace_id"] for p in patterns} | set(n_plus_one["trace_ids"])
    offered -= {""}  # not sampled
    deadline = time.monotonic() + 10  # the batch span processor exports every 0.1 s
    while not all(f'"0x{trace_id}"' in server.output() for trace_id in offered):
        assert time.monotonic() < deadline, (offered, server.output())
        time.sleep(0.2)
