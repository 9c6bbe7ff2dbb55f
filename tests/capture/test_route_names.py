"""Route names and exclusions in process: exact paths, one count per request, full templates."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.util.http import parse_excluded_urls
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Host

import otel_monitoring
from otel_monitoring import Monitor
from otel_monitoring.autoinstrument import MonitoringDistro
from otel_monitoring.capture.exclusions import excluded_url_patterns
from otel_monitoring.capture.instruments import HTTP_DURATION_METRIC

LOOK_ALIKES = ("/healthcare/items", "/reports/metrics", "/users/pingu", "/pingpong", "/livezone")
PROBES = ("/health", "/healthz", "/livez", "/readyz", "/ping", "/metrics", "/favicon.ico")


def test_zero_code_excludes_exact_paths_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", "")
    monkeypatch.delenv("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS")
    monkeypatch.setenv("OTEL_MONITORING_EXCLUDED_URLS", ",".join((*PROBES, "/a.b")))
    MonitoringDistro()._configure()
    # What the contrib FastAPI instrumentation builds from the variable, and the URL it tests.
    excluded = parse_excluded_urls(os.environ["OTEL_PYTHON_FASTAPI_EXCLUDED_URLS"])

    def disabled(path: str) -> bool:
        return excluded.url_disabled("http://127.0.0.1:8000" + path)

    assert all(disabled(path) for path in PROBES)
    assert [p for p in LOOK_ALIKES if disabled(p)] == []
    assert [p for p in ("/health/", "/v2/health", "/healthz/x") if disabled(p)] == []
    assert disabled("/monitoring") and disabled("/monitoring/endpoints")
    assert not disabled("/monitoringx") and not disabled("/api/monitoring")
    assert disabled("/a.b") and not disabled("/aXb")  # a path, not a regex
    # A comma in a path (possible through the argument) does not split the list.
    comma = parse_excluded_urls(excluded_url_patterns(["/a,b"]))
    assert comma.url_disabled("http://h/a,b") and not comma.url_disabled("http://h/a")


def _app(static: Path) -> FastAPI:
    app = FastAPI()
    v2 = FastAPI()
    api = APIRouter(prefix="/api")
    hosted = FastAPI()

    @app.get("/healthcare/items")
    def healthcare() -> list[str]:
        return []

    @app.get("/health")
    def health() -> str:
        return "ok"

    @api.get("/items/{item_id}")
    def item(item_id: int) -> int:
        return item_id

    @v2.get("/pong")
    def pong() -> str:
        return "pong"

    @hosted.get("/hello")
    def hello() -> str:
        return "hello"

    app.include_router(api)
    app.mount("/v2", v2)
    app.mount("/zipped", GZipMiddleware(v2))  # looked through: the routes of v2
    app.mount("/raw", GZipMiddleware(PlainTextResponse("raw")))  # no routes: one row
    app.mount("/static", StaticFiles(directory=static), name="static")
    app.router.routes.append(Host("admin.example", app=hosted))
    return app


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Monitor, InMemorySpanExporter]]:
    (tmp_path / "a.txt").write_text("a")
    app = _app(tmp_path)
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    monitor = otel_monitoring.instrument_app(
        app, tracer_provider=provider, span_exporters=[], metric_exporters=[]
    )
    yield TestClient(app, raise_server_exceptions=False), monitor, spans
    monitor.shutdown()


def test_code_mode_names_each_request_once_by_its_full_template(
    served: tuple[TestClient, Monitor, InMemorySpanExporter],
) -> None:
    client, monitor, spans = served
    sent = {
        ("GET", "/healthcare/items"): 200,
        ("GET", "/health"): 200,
        ("GET", "/api/items/3"): 200,
        ("POST", "/api/items/3"): 405,
        ("GET", "/v2/pong"): 200,
        ("GET", "/zipped/pong"): 200,
        ("GET", "/raw/anything"): 200,
        ("GET", "/static/a.txt"): 200,
        ("GET", "/docs"): 200,
        ("GET", "/openapi.json"): 200,
        ("GET", "/v2/nothing"): 404,
        ("GET", "/nothing"): 404,
    }
    for (method, path), status in sent.items():
        assert client.request(method, path).status_code == status, path
    assert client.get("/hello", headers={"host": "admin.example"}).status_code == 200
    monitor.flush()
    counts = {
        (key.get("http.route"), key.get("http.request.method")): sum(
            e.requests
            for e in monitor.stats.endpoint(str(key.get("http.route")))
            if e.method == key.get("http.request.method")
        )
        for key in monitor.store
        if key.metric == HTTP_DURATION_METRIC
    }
    assert counts == {
        ("/healthcare/items", "GET"): 1,
        ("/api/items/{item_id}", "GET"): 1,
        ("/api/items/{item_id}", "POST"): 1,
        ("/v2/pong", "GET"): 1,
        ("/zipped/pong", "GET"): 1,
        ("/raw/{path}", "GET"): 1,
        ("/static/{path}", "GET"): 1,
        ("/docs", "GET"): 1,
        ("/openapi.json", "GET"): 1,
        ("/hello", "GET"): 1,
        ("<unmatched>", "GET"): 2,
    }
    names = sorted(s.name for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER)
    assert names.count("GET /v2/pong") == 1 and "GET /pong" not in names
    assert len(names) == len(sent)  # one server span per request (the probe has none)


def test_code_mode_names_included_routers_with_their_prefixes() -> None:
    """FastAPI keeps an included router's routes nested and records the route object itself
    in the scope, whose path lacks the ``include_router`` prefix: ``/v1/...`` and ``/v3/...``
    were one series, ``/users/{user_id}``. Routes defined after ``instrument_app`` too."""
    app = FastAPI()
    users = APIRouter(prefix="/users")

    @users.get("/{user_id}")
    def user(user_id: int) -> int:
        return user_id

    app.include_router(users, prefix="/v1")
    monitor = otel_monitoring.instrument_app(app, span_exporters=[], metric_exporters=[])
    app.include_router(users, prefix="/v3")  # after instrumenting: the same route objects
    carts = APIRouter()

    @carts.get("/carts/{cart_id}")
    def cart(cart_id: int) -> int:
        return cart_id

    app.include_router(carts, prefix="/shop")
    try:
        client = TestClient(app)
        sent = {"/v1/users/1": 2, "/v3/users/2": 3, "/shop/carts/9": 1}
        for path, times in sent.items():
            for _ in range(times):
                assert client.get(path).status_code == 200, path
        monitor.flush()
        counted = {e.route: e.requests for e in monitor.stats.endpoints("5m")}
        assert counted == {
            "/v1/users/{user_id}": 2,
            "/v3/users/{user_id}": 3,
            "/shop/carts/{cart_id}": 1,
        }
    finally:
        monitor.shutdown()
