"""Code mode mounts the monitoring API on the app's public port: with no key, only clients
on this host read it, and the app's own OpenAPI schema leaves it out unless asked."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider

import otel_monitoring
from otel_monitoring.demo.shop import create_app, create_engine_for


def _get_all(app: object, client: tuple[str, int], paths: list[str], **headers: str) -> list[int]:
    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app, client=client)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as http:
            return [(await http.get(path, headers=headers)).status_code for path in paths]

    return asyncio.run(run())


def test_without_a_key_only_local_clients_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine_for(str(tmp_path / "shop.db"))
    app = create_app(engine)
    with caplog.at_level(logging.WARNING, logger="otel_monitoring"):
        monitor = otel_monitoring.instrument_app(
            app, engine=engine, tracer_provider=TracerProvider(), span_exporters=[]
        )
    try:
        warnings = [
            r.getMessage() for r in caplog.records if "OTEL_MONITORING_API_KEY" in r.getMessage()
        ]
        assert len(warnings) == 1 and "/monitoring" in warnings[0]
        reads = ["/monitoring/endpoints", "/monitoring/db", "/monitoring/errors"]
        assert _get_all(app, ("127.0.0.1", 5000), reads) == [200, 200, 200]
        assert _get_all(app, ("::1", 5000), reads) == [200, 200, 200]
        # from another host: refused, saying what to set; health stays open for probes
        assert _get_all(app, ("203.0.113.7", 5000), reads) == [403, 403, 403]
        assert _get_all(app, ("203.0.113.7", 5000), ["/monitoring/health"]) == [200]
        # a proxy on this host forwarding someone else's request is not a local client
        forwarded = _get_all(app, ("127.0.0.1", 5000), reads, **{"X-Forwarded-For": "198.51.100.2"})
        assert forwarded == [403, 403, 403]
        # a server that rewrote the peer from a forged X-Forwarded-For (uvicorn with
        # --forwarded-allow-ips='*') leaves the forged loopback address as the peer
        forged = _get_all(app, ("127.0.0.1", 5000), reads, **{"X-Forwarded-For": "127.0.0.1"})
        assert forged == [403, 403, 403]

        async def detail() -> str:
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 5000))  # type: ignore[arg-type]
            async with httpx.AsyncClient(transport=transport, base_url="http://shop") as http:
                return str((await http.get("/monitoring/endpoints")).json()["detail"])

        assert "OTEL_MONITORING_API_KEY" in asyncio.run(detail())
        # the app's own schema is the app's
        paths = app.openapi()["paths"]
        assert "/items/{item_id}" in paths
        assert not [path for path in paths if path.startswith("/monitoring")]
    finally:
        monitor.shutdown()


def test_with_a_key_any_host_reads_with_it(tmp_path: Path) -> None:
    engine = create_engine_for(str(tmp_path / "shop.db"))
    app = create_app(engine)
    monitor = otel_monitoring.instrument_app(
        app,
        engine=engine,
        tracer_provider=TracerProvider(),
        span_exporters=[],
        api_keys=(("reader-secret-123", "read"),),
        openapi=True,
    )
    try:
        remote = ("203.0.113.7", 5000)
        assert _get_all(app, remote, ["/monitoring/endpoints"]) == [401]
        key = {"Authorization": "Bearer reader-secret-123"}
        assert _get_all(app, remote, ["/monitoring/endpoints"], **key) == [200]
        assert "/monitoring/endpoints" in app.openapi()["paths"]
    finally:
        monitor.shutdown()
