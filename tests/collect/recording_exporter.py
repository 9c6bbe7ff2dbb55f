"""A metric exporter that keeps what it is sent, in the place of the OTLP exporter (the OTLP
path itself is tested over HTTP in ``tests/integration/test_zero_code.py``)."""

from __future__ import annotations

import time

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData


class RecordingMetricExporter(MetricExporter):
    """Keeps each batch in :attr:`batches`; each export takes ``delay_s`` first (a backend
    that is slow to answer)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__()
        self.delay_s = delay_s
        self.batches: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> MetricExportResult:
        if self.delay_s:
            time.sleep(self.delay_s)
        self.batches.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        return None
