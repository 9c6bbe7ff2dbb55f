"""instrument_app in process: statistics, exclusions, bounded state, never hurting the app."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind

import otel_monitoring
from otel_monitoring import Monitor, Window
from otel_monitoring.capture.instruments import HTTP_DURATION_METRIC
from otel_monitoring.demo.shop import create_app, create_engine_for


class Shop:
    def __init__(self, tmp_path: Path, **settings: object) -> None:
        self.engine = create_engine_for(str(tmp_path / "shop.db"))
        self.app = create_app(self.engine)
        self.spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.monitor: Monitor = otel_monitoring.instrument_app(
            self.app,
            engine=self.engine,
            tracer_provider=provider,
            span_exporters=[],
            metric_exporters=[],
            **settings,
        )
        self.client = TestClient(self.app, raise_server_exceptions=False)

    def server_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.kind is SpanKind.SERVER]


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Shop]:
    instance = Shop(tmp_path)
    yield instance
    instance.monitor.shutdown()


def test_statistics_per_route_and_method(shop: Shop) -> None:
    c = shop.client
    for i in range(1, 21):
        assert c.get(f"/items/{i}").status_code == 200
    assert c.get("/items/99").status_code == 404
    assert c.get("/boom").status_code == 500
    assert c.post("/orders", json={"item_id": 2, "quantity": 3}).status_code == 201
    assert c.post("/orders", json={"item_id": "x"}).status_code == 422

    by_route = {(e.route, e.method): e for e in shop.monitor.stats.endpoints(Window.M5)}
    items = by_route[("/items/{item_id}", "GET")]
    assert items.requests == 21 and items.client_errors == 1 and items.errors == 0
    assert items.latency.p50_ms is not None and items.latency.p50_ms > 0
    assert items.latency.min_ms <= items.latency.p50_ms <= items.latency.max_ms  # type: ignore[operator]
    assert items.response_size_avg_bytes is not None and items.response_size_avg_bytes > 10
    assert items.throughput_rpm > 0
    assert items.exemplars and len(items.exemplars[0].trace_id) == 32
    boom = by_route[("/boom", "GET")]
    assert boom.errors == 1 and boom.error_rate == 100.0
    orders = by_route[("/orders", "POST")]
    assert orders.requests == 2 and orders.client_errors == 1

    service = shop.monitor.stats.service(Window.ALL)
    assert service.requests == 24 and service.errors == 1
    errors = shop.monitor.stats.errors()
    assert errors[0].exception_type.endswith("PaymentGatewayError")
    assert "4111111111111111" not in errors[0].message  # the card number was masked


def test_health_probes_and_monitoring_api_are_excluded(shop: Shop) -> None:
    shop.client.get("/healthz")
    shop.client.get("/monitoring/health")
    assert shop.monitor.stats.endpoints(Window.ALL) == []
    assert shop.server_spans() == []


def test_server_timing_header_and_span_names(shop: Shop) -> None:
    response = shop.client.get("/items/3?secret=hunter2")
    timing = response.headers["server-timing"]
    assert timing.startswith("app;dur=") and float(timing.split("=")[1]) > 0
    (span,) = shop.server_spans()
    assert span.name == "GET /items/{item_id}"
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/items/{item_id}"
    assert "hunter2" not in str(dict(span.attributes))
    shop.monitor.flush()
    stored = " ".join(str(key) for key in shop.monitor.store)
    assert "hunter2" not in stored and "secret" not in stored


def test_server_timing_can_be_turned_off(tmp_path: Path) -> None:
    shop = Shop(tmp_path, server_timing=False)
    try:
        assert "server-timing" not in shop.client.get("/items/1").headers
    finally:
        shop.monitor.shutdown()


def test_instrument_app_is_idempotent(shop: Shop) -> None:
    again = otel_monitoring.instrument_app(shop.app, engine=shop.engine)
    assert again is shop.monitor
    shop.client.get("/items/1")
    (stats,) = shop.monitor.stats.endpoint("/items/{item_id}")
    assert stats.requests == 1  # one middleware, not two


def test_db_statements_are_captured_by_metric_and_spans(shop: Shop) -> None:
    shop.client.get("/items?limit=5")
    shop.client.get("/categories/1/items")
    statements = {s.summary: s for s in shop.monitor.stats.db_statements(Window.ALL)}
    assert statements["SELECT items"].count >= 11  # 1 list + 1 ids + 10 per-item gets
    assert statements["SELECT items"].system == "sqlite"
    assert statements["SELECT items"].avg_ms is not None
    db_spans = [s for s in shop.spans.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert any(s.name.startswith("SELECT") for s in db_spans), "contrib sqlalchemy spans"
    (pattern,) = shop.monitor.stats.n_plus_one()
    assert pattern.route == "/categories/{category_id}/items" and pattern.count == 10
    assert "WHERE items.id = ?" in pattern.statement


def test_cache_hit_ratio(shop: Shop) -> None:
    for _ in range(4):
        shop.client.get("/products/7")
    (cache,) = shop.monitor.stats.caches()
    assert (cache.cache, cache.hits, cache.misses, cache.hit_ratio) == ("products", 3, 1, 75.0)


def test_unknown_urls_collapse_into_one_route(shop: Shop) -> None:
    for i in range(300):
        assert shop.client.get(f"/no/such/path/{i}").status_code == 404
    shop.client.get("/items/1")
    shop.monitor.flush()
    routes = {
        key.get("http.route") for key in shop.monitor.store if key.metric == HTTP_DURATION_METRIC
    }
    assert routes == {"<unmatched>", "/items/{item_id}"}
    (unmatched,) = shop.monitor.stats.endpoint("<unmatched>")
    assert unmatched.requests == 300 and unmatched.client_errors == 300


def test_failing_components_never_reach_the_app(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected failure")

    monkeypatch.setattr(shop.monitor.findings, "on_server_span", broken)
    monkeypatch.setattr(shop.monitor.findings, "note_statement", broken)
    monkeypatch.setattr(shop.monitor.store, "add", broken)
    statuses = [shop.client.get(f"/items/{1 + i % 50}").status_code for i in range(1000)]
    statuses += [shop.client.get("/items").status_code]
    shop.monitor.flush()
    assert statuses == [200] * 1001
    assert len(shop.server_spans()) == 1001  # the other exporter still got every span
    assert shop.monitor.guard.internal_errors >= 1001


def test_negative_durations_are_counted_not_stored(shop: Shop) -> None:
    context = SpanContext(trace_id=1, span_id=2, is_remote=False)
    span = ReadableSpan(
        name="GET /x",
        context=context,
        kind=SpanKind.SERVER,
        start_time=2_000_000_000,
        end_time=1_000_000_000,  # the wall clock stepped back
        attributes={"http.route": "/x", "http.request.method": "GET"},
    )
    shop.monitor.processor.on_end(span)
    assert shop.monitor.guard.clock_steps == 1
    assert shop.monitor.stats.slow_traces() == []


class _SilentServer:
    """Accepts connections and never answers: an OTLP endpoint that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                continue

    def close(self) -> None:
        self.stop.set()
        for conn in self.conns:
            conn.close()
        self.sock.close()


