"""A small sample shop: the demo's service and the integration tests' app.

Routes with path parameters, a JSON POST, a 404, one that raises, SQLite through SQLAlchemy
(including an N+1 listing), a cached lookup and a health probe. ``app`` is the plain app
(for ``opentelemetry-instrument uvicorn otel_monitoring.demo.shop:app``);
:func:`create_app` builds one, instrumented with ``instrument_app`` when asked.

Environment: ``SHOP_DB`` (SQLite file path; default a file in the temp dir),
``SHOP_INSTRUMENT`` (``1`` to instrument the module-level ``app`` with ``instrument_app``).
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import Engine, Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import otel_monitoring

__all__ = ["Incidents", "PaymentGatewayError", "app", "create_app", "create_engine_for"]


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    price_cents: Mapped[int] = mapped_column(Integer)
    category_id: Mapped[int] = mapped_column(Integer)


class Category(Base):
    __tablename__ = "categories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class PaymentGatewayError(RuntimeError):
    """The failure ``/boom`` raises (unhandled on purpose: it becomes a 500)."""


class OrderIn(BaseModel):
    item_id: int = Field(ge=1)
    quantity: int = Field(ge=1, le=100)


class Incidents:
    """Switches the traffic generator (or a test) flips to make the shop misbehave."""

    extra_latency_s = 0.0
    error_ratio = 0.0


def create_engine_for(path: str | None = None) -> Engine:
    """A SQLite engine on ``path`` (default ``SHOP_DB`` or a temp file), seeded with items."""
    path = path or os.environ.get("SHOP_DB") or os.path.join(tempfile.gettempdir(), "shop.db")
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        if session.scalar(select(Item.id).limit(1)) is None:
            session.add_all(Category(id=i, name=f"category-{i}") for i in range(1, 6))
            session.add_all(
                Item(id=i, name=f"item-{i}", price_cents=100 * i, category_id=1 + i % 5)
                for i in range(1, 51)
            )
            session.commit()
    return engine


def create_app(
    engine: Engine | None = None, *, instrument: bool = False, **settings: Any
) -> FastAPI:
    """Build the shop; with ``instrument=True`` also ``instrument_app`` it (settings passed on)."""
    engine = engine or create_engine_for()
    shop = FastAPI(title="shop")
    cache: dict[int, dict[str, Any]] = {}

    @shop.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @shop.get("/items")
    def list_items(limit: int = 20) -> list[dict[str, Any]]:
        with Session(engine) as session:
            rows = session.scalars(select(Item).limit(limit)).all()
            return [{"id": r.id, "name": r.name, "price_cents": r.price_cents} for r in rows]

    @shop.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, Any]:
        if Incidents.extra_latency_s:
            await asyncio.sleep(Incidents.extra_latency_s)
        if Incidents.error_ratio and random.random() < Incidents.error_ratio:
            raise HTTPException(status_code=503, detail="inventory service unavailable")
        if not 1 <= item_id <= 50:
            raise HTTPException(status_code=404, detail=f"item {item_id} not found")
        return {"id": item_id, "name": f"item-{item_id}"}

    @shop.get("/categories/{category_id}/items")
    def category_items(category_id: int) -> list[dict[str, Any]]:
        # Deliberate N+1: one query for the ids, then one query per item.
        with Session(engine) as session:
            ids = session.scalars(select(Item.id).where(Item.category_id == category_id)).all()
            return [
                {"id": item.id, "name": item.name}
                for item in (session.get(Item, i) for i in ids)
                if item is not None
            ]

    @shop.get("/products/{product_id}")
    def product(product_id: int) -> dict[str, Any]:
        hit = product_id in cache
        otel_monitoring.record_cache(hit, cache="products")
        if not hit:
            with Session(engine) as session:
                item = session.get(Item, product_id)
                if item is None:
                    raise HTTPException(status_code=404, detail="no such product")
                cache[product_id] = {"id": item.id, "name": item.name}
        return cache[product_id]

    @shop.post("/orders", status_code=201)
    def create_order(order: OrderIn) -> dict[str, Any]:
        with Session(engine) as session:
            item = session.get(Item, order.item_id)
            if item is None:
                raise HTTPException(status_code=404, detail="no such item")
            return {"item_id": item.id, "total_cents": item.price_cents * order.quantity}

    @shop.get("/slow")
    async def slow(ms: int = Query(default=200, ge=0, le=5000)) -> dict[str, int]:
        # A deliberately slow route (latency alerts, charts): waits ``ms`` milliseconds.
        await asyncio.sleep(ms / 1000.0)
        return {"slept_ms": ms}

    @shop.get("/upstream")
    def upstream() -> dict[str, Any]:
        # An outbound call, measured through the OTel httpx instrumentation.
        url = os.environ.get("SHOP_UPSTREAM")
        if not url:
            raise HTTPException(status_code=503, detail="SHOP_UPSTREAM is not set")
        response = httpx.get(url, timeout=5.0)
        return {"upstream_status": response.status_code}

    @shop.get("/whoami")
    def whoami() -> dict[str, int]:
        # Which worker process answered (several-worker tests and demos).
        return {"pid": os.getpid()}

    @shop.get("/boom")
    def boom() -> Response:
        raise PaymentGatewayError("payment gateway exploded for card 4111111111111111")

    if instrument:
        otel_monitoring.instrument_app(shop, engine=engine, **settings)
    return shop


app = create_app(instrument=os.environ.get("SHOP_INSTRUMENT", "") == "1")
