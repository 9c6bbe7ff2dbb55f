"""Several workers sharing one SQLite store (uvicorn's, and gunicorn's forked from an arbiter
that imported the app: ``--preload``), and a restart after SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

SHOP = "otel_monitoring.demo.shop:app"
ADMIN = {"Authorization": "Bearer workers-admin-key"}


def _env(shop_env: dict[str, str], db: Path, **extra: str) -> dict[str, str]:
    return {
        **shop_env,
        "SHOP_INSTRUMENT": "1",
        "OTEL_MONITORING_STORE": f"sqlite:///{db}",
        "OTEL_MONITORING_INTERVAL": "500ms",
        "OTEL_MONITORING_API_KEY": "workers-admin-key:admin",
        # the tests poll the API; the limits are tested elsewhere
        "OTEL_MONITORING_RATE_LIMITS": ",".join(
            f"{name}=6000/minute" for name in ("alerts", "health", "endpoints")
        ),
        **extra,
    }


def _eventually(check: Callable[[], object], timeout_s: float = 60.0) -> None:
    """Poll ``check`` until it passes, bounded by ``timeout_s``.

    ``check`` asserts (with the value it saw as the message): the numbers appear only at a
    later collection, lease renewal or evaluation, which a loaded machine delays.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check() is not False:  # a check written to return a bool still counts
                return
            failure = "the check returned False"
        except AssertionError as exc:
            failure = str(exc)
        if time.monotonic() >= deadline:
            raise AssertionError(f"not reached within {timeout_s} s: {failure}")
        time.sleep(0.2)


def _fresh_get(url: str, **kwargs: Any) -> httpx.Response:
    # A new connection each time, so requests spread over the workers.
    return httpx.get(url, headers={"Connection": "close", **ADMIN}, timeout=10, **kwargs)


def _workers_argv(server_kind: str, port: int, uvicorn_cmd: Any) -> list[str]:
    if server_kind == "uvicorn":
        return [*uvicorn_cmd(SHOP, port), "--workers", "2"]
    # the arbiter imports the app (and so instruments it), then forks the workers
    gunicorn = [str(Path(sys.executable).parent / "gunicorn"), "--preload", "-w", "2"]
    return [*gunicorn, "-k", "uvicorn.workers.UvicornWorker", "-b", f"127.0.0.1:{port}", SHOP]


@pytest.mark.parametrize("server_kind", ["uvicorn", "gunicorn-preload"])
def test_two_workers_report_the_combined_numbers(
    server_kind: str,
    start_server: Callable[..., Any],
    port: int,
    shop_env: dict[str, str],
    uvicorn_cmd: Any,
    tmp_path: Path,
) -> None:
    """Under ``gunicorn --preload`` the workers inherited the monitor but none of its threads:
    none wrote the file or evaluated an alert (each answered with its own requests)."""
    db = tmp_path / "monitoring.db"
    argv = _workers_argv(server_kind, port, uvicorn_cmd)
    server = start_server(argv, _env(shop_env, db, OTEL_MONITORING_LATENCY_THRESHOLD_MS="30"), port)
    pids: set[int] = set()
    sent = 0

    def both_workers_up() -> None:
        # the second worker may still be starting (seen on a loaded CI machine)
        nonlocal sent
        for _ in range(10):
            pids.add(_fresh_get(server.url + "/whoami").json()["pid"])
            sent += 1
        assert len(pids) == 2, f"workers answering so far: {pids}"

    _eventually(both_workers_up, timeout_s=60.0)
    for i in range(120):
        response = _fresh_get(server.url + ("/whoami" if i % 2 else "/slow"), params={"ms": 40})
        assert response.status_code == 200
        sent += 1
        if i % 2:
            pids.add(response.json()["pid"])
    assert len(pids) == 2, "both workers served requests"

    def combined() -> None:
        answers = [_fresh_get(server.url + "/monitoring/health").json() for _ in range(6)]
        totals = [a["total_requests"] for a in answers]
        assert all(total == sent for total in totals), f"sent {sent}, workers counted {totals}"

    _eventually(combined)

    def same_views() -> None:
        # A worker counts its own requests from memory at once, the other's once they are
        # written to the file (each collection): the 6 answers above may all have come from
        # one worker, so the other may still be an interval behind.
        views = [
            {
                (e["route"], e["requests"], e["latency"]["p95_ms"])
                for e in _fresh_get(
                    server.url + "/monitoring/endpoints", params={"window": "5m"}
                ).json()
            }
            for _ in range(6)
        ]
        assert all(view == views[0] for view in views), (
            f"every worker answers with the same numbers: {views}"
        )
        assert ("/slow", 60) in {(route, n) for route, n, _ in views[0]}, views[0]

    _eventually(same_views)

    # one worker evaluates: one alert per condition, the same id through every worker
    def one_alert() -> None:
        # /slow (40 ms) over the 30-ms threshold; on a loaded machine a fast route can cross
        # it too and have its own alert, so the condition checked is /slow's alone.
        lists = [
            [
                a
                for a in _fresh_get(server.url + "/monitoring/alerts").json()
                if a["labels"].get("route") == "/slow"
            ]
            for _ in range(4)
        ]
        assert all(len(a) == 1 and a[0]["id"] == lists[0][0]["id"] for a in lists), lists

    _eventually(one_alert)
    with sqlite3.connect(db) as connection:
        (holder,) = connection.execute("SELECT holder FROM leases").fetchone()
    leader = int(str(holder).rpartition(":")[2])
    if server_kind == "uvicorn":
        assert leader in pids
        # the leader dies: another worker takes the lease and evaluation goes on
        os.kill(leader, signal.SIGKILL)

        def new_leader() -> None:
            with sqlite3.connect(db) as connection:
                row = connection.execute("SELECT holder FROM leases").fetchone()
            assert row is not None and int(str(row[0]).rpartition(":")[2]) != leader, (
                f"lease holder {row} (the killed leader was {leader})"
            )

        _eventually(new_leader)
    else:  # the arbiter, which has the monitor too, may hold the lease (killing it stops all)
        assert leader in {*pids, server.proc.pid}
    for _ in range(20):  # a new condition only a live evaluator can notice: errors
        assert _fresh_get(server.url + "/boom").status_code == 500

    def error_alert() -> None:
        alerts = _fresh_get(server.url + "/monitoring/alerts").json()
        assert any(a["rule"] == "high_error_rate" for a in alerts), alerts

    _eventually(error_alert)


