"""SQL for what is not a metric: alerts (upsert), the audit trail (append-only) and leases.

Each function runs inside the caller's transaction (see :func:`.schema.transaction`) or, for
reads, on any connection; they raise :class:`sqlite3.Error` and leave retrying to the store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from otel_monitoring.alerting.model import Alert, alert_to_json
from otel_monitoring.audit import AuditRecord

__all__ = [
    "acquire_lease",
    "append_audit",
    "read_alert_bodies",
    "read_audit",
    "release_lease",
    "upsert_alerts",
]


def upsert_alerts(conn: sqlite3.Connection, alerts: Iterable[Alert]) -> None:
    """Insert or replace each alert by id (the JSON of :func:`alert_to_json`)."""
    conn.executemany(
        "INSERT INTO alerts (id, updated_s, body) VALUES (?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET updated_s = excluded.updated_s, body = excluded.body",
        [(alert.id, alert.updated_s, alert_to_json(alert)) for alert in alerts],
    )


def read_alert_bodies(conn: sqlite3.Connection) -> list[str]:
    """Every stored alert's JSON, oldest update first."""
    return [row[0] for row in conn.execute("SELECT body FROM alerts ORDER BY updated_s, id")]


def append_audit(conn: sqlite3.Connection, records: Iterable[AuditRecord]) -> None:
    """Append records; the file assigns each a new sequence number (its stored ``id``)."""
    conn.executemany(
        "INSERT INTO audit (at_s, who, action, target, reason, result) VALUES (?, ?, ?, ?, ?, ?)",
        [(r.at_s, r.who, r.action, r.target, r.reason, r.result) for r in records],
    )


def read_audit(conn: sqlite3.Connection, limit: int) -> list[AuditRecord]:
    """The newest ``limit`` records, newest first, ``id`` being the file's sequence number."""
    rows = conn.execute(
        "SELECT seq, at_s, who, action, target, reason, result FROM audit"
        " ORDER BY seq DESC LIMIT ?",
        (limit,),
    )
    return [AuditRecord(*row) for row in rows]


def acquire_lease(
    conn: sqlite3.Connection, name: str, holder: str, ttl_s: float, now_s: float
) -> bool:
    """Take or renew ``name`` for ``holder`` until ``now_s + ttl_s`` unless another holds it.

    Another holder's lease counts as held while ``now_s < expires_s``.
    """
    row = conn.execute("SELECT holder, expires_s FROM leases WHERE name = ?", (name,)).fetchone()
    if row is not None and row[0] != holder and now_s < row[1]:
        return False
    conn.execute(
        "INSERT INTO leases (name, holder, expires_s) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
        " expires_s = excluded.expires_s",
        (name, holder, now_s + ttl_s),
    )
    return True


def release_lease(conn: sqlite3.Connection, name: str, holder: str) -> bool:
    """Give ``name`` up if ``holder`` holds it; ``True`` when it did."""
    cursor = conn.execute("DELETE FROM leases WHERE name = ? AND holder = ?", (name, holder))
    return cursor.rowcount > 0
