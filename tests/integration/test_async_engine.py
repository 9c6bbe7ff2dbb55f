"""An async SQLAlchemy engine (``create_async_engine``) under a real uvicorn, given to
``instrument_app`` or left to zero-code mode: DB timings and N+1 patterns as for a sync
engine. (SQLAlchemy has no async events: listening on the ``AsyncEngine`` itself raised at
``instrument_app``.)"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

APP = "tests.integration.async_db_app:app"
INSTRUMENT = str(Path(sys.executable).parent / "opentelemetry-instrument")


@pytest.mark.parametrize("mode", ["code", "zero-code"])
def test_an_async_engine_gets_db_timings_and_n_plus_one(
    mode: str,
    start_server: Callable[..., Any],
    uvicorn_cmd: Callable[..., list[str]],
    port: int,
    another_port: Callable[[], int],
    tmp_path: Path,
) -> None:
    env = {"OTEL_MONITORING_INTERVAL": "1s", "ASYNC_DB_PATH": str(tmp_path / "orders.db")}
    api = None
    if mode == "zero-code":
        api_port = another_port()
        api = f"http://127.0.0.1:{api_port}"
        env.update(
            ASYNC_DB_ZERO_CODE="1",
            OTEL_MONITORING_PORT=str(api_port),
            OTEL_TRACES_EXPORTER="none",
            OTEL_METRICS_EXPORTER="none",
            OTEL_LOGS_EXPORTER="none",
        )
    cmd = uvicorn_cmd(APP, port, INSTRUMENT) if api else uvicorn_cmd(APP, port)
    server = start_server(cmd, env, port, ready_path="/openapi.json")
    with httpx.Client(base_url=server.url, timeout=10) as app_client:
        for i in range(1, 4):
            assert app_client.get(f"/orders/{i}").json() == {"id": i}
        listing = app_client.get("/orders").json()
        assert [o["lines"] for o in listing] == [[[f"sku-{i}", 1]] for i in range(1, 7)]
    with httpx.Client(base_url=api or server.url, timeout=10) as client:
        deadline = time.monotonic() + 25  # polled twice a second: under the 60/min limit
        while True:
            try:
                db = client.get("/monitoring/db", params={"window": "5m"}).json()
            except httpx.TransportError:  # the side port's thread may lag the app
                db = []
            counts = {row["summary"]: row["count"] for row in db}
            if counts.get("SELECT lines") == 6:
                break
            assert time.monotonic() < deadline, db
            time.sleep(0.5)
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