def test_shutdown_is_bounded_when_the_endpoint_hangs(tmp_path: Path) -> None:
    # The silent endpoint stays open until the process ends: closing it would turn the
    # abandoned exporter's wait into connection-refused retries logged after the test.
    silent = _SilentServer()
    endpoint = f"http://127.0.0.1:{silent.port}"
    app = FastAPI()

    @app.get("/ping-me")
    def ping() -> dict[str, bool]:
        return {"ok": True}

    monitor = otel_monitoring.instrument_app(
        app,
        tracer_provider=TracerProvider(),
        span_exporters=[OTLPSpanExporter(endpoint=endpoint + "/v1/traces", timeout=30)],
        metric_exporters=[OTLPMetricExporter(endpoint=endpoint + "/v1/metrics", timeout=30)],
        shutdown_timeout_s=2.0,
    )
    client = TestClient(app)
    for _ in range(5):
        client.get("/ping-me")
    started = time.monotonic()
    finished = monitor.shutdown()
    elapsed = time.monotonic() - started
    assert finished is False  # the exporter was still waiting on the silent endpoint
    assert elapsed < 4.0, elapsed  # bound 2 s, generous margin for a loaded machine
    again = time.monotonic()
    assert monitor.shutdown() is True
    assert time.monotonic() - again < 0.5
    # The abandoned exporter reports its failed export when the process exits; that
    # report is expected here and is not a test result.
    logging.getLogger("opentelemetry.exporter.otlp").setLevel(logging.CRITICAL)


def test_without_a_trace_exporter_no_sdk_spans_but_same_findings(tmp_path: Path) -> None:
    engine = create_engine_for(str(tmp_path / "lean.db"))
    app = create_app(engine)
    monitor = otel_monitoring.instrument_app(
        app, engine=engine, tracer_provider=TracerProvider(), span_exporters=[], metric_exporters=[]
    )
    try:
        assert monitor.lean
        client = TestClient(app, raise_server_exceptions=False)
        parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        assert client.get("/items/4", headers={"traceparent": parent}).status_code == 200
        assert client.get("/boom").status_code == 500
        assert client.get("/categories/2/items").status_code == 200
        (items,) = monitor.stats.endpoint("/items/{item_id}")
        assert items.requests == 1
        assert items.exemplars[0].trace_id == "0af7651916cd43dd8448eb211c80319c"
        (error,) = monitor.stats.errors()
        assert error.exception_type.endswith("PaymentGatewayError") and error.status_code == 500
        assert "4111111111111111" not in error.message
        (pattern,) = monitor.stats.n_plus_one()
        assert pattern.route == "/categories/{category_id}/items"
        assert {s.summary for s in monitor.stats.db_statements()} >= {"SELECT items"}
    finally:
        monitor.shutdown()
