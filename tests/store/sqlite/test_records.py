"""Alerts (upsert), the audit trail (append-only) and leases, shared through the file."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest
from persist_helpers import T0

from otel_monitoring.alerting.model import Alert, AlertEvent, AlertState
from otel_monitoring.audit import AuditRecord
from otel_monitoring.store.sqlite import SqliteStore


def _alert(alert_id: str, state: AlertState = AlertState.FIRING, at_s: float = T0) -> Alert:
    return Alert(
        id=alert_id,
        fingerprint="fp-" + alert_id,
        rule="high_latency",
        severity="warning",
        state=state,
        summary="p95 above 1000 ms",
        labels=(("route", "/a"),),
        value=1500.0,
        threshold=1000.0,
        started_s=T0,
        updated_s=at_s,
        history=(AlertEvent(T0, AlertState.FIRING, "fired"),),
    )


def _audit(reason: str) -> AuditRecord:
    return AuditRecord(
        id=1, at_s=T0, who="key:ops", action="resolve", target="a1", reason=reason, result="ok"
    )


def test_alerts_upsert_by_id_and_survive_restart(db_path: Path) -> None:
    with SqliteStore(db_path) as store:
        store.save_alert(_alert("a1"))
        store.save_alert(_alert("a2"))
        resolved = dataclasses.replace(
            _alert("a1", AlertState.RESOLVED, T0 + 60),
            resolved_s=T0 + 60,
            resolved_by="ops",
            resolution_reason="deployed fix",
        )
        store.save_alert(resolved)
    with SqliteStore(db_path) as reopened:
        assert reopened.load_alerts() == [_alert("a2"), resolved]


def test_audit_is_append_only_newest_first_and_survives_restart(db_path: Path) -> None:
    with SqliteStore(db_path) as store, SqliteStore(db_path) as other:
        store.append_audit(_audit("first"))
        other.append_audit(_audit("second"))
        store.append_audit(_audit("third"))
    with SqliteStore(db_path) as reopened:
        records = reopened.audit_records(10)
        assert [r.reason for r in records] == ["third", "second", "first"]
        assert [r.id for r in records] == [3, 2, 1]  # unique across processes
        assert reopened.audit_records(1)[0].reason == "third"
        assert not hasattr(reopened, "update_audit") and not hasattr(reopened, "delete_audit")
    # not even SQL on the file changes a record
    conn = sqlite3.connect(db_path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET reason = 'forged' WHERE seq = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit")
    conn.close()
    with SqliteStore(db_path) as reopened:
        assert [r.reason for r in reopened.audit_records(10)] == ["third", "second", "first"]


def test_lease_is_exclusive_until_it_expires(open_store) -> None:
    worker_a, worker_b = open_store(), open_store()
    assert worker_a.try_lease("alerts", "a", ttl_s=30.0, now_s=T0)
    assert not worker_b.try_lease("alerts", "b", ttl_s=30.0, now_s=T0 + 1)
    assert worker_a.try_lease("alerts", "a", ttl_s=30.0, now_s=T0 + 20)  # renewed to T0 + 50
    assert not worker_b.try_lease("alerts", "b", ttl_s=30.0, now_s=T0 + 40)
    # "a" dies: its lease lapses
    assert worker_b.try_lease("alerts", "b", ttl_s=30.0, now_s=T0 + 50)
    assert not worker_a.try_lease("alerts", "a", ttl_s=30.0, now_s=T0 + 51)
    assert worker_a.try_lease("other", "a", ttl_s=30.0, now_s=T0 + 51)  # leases are by name


def test_release_lets_another_holder_in_at_once(open_store) -> None:
    worker_a, worker_b = open_store(), open_store()
    assert worker_a.try_lease("alerts", "a", ttl_s=30.0, now_s=T0)
    worker_b.release("alerts", "b")  # not the holder: no effect
    assert not worker_b.try_lease("alerts", "b", ttl_s=30.0, now_s=T0 + 1)
    worker_a.release("alerts", "a")
    assert worker_b.try_lease("alerts", "b", ttl_s=30.0, now_s=T0 + 1)


def test_lease_while_the_file_is_locked_keeps_only_what_is_held(open_store, db_path: Path) -> None:
    worker_a = open_store(busy_timeout_s=0.01)
    assert worker_a.try_lease("alerts", "a", ttl_s=30.0, now_s=T0)
    blocker = sqlite3.connect(db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    assert worker_a.try_lease("alerts", "a", ttl_s=30.0, now_s=T0 + 10)  # until T0 + 30
    assert not worker_a.try_lease("alerts", "a", ttl_s=30.0, now_s=T0 + 31)
    assert not worker_a.try_lease("new", "a", ttl_s=30.0, now_s=T0 + 10)
    assert worker_a.persist_stats().write_errors == 3
    blocker.execute("ROLLBACK")
    blocker.close()


def test_lease_ttl_must_be_positive(open_store) -> None:
    with pytest.raises(ValueError, match="ttl_s"):
        open_store().try_lease("alerts", "a", ttl_s=0.0, now_s=T0)
