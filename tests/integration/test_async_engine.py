"""An async SQLAlchemy engine (``create_async_engine``) under a real uvicorn, given to
``instrument_app`` or left to zero-code mode: DB timings and N+1 patterns as for a sync
engine. (SQLAlchemy has no async events: listening on the ``AsyncEngine`` itself raised at
``instrument_app``.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_modes import APP_MODES, api_until

APP = "tests.integration.async_db_app:app"


@pytest.mark.parametrize("mode", APP_MODES)
def test_an_async_engine_gets_db_timings_and_n_plus_one(
    mode: str, serve_app: Callable[..., Any], tmp_path: Path
) -> None:
    env = {"ASYNC_DB_PATH": str(tmp_path / "orders.db")}
    server = serve_app(APP, mode, env, "/openapi.json")
    with httpx.Client(base_url=server.url, timeout=10) as app_client:
        for i in range(1, 4):
            assert app_client.get(f"/orders/{i}").json() == {"id": i}
        listing = app_client.get("/orders").json()
        assert [o["lines"] for o in listing] == [[[f"sku-{i}", 1]] for i in range(1, 7)]
    db = api_until(
        server.api,
        "/monitoring/db",
        lambda rows: any(r["summary"] == "SELECT lines" and r["count"] == 6 for r in rows),
        {"window": "5m"},
    )
    counts = {row["summary"]: row["count"] for row in db}
    with httpx.Client(base_url=server.api, timeout=10) as client:
        # the three look-ups and the list; the start's schema and rows are there too
        assert counts["SELECT orders"] == 4, db
        assert counts["INSERT lines"] == 6, db
        assert all(row["system"] == "sqlite" and row["avg_ms"] > 0 for row in db), db
        lines = "SELECT sku, qty FROM lines WHERE order_id = ?"
        patterns = client.get("/monitoring/db/n-plus-one").json()
        assert [(p["statement"], p["route"], p["count"]) for p in patterns] == [
            (lines, "/orders", 6)
        ], patterns
    assert "Traceback" not in server.output(), server.output()
