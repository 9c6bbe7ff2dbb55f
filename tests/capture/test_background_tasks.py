"""Code mode with spans: a response's background tasks are neither its server span's time
nor its latency, and a background task that fails is still the request's error."""

from __future__ import annotations

import time

from fastapi import BackgroundTasks, FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import otel_monitoring

JOB_S = 0.3


def test_background_tasks_are_not_the_span_nor_the_latency() -> None:
    app = FastAPI()

    def slow_job() -> None:
        time.sleep(JOB_S)

    def failing_job() -> None:
        raise ValueError("the mail server said no")

    @app.post("/signup")
    def signup(tasks: BackgroundTasks) -> dict[str, bool]:
        tasks.add_task(slow_job)
        return {"ok": True}

    @app.post("/invite")
    def invite(tasks: BackgroundTasks) -> dict[str, bool]:
        tasks.add_task(failing_job)
        return {"ok": True}

    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    monitor = otel_monitoring.instrument_app(
        app, tracer_provider=provider, span_exporters=[], metric_exporters=[]
    )
    try:
        client = TestClient(app, raise_server_exceptions=False)
        started = time.perf_counter()
        for _ in range(2):
            assert client.post("/signup").status_code == 200
        assert time.perf_counter() - started >= 2 * JOB_S  # the client waited for the jobs
        assert client.post("/invite").status_code == 200
        monitor.flush()
        (signup,) = monitor.stats.endpoint("/signup")
        assert signup.requests == 2 and signup.latency.max_ms < JOB_S * 1000 / 2, signup
        server = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
        durations_s = [
            (s.end_time - s.start_time) / 1e9  # type: ignore[operator]
            for s in server
            if s.name == "POST /signup"
        ]
        assert len(durations_s) == 2 and max(durations_s) < JOB_S / 2, durations_s
        (invite,) = monitor.stats.endpoint("/invite")
        assert invite.requests == 1 and invite.errors == 1, invite
    finally:
        monitor.shutdown()
