"""An app whose routes look like probes, with mounts, routers included under prefixes and
docs, for the route-naming tests.

``ROUTES_APP_STATIC``: directory served by the ``StaticFiles`` mount at ``/static``.
``ROUTES_APP_INSTRUMENT=1``: ``instrument_app`` it (code mode); otherwise it is left alone,
for ``opentelemetry-instrument`` (zero-code mode).
"""

from __future__ import annotations

import os

from fastapi import APIRouter, FastAPI
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


# one router included under two prefixes (the same route objects at two templates), and
# one under a prefix of its own
accounts = APIRouter(prefix="/accounts")
shop = APIRouter()


@accounts.get("/{account_id}")
def account(account_id: int) -> dict[str, int]:
    return {"account": account_id}


@shop.get("/carts/{cart_id}")
def cart(cart_id: int) -> dict[str, int]:
    return {"cart": cart_id}


app.include_router(accounts, prefix="/v1")
app.include_router(accounts, prefix="/v3")
app.include_router(shop, prefix="/shop")
app.mount("/v2", v2)
app.mount("/tenants/{tenant_id}", tenant)
app.mount("/static", StaticFiles(directory=os.environ["ROUTES_APP_STATIC"]), name="static")

if os.environ.get("ROUTES_APP_INSTRUMENT") == "1":
    import otel_monitoring

    otel_monitoring.instrument_app(app)
