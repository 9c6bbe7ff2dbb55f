"""The app's own exporters get their last interval when the app stops.

uvicorn (>= 0.29) re-raises the SIGTERM it handled once the app has stopped, so the SDK
providers' exit handlers never run: the app's ``PeriodicExportingMetricReader`` (one minute
by default) and ``BatchSpanProcessor`` would lose what they hold. ``Monitor.drain`` (zero-code
mode, when an app stops) and ``Monitor.shutdown`` (``instrument_app``, when the app stops)
flush the providers the monitor joined. Over real uvicorn and the distro:
``tests/integration/test_zero_code.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from recording_exporter import RecordingMetricExporter

from otel_monitoring.testing import offline_monitor


class _Spans(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(span.name for span in spans)
        return SpanExportResult.SUCCESS


def _counted(exporter: RecordingMetricExporter, name: str) -> float:
    return sum(
        point.value  # type: ignore[union-attr]
        for batch in exporter.batches
        for rm in batch.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == name
        for point in metric.data.data_points
    )


@pytest.mark.parametrize("stop", ["drain", "shutdown"])
def test_the_apps_providers_export_their_last_interval_when_the_app_stops(stop: str) -> None:
    metrics, spans = RecordingMetricExporter(), _Spans()
    meter_provider = MeterProvider(
        metric_readers=[PeriodicExportingMetricReader(metrics, export_interval_millis=3_600_000)]
    )
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(spans, schedule_delay_millis=3_600_000))
    monitor = offline_monitor(meter_provider=meter_provider, tracer_provider=tracer_provider)
    try:
        meter_provider.get_meter("app").create_counter("orders").add(3)
        with tracer_provider.get_tracer("app").start_as_current_span("checkout"):
            pass
        assert _counted(metrics, "orders") == 0 and spans.spans == []  # an hour to go
        assert getattr(monitor, stop)() is True
        assert _counted(metrics, "orders") == 3
        assert spans.spans == ["checkout"]
    finally:
        monitor.shutdown()
        meter_provider.shutdown()
        tracer_provider.shutdown()
