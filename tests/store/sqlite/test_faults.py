"""Faults of the file never reach the caller: counted, kept, written once the fault clears."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

from persist_helpers import METRIC, T0, assert_agg_equal, feed, readonly_scenario, sum_agg

from otel_monitoring.alerting.model import Alert, AlertState
from otel_monitoring.audit import AuditRecord
from otel_monitoring.store.memory import Kind, MetricStore, SeriesKey
from otel_monitoring.store.sqlite import SqliteStore

ALL = staticmethod(lambda key: ("all",))


def _alert(alert_id: str) -> Alert:
    return Alert(
        id=alert_id,
        fingerprint="f",
        rule="high_latency",
        severity="warning",
        state=AlertState.FIRING,
        summary="slow",
        labels=(("route", "/a"),),
        value=2.0,
        threshold=1.0,
        started_s=T0,
        updated_s=T0,
    )


def _audit(reason: str) -> AuditRecord:
    return AuditRecord(
        id=1, at_s=T0, who="ops", action="resolve", target="a1", reason=reason, result="ok"
    )


def _combined(path: Path, metric: str, now_s: float) -> dict[object, object]:
    with SqliteStore(path) as reader:
        return reader.fold(metric, None, now_s, lambda key: ("all",))  # type: ignore[return-value]


def test_disk_full_is_counted_and_the_backlog_written_later(db_path: Path, caplog) -> None:
    memory = MetricStore()
    store = SqliteStore(db_path, max_size_bytes=64 * 1024)
    feed([memory, store], seed=5, series=40, intervals=30)  # far more than 64 KiB
    stats = store.persist_stats()
    assert stats.write_errors > 0 and stats.backlog > 0
    assert "database or disk is full" in caplog.text
    # reads go on, from memory for this process
    want = memory.fold(METRIC, None, T0 + 300, lambda key: ("all",))
    assert_agg_equal(
        store.fold(METRIC, None, T0 + 300, lambda key: ("all",))[("all",)], want[("all",)]
    )
    store.max_size_bytes = None  # space freed
    assert store.flush()
    assert store.persist_stats().backlog == 0
    store.close()
    assert_agg_equal(_combined(db_path, METRIC, T0 + 300)[("all",)], want[("all",)])


def test_locked_file_is_counted_and_the_backlog_written_later(db_path: Path) -> None:
    store = SqliteStore(db_path, busy_timeout_s=0.05)
    key = SeriesKey("hits", ())
    store.add(key, Kind.SUM, "1", T0, sum_agg(1))
    assert store.flush()
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    store.add(key, Kind.SUM, "1", T0 + 10, sum_agg(2))
    assert store.flush() is False
    store.save_alert(_alert("a1"))
    store.append_audit(_audit("while locked"))
    stats = store.persist_stats()
    assert stats.write_errors == 3
    assert stats.backlog >= 4  # 10 s bucket, total, alert, audit record
    assert store.fold("hits", None, T0 + 10, lambda k: ("x",))[("x",)].value == 3
    assert [a.id for a in store.load_alerts()] == ["a1"]
    assert [r.reason for r in store.audit_records(10)] == ["while locked"]
    blocker.execute("COMMIT")
    blocker.close()
    assert store.flush()
    store.close()
    with SqliteStore(db_path) as reader:
        assert reader.fold("hits", None, T0 + 10, lambda k: ("x",))[("x",)].value == 3
        assert reader.load_alerts() == [_alert("a1")]
        assert [r.reason for r in reader.audit_records(10)] == ["while locked"]


def test_backlog_is_bounded_dropping_the_oldest(db_path: Path) -> None:
    store = SqliteStore(db_path, busy_timeout_s=0.01, max_backlog=5)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    store.flush()  # creates the schema
    blocker.execute("BEGIN EXCLUSIVE")
    for i in range(4):
        store.add(SeriesKey("hits", (("i", str(i)),)), Kind.SUM, "1", T0, sum_agg(1))
    stats = store.persist_stats()
    assert stats.backlog == 5
    assert stats.dropped == 4 * 3 - 5  # 3 cells (10 s, 1 min, total) per series
    blocker.execute("ROLLBACK")
    blocker.close()
    store.close()


def test_readonly_file_is_counted_and_written_once_writable(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        result = readonly_scenario(str(tmp_path))
    else:  # root ignores permissions: run the scenario as an unprivileged user
        directory = tempfile.mkdtemp(prefix="otel-monitoring-ro-")
        os.chmod(directory, 0o777)
        try:
            # imports as root, then drops the effective uid: files are checked as "nobody"
            code = (
                "import json, os, sys; sys.path[:0] = [sys.argv[1]];"
                "from persist_helpers import readonly_scenario;"
                "os.setegid(65534); os.seteuid(65534);"
                "print(json.dumps(readonly_scenario(sys.argv[2])))"
            )
            done = subprocess.run(
                [sys.executable, "-c", code, str(Path(__file__).parent), directory],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
            result = json.loads(done.stdout)
        finally:
            subprocess.run(["rm", "-rf", directory], check=True)
    assert result == {
        "flushed_readonly": 0,
        "write_errors": 1,
        "backlog": 3,  # the 10 s bucket, the 1 min bucket and the total
        "during": 7,
        "flushed_after": 1,
        "after": 7,
    }
