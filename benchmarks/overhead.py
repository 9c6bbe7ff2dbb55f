"""Per-request overhead, in process, through the ASGI app (no network).

Drives the same mixed request stream through five set-ups of one small FastAPI app and
prints the median microseconds per request over interleaved repeats, with ratios:

* ``bare``: the app, FastAPI's own telemetry off;
* ``otel-stock``: contrib ``opentelemetry-instrumentation-fastapi``, SDK providers, a
  batch span processor and a periodic metric reader, both exporting to a discarding exporter;
* ``otel-monitoring``: this package as ``instrument_app`` sets it up (discarding exporters);
* ``otel-monitoring-no-stats``: the same capture and export with our statistics switched off;
* ``prometheus-fastapi-instrumentator``: its default instrumentation.

Usage::

    python benchmarks/overhead.py [--requests 2000] [--repeats 15]

The targets (issue 2): our statistics cost <= 10 us per request on top of no-stats, and
``otel-monitoring``'s overhead (time minus bare) is <= 0.5x that of ``otel-stock``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from pydantic import BaseModel

Scope = dict[str, Any]


class DiscardSpans(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


class DiscardMetrics(MetricExporter):
    def __init__(self) -> None:
        super().__init__()

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


class Order(BaseModel):
    item_id: int
    quantity: int


def make_app() -> FastAPI:
    """The benchmark app: a path parameter route, a JSON POST, a 404."""
    try:
        app = FastAPI(
            telemetry={"tracing": False, "metrics": False, "logs": False}  # type: ignore[call-arg]
        )
    except TypeError:  # FastAPI without built-in telemetry
        app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, Any]:
        return {"id": item_id, "name": "widget"}

    @app.post("/orders")
    async def order(body: Order) -> dict[str, int]:
        return {"total": body.quantity * 3}

    return app


def bare() -> FastAPI:
    return make_app()


def otel_stock() -> FastAPI:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    app = make_app()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(DiscardSpans()))
    reader = PeriodicExportingMetricReader(DiscardMetrics(), export_interval_millis=10_000)
    meter_provider = MeterProvider(metric_readers=[reader])
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    return app


def otel_monitoring(stats: bool = True) -> FastAPI:
    import otel_monitoring as om

    app = make_app()
    tracer_provider = TracerProvider()
    om.instrument_app(
        app,
        tracer_provider=tracer_provider,
        span_exporters=[DiscardSpans()],
        metric_exporters=[DiscardMetrics()],
        stats_enabled=stats,
    )
    return app


def otel_monitoring_default() -> FastAPI:
    """As instrument_app sets it up with no backend configured: no exporters at all."""
    import otel_monitoring as om

    app = make_app()
    om.instrument_app(app, tracer_provider=TracerProvider(), span_exporters=[], metric_exporters=[])
    return app


def prometheus_instrumentator() -> FastAPI:
    from prometheus_client import CollectorRegistry
    from prometheus_fastapi_instrumentator import Instrumentator

    app = make_app()
    Instrumentator(registry=CollectorRegistry()).instrument(app)
    return app


VARIANTS: dict[str, Callable[[], FastAPI]] = {
    "bare": bare,
    "otel-stock": otel_stock,
    "otel-monitoring": otel_monitoring,
    "otel-monitoring-no-stats": lambda: otel_monitoring(stats=False),
    "otel-monitoring-no-backend": otel_monitoring_default,
    "prometheus-fastapi-instrumentator": prometheus_instrumentator,
}


def _requests() -> list[tuple[Scope, bytes]]:
    def scope(method: str, path: str, body: bytes = b"") -> tuple[Scope, bytes]:
        headers = [(b"host", b"bench"), (b"user-agent", b"bench")]
        if body:
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ]
        return (
            {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": method,
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "root_path": "",
                "query_string": b"",
                "headers": headers,
                "client": ("127.0.0.1", 50000),
                "server": ("127.0.0.1", 8000),
            },
            body,
        )

    order = json.dumps({"item_id": 3, "quantity": 2}).encode()
    stream = [scope("GET", f"/items/{i}") for i in range(1, 8)]
    stream += [scope("POST", "/orders", order), scope("GET", "/nothing-here")]
    return stream


async def drive(
    app: FastAPI,
    request_at: Callable[[int], tuple[Scope, bytes]],
    start: int,
    count: int,
    after_each: Callable[[int], None] | None = None,
) -> float:
    """Send requests ``start .. start+count-1`` through the ASGI app; returns us/request."""

    async def send(message: dict[str, Any]) -> None:
        return None

    began = time.perf_counter()
    for i in range(start, start + count):
        scope, body = request_at(i)
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}  # noqa: B023

        await app(dict(scope), receive, send)
        if after_each is not None:
            after_each(i)
    return (time.perf_counter() - began) / count * 1e6


async def _drive(app: FastAPI, stream: list[tuple[Scope, bytes]], count: int) -> float:
    return await drive(app, lambda i: stream[i % len(stream)], 0, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per repeat")
    parser.add_argument("--repeats", type=int, default=15, help="interleaved repeats")
    parser.add_argument("--only", nargs="*", default=None, help="variants to run")
    args = parser.parse_args()

    names = args.only or list(VARIANTS)
    apps = {name: VARIANTS[name]() for name in names}
    stream = _requests()
    loop = asyncio.new_event_loop()
    for app in apps.values():  # warm up: route caches, pydantic, first-use imports
        loop.run_until_complete(_drive(app, stream, 500))
    samples: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.repeats):
        for name, app in apps.items():
            gc.collect()
            samples[name].append(loop.run_until_complete(_drive(app, stream, args.requests)))

    median = {name: statistics.median(values) for name, values in samples.items()}
    base = median.get("bare")
    print(f"{'variant':36} {'median us/req':>14} {'x bare':>8} {'overhead us':>12}")
    for name in names:
        ratio = median[name] / base if base else float("nan")
        overhead = median[name] - base if base else float("nan")
        print(f"{name:36} {median[name]:14.1f} {ratio:8.2f} {overhead:12.1f}")
    if base and "otel-stock" in median and "otel-monitoring" in median:
        ours = median["otel-monitoring"] - base
        stock = median["otel-stock"] - base
        print(
            f"\notel-monitoring overhead / otel-stock overhead: {ours / stock:.2f} (target <= 0.5)"
        )
    if "otel-monitoring" in median and "otel-monitoring-no-stats" in median:
        cost = median["otel-monitoring"] - median["otel-monitoring-no-stats"]
        print(f"cost of our statistics: {cost:.1f} us per request (target <= 10)")


if __name__ == "__main__":
    main()
