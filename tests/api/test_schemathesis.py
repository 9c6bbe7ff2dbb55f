"""Property-based fuzzing of the monitoring API against its own OpenAPI schema.

Every operation, a fixed seed: no 5xx and no response that violates the schema.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from opentelemetry.sdk.trace import TracerProvider
from schemathesis import Case

import otel_monitoring
from otel_monitoring.api.ratelimit import DEFAULT_LIMITS
from otel_monitoring.demo.shop import create_app, create_engine_for

KEY = "fuzz-admin-key-1"


def _app() -> object:
    directory = Path(tempfile.mkdtemp(prefix="otel-monitoring-fuzz-"))
    engine = create_engine_for(str(directory / "shop.db"))
    app = create_app(engine)
    otel_monitoring.instrument_app(
        app,
        engine=engine,
        tracer_provider=TracerProvider(),
        span_exporters=[],
        metric_exporters=[],
        api_keys=((KEY, "admin"),),
        openapi=True,
        latency_threshold_ms=1.0,  # so alerts exist to list and resolve
        rate_limits=tuple((name, "100000/minute") for name in DEFAULT_LIMITS),
    )
    from fastapi.testclient import TestClient

    client = TestClient(app, raise_server_exceptions=False)
    for i in range(30):
        client.get(f"/items/{i % 7 + 1}")
        client.get("/slow", params={"ms": 2})
    client.get("/categories/1/items")
    client.get("/products/3")
    client.get("/boom")
    return app


schema = schemathesis.openapi.from_asgi("/openapi.json", _app()).include(path_regex="^/monitoring")


@schema.parametrize()
@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_monitoring_api_conforms_to_its_schema(case: Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"})
