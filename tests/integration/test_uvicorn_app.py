"""The shop under a real uvicorn process, instrumented in code and with no code change."""

from __future__ import annotations

import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

SHOP = "otel_monitoring.demo.shop:app"


def _traffic(base: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        for i in range(1, 31):
            assert client.get(f"/items/{i}").status_code == 200
        assert client.get("/items/77").status_code == 404
        assert client.get("/healthz").status_code == 200
        assert client.get("/no/such/url?password=hunter2").status_code == 404
        assert client.post("/orders", json={"item_id": 1, "quantity": 2}).status_code == 201
        assert client.get("/categories/3/items").status_code == 200
        for _ in range(3):
            assert client.get("/products/5").status_code == 200
    # uvicorn closes the connection after an unhandled exception: use a fresh one
    assert httpx.get(base + "/boom", timeout=10).status_code == 500


def _settled(client: httpx.Client, total: int) -> None:
    """Wait until every request sent is counted (bounded).

    A response reaches the client before the server's middleware finishes recording it, so
    a query sent at once may race the last request's bookkeeping by a millisecond.
    """
    deadline = time.monotonic() + 30
    while (counted := client.get("/monitoring/health").json()["total_requests"]) < total:
        assert time.monotonic() < deadline, f"{counted} of {total} requests counted after 30 s"
        time.sleep(0.05)


def _wait_listening(url: str) -> None:
    """Bounded readiness wait for a server started in the background."""
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url, timeout=5)
            return
        except httpx.TransportError as exc:
            assert time.monotonic() < deadline, f"{url} did not answer in 60 s: {exc!r}"
            time.sleep(0.1)


def _check_api(api: str) -> None:
    with httpx.Client(base_url=api, timeout=10) as client:
        _settled(client, 38)
        endpoints = client.get("/monitoring/endpoints", params={"window": "5m"}).json()
        by_route = {(e["route"], e["method"]): e for e in endpoints}
        items = by_route[("/items/{item_id}", "GET")]
        assert items["requests"] == 31 and items["client_errors"] == 1
        assert items["latency"]["p95_ms"] > 0 and items["exemplars"]
        assert by_route[("/boom", "GET")]["errors"] == 1
        assert by_route[("<unmatched>", "GET")]["requests"] == 1
        assert ("/healthz", "GET") not in by_route
        assert "hunter2" not in str(endpoints)

        encoded = urllib.parse.quote("/items/{item_id}", safe="")
        for path in (f"/monitoring/endpoints/{encoded}", "/monitoring/endpoints/items/{item_id}"):
            (one,) = client.get(path, params={"method": "get"}).json()
            assert one["requests"] == 31
        missing = client.get("/monitoring/endpoints/%2Fnope")
        assert missing.status_code == 404 and "/nope" in missing.json()["detail"]
        bad = client.get("/monitoring/endpoints", params={"window": "7y"})
        assert bad.status_code == 422

        health = client.get("/monitoring/health").json()
        assert health["total_requests"] == 38 and health["total_errors"] == 1
        assert health["status"] in ("healthy", "degraded", "unhealthy")
        db = {s["summary"]: s for s in client.get("/monitoring/db").json()}
        assert db["SELECT items"]["count"] >= 3
        patterns = client.get("/monitoring/db/n-plus-one").json()
        assert patterns and patterns[0]["route"] == "/categories/{category_id}/items"


def test_instrumented_in_code(
    start_server: Callable[..., Any], port: int, shop_env: dict[str, str], uvicorn_cmd: Any
) -> None:
    server = start_server(uvicorn_cmd(SHOP, port), {**shop_env, "SHOP_INSTRUMENT": "1"}, port)
    _traffic(server.url)
    _check_api(server.url)
    with httpx.Client(base_url=server.url) as client:
        caches = client.get("/monitoring/caches").json()
        assert caches == [{"cache": "products", "hits": 2, "misses": 1, "hit_ratio": 66.6667}]


