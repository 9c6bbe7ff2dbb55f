"""Alerts, the audit trail and leases of :class:`~otel_monitoring.persist.sqlite.SqliteStore`.

A mixin: the store owns the connections, locks and backlog these methods use; they are kept
here so each module holds one kind of thing (bucketed metrics there, records here).
"""

from __future__ import annotations

import math
import sqlite3
import threading
from pathlib import Path

from otel_monitoring.alerts import Alert, alert_from_json
from otel_monitoring.audit import AuditRecord
from otel_monitoring.guard import Guard
from otel_monitoring.persist import records
from otel_monitoring.persist.schema import transaction

__all__ = ["SharedRecords"]


class SharedRecords:
    """Alert, audit and lease methods of the SQLite store (see the module docstring)."""

    guard: Guard
    path: Path
    max_backlog: int
    dropped: int
    read_errors: int
    _seq: int
    _alerts: dict[str, Alert]
    _known_alerts: dict[str, Alert]
    _audit: dict[int, AuditRecord]
    _audit_written: list[AuditRecord]
    _held: dict[tuple[str, str], float]
    _pending_lock: threading.Lock
    _write_lock: threading.Lock
    _read_lock: threading.Lock

    def _check_fork(self) -> None:
        raise NotImplementedError

    def _writer_conn(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _reader_conn(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _write_failed(self, what: str, exc: sqlite3.Error) -> None:
        raise NotImplementedError

    def _read_failed(self, what: str, exc: sqlite3.Error) -> None:
        raise NotImplementedError

    def _flush(self, *, with_buckets: bool) -> bool:
        raise NotImplementedError

    # -- alerts and audit --------------------------------------------------------------------
    def save_alert(self, alert: Alert) -> None:
        """Insert or replace the alert with ``alert.id``. Never raises (kept for retry)."""
        self._check_fork()
        with self._pending_lock:
            self._known_alerts[alert.id] = alert
            self._alerts[alert.id] = alert
            while len(self._alerts) > self.max_backlog:
                del self._alerts[next(iter(self._alerts))]
                self.dropped += 1
        with self._write_lock:
            self._flush(with_buckets=False)

    def load_alerts(self) -> list[Alert]:
        """Every stored alert (active and resolved, of every process), oldest first.

        Alerts saved by this process but not written yet are included; if the file cannot be
        read, the alerts this process saved or loaded before.
        """
        self._check_fork()
        found: dict[str, Alert] = {}
        with self._read_lock:
            try:
                bodies = records.read_alert_bodies(self._reader_conn())
            except sqlite3.Error as exc:
                self._read_failed("reading alerts from", exc)
                bodies = None
        with self._pending_lock:
            if bodies is None:
                found.update(self._known_alerts)
            for body in bodies or ():
                try:
                    alert = alert_from_json(body)
                except ValueError as exc:
                    self.read_errors += 1
                    self.guard.error(f"monitoring store: an alert in {self.path}", exc)
                    continue
                found[alert.id] = self._known_alerts[alert.id] = alert
            found.update(self._alerts)
        return sorted(found.values(), key=lambda a: (a.updated_s, a.id))

    def append_audit(self, record: AuditRecord) -> None:
        """Append a record. Never raises (kept for retry); there is no way to edit or remove
        one: the file's triggers refuse ``UPDATE`` and ``DELETE`` on the audit table.
        """
        self._check_fork()
        with self._pending_lock:
            self._seq += 1
            self._audit[self._seq] = record
            while len(self._audit) > self.max_backlog:
                del self._audit[next(iter(self._audit))]
                self.dropped += 1
        with self._write_lock:
            self._flush(with_buckets=False)

    def audit_records(self, limit: int = 100) -> list[AuditRecord]:
        """The newest ``limit`` records of every process, newest first.

        Stored records carry the file's sequence number as ``id`` (unique across processes);
        records not written yet come first with the ``id`` they were given. If the file
        cannot be read: this process's records only.
        """
        self._check_fork()
        with self._pending_lock:
            pending = list(self._audit.values())[::-1]
            fallback = self._audit_written[::-1]
        with self._read_lock:
            try:
                stored = records.read_audit(self._reader_conn(), limit)
            except sqlite3.Error as exc:
                self._read_failed("reading the audit trail from", exc)
                stored = fallback
        return (pending + stored)[:limit]

    # -- deployed versions -------------------------------------------------------------------
    def note_version(self, version: str, now_s: float) -> None:
        """Record ``version`` as first seen at ``now_s`` unless the file knows it (kept in
        memory too, so a failed write still labels this process's data). Never raises."""
        self._check_fork()
        super().note_version(version, now_s)  # type: ignore[misc]
        with self._write_lock:
            try:
                with transaction(self._writer_conn()) as conn:
                    conn.execute(
                        "INSERT OR IGNORE INTO versions (version, first_s) VALUES (?, ?)",
                        (version, now_s),
                    )
            except sqlite3.Error as exc:
                self._write_failed("recording the service version in", exc)

    def versions(self) -> list[tuple[float, str]]:
        """``(first seen, version)`` of every process that wrote the file, oldest first."""
        self._check_fork()
        known: dict[str, float] = {v: t for t, v in super().versions()}  # type: ignore[misc]
        with self._read_lock:
            try:
                rows = self._reader_conn().execute("SELECT version, first_s FROM versions")
                for version, first_s in rows:
                    known[str(version)] = min(float(first_s), known.get(version, math.inf))
            except sqlite3.Error as exc:
                self._read_failed("reading service versions from", exc)
        return sorted((t, v) for v, t in known.items())

    # -- leases ------------------------------------------------------------------------------
    def try_lease(self, name: str, holder: str, ttl_s: float, now_s: float) -> bool:
        """Take or renew the lease ``name`` for ``holder`` until ``now_s + ttl_s`` (seconds).

        ``True`` when ``holder`` holds it now. Another holder gets it only once the current
        one's expiry has passed, so a dead worker's lease lapses after ``ttl_s``. If the file
        cannot be written, a holder keeps a lease it already had until its known expiry (no
        one else can take it before that either) and gets no new one. Never raises.

        Raises:
            ValueError: ``ttl_s`` is not positive (misuse, at setup).
        """
        if not ttl_s > 0:
            raise ValueError(f"lease ttl_s must be positive, not {ttl_s}")
        self._check_fork()
        with self._write_lock:
            try:
                with transaction(self._writer_conn()) as conn:
                    held = records.acquire_lease(conn, name, holder, ttl_s, now_s)
            except sqlite3.Error as exc:
                self._write_failed("taking a lease in", exc)
                return now_s < self._held.get((name, holder), -math.inf)
        if held:
            self._held[(name, holder)] = now_s + ttl_s
        else:
            self._held.pop((name, holder), None)
        return held

    def release(self, name: str, holder: str) -> None:
        """Give the lease up (if ``holder`` holds it) so another may take it at once."""
        self._check_fork()
        self._held.pop((name, holder), None)
        with self._write_lock:
            try:
                with transaction(self._writer_conn()) as conn:
                    records.release_lease(conn, name, holder)
            except sqlite3.Error as exc:
                self._write_failed("releasing a lease in", exc)
