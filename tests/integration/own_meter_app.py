"""An app that set its own SDK MeterProvider (with its own reader and counter) before
``instrument_app``: monitoring joins that provider, so the app's metrics are in the statistics.

``GET /app-reader``: what the app's own reader collected (metric name -> sum of its points).
"""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint

import otel_monitoring

app_reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[app_reader]))
orders = metrics.get_meter("own_meter_app").create_counter("app.orders", unit="{order}")

app = FastAPI(title="own meter provider")


@app.post("/orders", status_code=201)
def order() -> dict[str, bool]:
    orders.add(1, {"order.kind": "book"})
    return {"ok": True}


@app.get("/app-reader")
def collected() -> dict[str, float]:
    data = app_reader.get_metrics_data()
    sums: dict[str, float] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                sums[metric.name] = sum(
                    p.value for p in metric.data.data_points if isinstance(p, NumberDataPoint)
                )
    return sums


otel_monitoring.instrument_app(app)