def test_zero_code_side_port(
    start_server: Callable[..., Any],
    port: int,
    shop_env: dict[str, str],
    uvicorn_cmd: Any,
    another_port: Callable[[], int],
) -> None:
    api_port = another_port()
    instrument = str(Path(sys.executable).parent / "opentelemetry-instrument")
    env = {**shop_env, "OTEL_MONITORING_PORT": str(api_port)}
    server = start_server(uvicorn_cmd(SHOP, port, instrument), env, port)
    api = f"http://127.0.0.1:{api_port}"
    _wait_listening(api + "/monitoring/health")  # the side port's own thread may lag the app
    _traffic(server.url)
    _check_api(api)
    # The API is on the side port only, not mounted into the app.
    assert httpx.get(server.url + "/monitoring/health").status_code == 404


def test_outbound_calls_per_host(
    start_server: Callable[..., Any],
    shop_env: dict[str, str],
    uvicorn_cmd: Any,
    another_port: Callable[[], int],
) -> None:
    upstream_port, port = another_port(), another_port()
    upstream = start_server(
        uvicorn_cmd(SHOP, upstream_port),
        {**shop_env, "SHOP_DB": shop_env["SHOP_DB"] + "2"},
        upstream_port,
    )
    env = {**shop_env, "SHOP_INSTRUMENT": "1", "SHOP_UPSTREAM": upstream.url + "/items/1"}
    server = start_server(uvicorn_cmd(SHOP, port), env, port)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(4):
            assert client.get("/upstream").json() == {"upstream_status": 200}
        _settled(client, 4)
        external = client.get("/monitoring/external").json()
    assert external[0]["host"] == "127.0.0.1" and external[0]["count"] == 4
    assert external[0]["errors"] == 0 and external[0]["avg_ms"] > 0


@pytest.mark.parametrize("mode", ["code", "zero-code"])
def test_otlp_export(
    mode: str,
    start_server: Callable[..., Any],
    port: int,
    shop_env: dict[str, str],
    uvicorn_cmd: Any,
    another_port: Callable[[], int],
) -> None:
    from otlp_receiver import OtlpReceiver, attributes

    receiver = OtlpReceiver()
    try:
        env = {**shop_env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        prefix: tuple[str, ...] = ()
        if mode == "code":
            env["SHOP_INSTRUMENT"] = "1"
        else:
            env["OTEL_MONITORING_PORT"] = str(another_port())
            # our configurator, as without opentelemetry-distro (delta temporality; the
            # distro's own setup is tested in test_zero_code.py)
            env["OTEL_PYTHON_DISTRO"] = env["OTEL_PYTHON_CONFIGURATOR"] = "otel_monitoring"
            prefix = (str(Path(sys.executable).parent / "opentelemetry-instrument"),)
        server = start_server(uvicorn_cmd(SHOP, port, *prefix), env, port)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for i in range(5):
                assert client.get(f"/items/{i + 1}").status_code == 200
        assert httpx.get(server.url + "/boom", timeout=10).status_code == 500

        def server_spans() -> list[Any]:
            return [s for s in receiver.spans() if attributes(s.attributes).get("http.route")]

        assert receiver.wait_for(lambda: len(server_spans()) >= 6), receiver.spans()
        routes = [attributes(s.attributes) for s in server_spans()]
        item_spans = [a for a in routes if a["http.route"] == "/items/{item_id}"]
        assert len(item_spans) == 5
        assert all(a["http.request.method"] == "GET" for a in item_spans)
        assert all(a["http.response.status_code"] == 200 for a in item_spans)
        assert any(
            a["http.route"] == "/boom" and a["http.response.status_code"] == 500 for a in routes
        )

        def duration_points() -> list[Any]:
            return [
                p
                for p in receiver.metric_points("http.server.request.duration")
                if attributes(p.attributes).get("http.route") == "/items/{item_id}"
            ]

        assert receiver.wait_for(lambda: sum(p.count for p in duration_points()) >= 5), (
            duration_points()
        )
        points = duration_points()
        assert sum(p.count for p in points) == 5
        first = attributes(points[0].attributes)
        assert first["http.request.method"] == "GET" and first["http.response.status_code"] == 200
        assert all(0 < p.sum < 5.0 for p in points)  # seconds
    finally:
        receiver.close()
