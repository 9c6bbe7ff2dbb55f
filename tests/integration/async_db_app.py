"""An app on an async SQLAlchemy engine (``create_async_engine``, aiosqlite), as many FastAPI
services are written, instrumented in code with ``instrument_app(app, engine=engine)``.

``ASYNC_DB_PATH`` names the SQLite file; with ``TEST_APP_ZERO_CODE=1`` the app is left to
``opentelemetry-instrument``. ``GET /orders/{id}``: one query;
``GET /orders``: the list, then each order's lines one query at a time (an N+1);
``GET /crash``: one query, then raises (a 500).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

import otel_monitoring

ORDERS = 6
engine = create_async_engine(f"sqlite+aiosqlite:///{os.environ['ASYNC_DB_PATH']}")


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY)"))
        await conn.execute(
            text("CREATE TABLE IF NOT EXISTS lines (order_id INTEGER, sku TEXT, qty INTEGER)")
        )
        await conn.execute(text("DELETE FROM orders"))
        await conn.execute(text("DELETE FROM lines"))
        for i in range(1, ORDERS + 1):
            await conn.execute(text("INSERT INTO orders (id) VALUES (:i)"), {"i": i})
            await conn.execute(
                text("INSERT INTO lines VALUES (:i, :sku, 1)"), {"i": i, "sku": f"sku-{i}"}
            )
    yield
    await engine.dispose()


app = FastAPI(title="async db", lifespan=lifespan)


@app.get("/orders/{order_id}")
async def one(order_id: int) -> dict[str, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT id FROM orders WHERE id = :i"), {"i": order_id})
        ).first()
    if row is None:
        raise HTTPException(404, "no such order")
    return {"id": row[0]}


@app.get("/orders")
async def listing() -> list[dict[str, object]]:
    async with engine.connect() as conn:
        ids = [r[0] for r in await conn.execute(text("SELECT id FROM orders ORDER BY id"))]
        out: list[dict[str, object]] = []
        for i in ids:
            lines = await conn.execute(
                text("SELECT sku, qty FROM lines WHERE order_id = :i"), {"i": i}
            )
            out.append({"id": i, "lines": [list(r) for r in lines]})
    return out


@app.get("/crash")
async def crash() -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT id FROM orders WHERE id = :i"), {"i": 0})
    raise RuntimeError("crash after a query")


if not os.environ.get("TEST_APP_ZERO_CODE"):
    otel_monitoring.instrument_app(app, engine=engine)
