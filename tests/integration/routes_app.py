"""An app whose routes look like probes, with mounts and docs, for the route-naming tests.

``ROUTES_APP_STATIC``: directory served by the ``StaticFiles`` mount at ``/static``.
``ROUTES_APP_INSTRUMENT=1``: ``instrument_app`` it (code mode); otherwise it is left alone,
for ``opentelemetry-instrument`` (zero-code mode).
"""

from __future__ import annotations

import os

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

app = FastAPI(title="routes")
v2 = FastAPI(title="v2")
tenant = FastAPI(title="tenant")


@app.get("/healthcare/items")
def healthcare_items() -> list[str]:
    return ["bandage"]


@app.get("/reports/metrics")
def report_metrics() -> dict[str, int]:
    return {"reports": 3}


@app.get("/users/{name}")
def user(name: str) -> dict[str, str]:
    return {"name": name}


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/metrics")
def metrics() -> str:
    return "requests_total 0"


@v2.get("/pong")
def pong() -> dict[str, str]:
    return {"pong": "v2"}


@tenant.get("/orders")
def orders() -> list[int]:
    return [1, 2]


app.mount("/v2", v2)
app.mount("/tenants/{tenant_id}", tenant)
app.mount("/static", StaticFiles(directory=os.environ["ROUTES_APP_STATIC"]), name="static")

if os.environ.get("ROUTES_APP_INSTRUMENT") == "1":
    import otel_monitoring

    otel_monitoring.instrument_app(app)