def test_history_resolution_and_audit_survive_sigkill(
    start_server: Callable[..., Any],
    port: int,
    shop_env: dict[str, str],
    uvicorn_cmd: Any,
    tmp_path: Path,
) -> None:
    db = tmp_path / "monitoring.db"
    env = _env(shop_env, db, OTEL_MONITORING_LATENCY_THRESHOLD_MS="30")
    server = start_server(uvicorn_cmd(SHOP, port), env, port)
    with httpx.Client(base_url=server.url, headers=ADMIN, timeout=10) as client:
        for _ in range(8):
            assert client.get("/slow", params={"ms": 40}).status_code == 200
        for _ in range(8):
            assert client.get("/categories/1/items").status_code == 200  # more traffic, fast

        def alerted() -> None:
            alerts = client.get("/monitoring/alerts").json()
            assert len(alerts) >= 1, alerts

        _eventually(alerted)
        alert = client.get("/monitoring/alerts").json()[0]
        resolved = client.post(
            f"/monitoring/alerts/{alert['id']}/resolve", json={"reason": "known incident"}
        )
        assert resolved.status_code == 200
        requests_before = client.get("/monitoring/health").json()["total_requests"]

    def written() -> None:  # the resolution and this interval's numbers are in the file
        with sqlite3.connect(db) as connection:
            bodies = [row[0] for row in connection.execute("SELECT body FROM alerts")]
            (counted,) = connection.execute(
                "SELECT COALESCE(SUM(b.count), 0) FROM buckets b JOIN series s"
                " ON b.series = s.id WHERE b.width = 0 AND s.metric = ?",
                ("http.server.request.duration",),
            ).fetchone()
        assert any("known incident" in body for body in bodies), bodies
        assert counted >= requests_before, f"{counted} of {requests_before} requests in the file"

    _eventually(written)

    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)
    restarted = start_server(uvicorn_cmd(SHOP, port), env, port)
    with httpx.Client(base_url=restarted.url, headers=ADMIN, timeout=10) as client:
        history = client.get("/monitoring/alerts", params={"state": "resolved"}).json()
        mine = [a for a in history if a["id"] == alert["id"]]
        assert mine, history
        assert mine[0]["resolution_reason"] == "known incident"
        assert mine[0]["resolved_by"].startswith("key:")
        assert [h["state"] for h in mine[0]["history"]][-1] == "resolved"
        audit = client.get("/monitoring/audit").json()
        assert any(
            r["action"] == "resolve_alert"
            and r["target"] == alert["id"]
            and r["result"] == "resolved"
            for r in audit
        )
        assert client.get("/monitoring/health").json()["total_requests"] >= requests_before


def test_a_locked_store_never_hurts_requests_and_writes_resume(
    start_server: Callable[..., Any],
    port: int,
    shop_env: dict[str, str],
    uvicorn_cmd: Any,
    tmp_path: Path,
) -> None:
    db = tmp_path / "monitoring.db"
    server = start_server(uvicorn_cmd(SHOP, port), _env(shop_env, db), port)

    def leading() -> None:  # the worker has written the file and holds the lease
        try:
            with sqlite3.connect(db) as connection:
                holder = connection.execute("SELECT holder FROM leases").fetchone()
        except sqlite3.Error as exc:
            raise AssertionError(f"the file is not readable yet: {exc}") from None
        assert holder is not None, "no lease holder yet"

    _eventually(leading)
    blocker = sqlite3.connect(db, timeout=1.0, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # every write of the app now fails (locked)
    try:
        statuses = [_fresh_get(server.url + f"/items/{1 + i % 9}").status_code for i in range(60)]
        statuses += [_fresh_get(server.url + "/boom").status_code for _ in range(25)]
        assert statuses == [200] * 60 + [500] * 25

        def counted_in_memory() -> None:  # at the next collection, whatever the file does
            health = _fresh_get(server.url + "/monitoring/health").json()
            assert health["total_requests"] >= 85, health

        _eventually(counted_in_memory)

        def evaluated_in_memory() -> None:
            alerts = _fresh_get(server.url + "/monitoring/alerts").json()
            assert any(a["rule"] == "high_error_rate" for a in alerts), alerts

        _eventually(evaluated_in_memory)  # alert evaluation went on while the file was locked
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    def persisted() -> None:
        from otel_monitoring.store.sqlite import SqliteStore

        reader = SqliteStore.from_url(f"sqlite:///{db}", retention_s=86400, max_series=100)
        try:
            folded = reader.fold(
                "http.server.request.duration", None, time.time(), lambda k: ("all",)
            )
            assert folded and folded[("all",)].count == 85, folded
        finally:
            reader.close()

    _eventually(persisted)
