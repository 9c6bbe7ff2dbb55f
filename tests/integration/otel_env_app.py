"""An app whose every figure is known in advance, for the tests of the standard ``OTEL_*``
variables (``test_otel_env.py``). ``TEST_APP_ZERO_CODE=1`` leaves it to
``opentelemetry-instrument``; otherwise it is instrumented in code.

``OTEL_ENV_DB`` names the SQLite file. ``GET /items/{item_id}``: one query that takes
:data:`DB_MS` milliseconds (``SELECT ... FROM items``; 404 for an unknown id);
``GET /slow``: answers after :data:`SLOW_MS` milliseconds; ``GET /boom``: raises (a 500);
``GET /call``: one outbound ``httpx`` call to this app's ``/healthz`` (a probe URL, itself
left out of the statistics).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request
from sqlalchemy import create_engine, event, text

import otel_monitoring

DB_MS = 30.0
SLOW_MS = 80.0

engine = create_engine(
    f"sqlite:///{os.environ['OTEL_ENV_DB']}", connect_args={"check_same_thread": False}
)


def _pause_ms(ms: float) -> float:
    time.sleep(ms / 1000.0)
    return ms


@event.listens_for(engine, "connect")
def _functions(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.create_function("pause_ms", 1, _pause_ms)


with engine.begin() as setup:
    setup.execute(text("CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY)"))
    setup.execute(text("INSERT OR IGNORE INTO items (id) VALUES (1), (2)"))

app = FastAPI(title="otel env")


@app.get("/healthz")
def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.get("/items/{item_id}")
def item(item_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT id FROM items WHERE id = :i + 0 * pause_ms(:ms)"),
            {"i": item_id, "ms": DB_MS},
        ).first()
    if row is None:
        raise HTTPException(404, "no such item")
    return {"id": row[0]}


@app.get("/slow")
async def slow() -> dict[str, bool]:
    await asyncio.sleep(SLOW_MS / 1000.0)
    return {"ok": True}


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("boom")


@app.get("/call")
async def call(request: Request) -> dict[str, int]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        answer = await client.get(str(request.base_url) + "healthz")
    return {"status": answer.status_code}


if not os.environ.get("TEST_APP_ZERO_CODE"):
    otel_monitoring.instrument_app(app, engine=engine)
