"""A damaged store file costs the monitoring, never the app: a real uvicorn app keeps serving
while every file of its SQLite store is truncated and made immutable under it, and the store
writes again, exactly, once the files are writable.

With the WAL journal this killed the whole process with SIGBUS (SQLite maps the ``-shm``
file, and a truncated mapping faults on the next access); the test asserts the process
lives and answers, so it fails on that design. And a store pointed at another application's
database stops the app at start with one line naming the variable, writing nothing.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

SHOP = "otel_monitoring.demo.shop:app"
ADMIN = {"Authorization": "Bearer faults-admin-key"}
METRIC = "http.server.request.duration"


def _env(shop_env: dict[str, str], db: Path) -> dict[str, str]:
    return {
        **shop_env,
        "SHOP_INSTRUMENT": "1",
        "OTEL_MONITORING_STORE": f"sqlite:///{db}",
        "OTEL_MONITORING_INTERVAL": "500ms",
        "OTEL_MONITORING_API_KEY": "faults-admin-key:admin",
        "OTEL_MONITORING_RATE_LIMITS": ",".join(
            f"{name}=6000/minute" for name in ("alerts", "health", "endpoints", "audit")
        ),
    }


def _eventually(check: Callable[[], object], timeout_s: float = 60.0) -> None:
    """Poll ``check`` (it asserts, with what it saw) until it passes, bounded by ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            check()
            return
        except AssertionError as exc:
            failure = str(exc)
        if time.monotonic() >= deadline:
            raise AssertionError(f"not reached within {timeout_s} s: {failure}")
        time.sleep(0.2)


def _make_immutable(path: Path) -> bool:
    """``chattr +i`` ``path``; ``True`` if it now refuses writes (root ignores ``chmod``)."""
    subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    try:
        with path.open("r+b"):
            return False
    except PermissionError:
        return True


@pytest.fixture
def immutable() -> Iterator[list[Path]]:
    """Files a test made immutable; made mutable again at teardown (so tmp can be removed)."""
    made: list[Path] = []
    yield made
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True, check=False)


def test_truncated_immutable_store_files_never_kill_the_app(
    start_server: Callable[..., Any],
    port: int,
    shop_env: dict[str, str],
    uvicorn_cmd: Any,
    tmp_path: Path,
    immutable: list[Path],
) -> None:
    db = tmp_path / "monitoring.db"
    server = start_server(uvicorn_cmd(SHOP, port), _env(shop_env, db), port)
    # a new connection per request: /boom ends its connection with the 500
    client = httpx.Client(base_url=server.url, headers={"Connection": "close", **ADMIN}, timeout=10)

    def written() -> None:  # the worker has written the file and holds the lease
        connection = sqlite3.connect(db)  # closed at once: it must not see the fault
        try:
            holder = connection.execute("SELECT holder FROM leases").fetchone()
        except sqlite3.Error as exc:
            raise AssertionError(f"the file is not readable yet: {exc}") from None
        finally:
            connection.close()
        assert holder is not None, "no lease holder yet"

    for i in range(20):
        assert client.get(f"/items/{1 + i % 9}").status_code == 200
    _eventually(written)

    # Every file of the store: the database and whatever its journal keeps beside it
    # (WAL: -wal and -shm, which SQLite maps into memory; a rollback journal: -journal).
    files = [db.with_name(db.name + s) for s in ("-shm", "-wal", "-journal")] + [db]
    damaged = [path for path in files if path.exists()]
    assert db in damaged and len(damaged) >= 2, damaged
    for path in damaged:
        os.truncate(path, 0)
        if _make_immutable(path):
            immutable.append(path)
    assert db in immutable, "chattr +i must work here: the test runs the real fault"

    def status(path: str) -> int:
        try:
            return client.get(path).status_code
        except httpx.TransportError as exc:
            time.sleep(0.5)  # let a dying process finish dying, to report how it died
            raise AssertionError(f"the app died (exit {server.proc.poll()}): {exc}") from None

    statuses = []
    for i in range(40):
        statuses.append(status(f"/items/{1 + i % 9}"))
        # the monitoring's own reads go to the file too
        statuses.append(status("/monitoring/endpoints?window=all"))
        statuses.append(status("/monitoring/audit"))
    statuses += [status("/boom") for _ in range(5)]
    assert statuses == [200] * 120 + [500] * 5

    def fault_shown() -> None:  # at the next collections, whatever the file does
        health = client.get("/monitoring/health").json()
        store = health["self_telemetry"]["store"]
        assert store["write_errors"] > 0 and store["backlog"] > 0, health
        assert any("monitoring store" in reason for reason in health["reasons"]), health
        assert health["total_requests"] >= 65, health

    _eventually(fault_shown)
    assert server.proc.poll() is None, server.output()
    assert [client.get("/items/3").status_code for _ in range(10)] == [200] * 10
    assert "not affected" in server.output()  # logged (rate-limited), not raised

    for path in immutable:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    immutable.clear()

    def recovered() -> None:  # the backlog is written into the emptied file: totals exact
        health = client.get("/monitoring/health").json()
        assert health["self_telemetry"]["store"]["backlog"] == 0, health
        assert not any("monitoring store" in reason for reason in health["reasons"]), health
        from otel_monitoring.store.sqlite import SqliteStore

        reader = SqliteStore(db, retention_s=86400, max_series=100)
        try:
            folded = reader.fold(METRIC, None, time.time(), lambda k: ("all",))
        finally:
            reader.close()
        assert folded and folded[("all",)].count == health["total_requests"], (folded, health)
        assert health["total_requests"] >= 75, health

    _eventually(recovered)
    assert server.proc.poll() is None


def test_a_foreign_database_stops_the_app_at_start_and_stays_untouched(
    port: int, shop_env: dict[str, str], uvicorn_cmd: Any, tmp_path: Path
) -> None:
    """A store pointed at another application's database: uvicorn does not start, its output
    names the variable, and the application's file (and its ``audit`` table) is as it was."""
    app_db = tmp_path / "orders.db"
    conn = sqlite3.connect(app_db, isolation_level=None)
    conn.executescript(
        "CREATE TABLE series (id INTEGER PRIMARY KEY, name TEXT);"
        "CREATE TABLE audit (id INTEGER PRIMARY KEY, who TEXT, what TEXT);"
        "INSERT INTO audit (who, what) VALUES ('ann', 'refund'), ('bob', 'refund');"
    )
    conn.close()
    before = app_db.read_bytes()
    done = subprocess.run(
        uvicorn_cmd(SHOP, port),
        env={**os.environ, **_env(shop_env, app_db)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "invalid setting OTEL_MONITORING_STORE:" in output, output
    assert f"{str(app_db)!r} is not a monitoring store" in output, output
    assert app_db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("orders")) == [
        "orders.db"
    ]
    conn = sqlite3.connect(app_db, isolation_level=None)
    try:
        conn.execute("DELETE FROM audit")
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (0,)
    finally:
        conn.close()
