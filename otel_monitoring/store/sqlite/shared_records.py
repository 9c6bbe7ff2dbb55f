"""The record tables of a :class:`~.store.SqliteStore`: alerts, audit trail, versions, leases.

:class:`RecordTables` takes the store's :class:`~.store_file.StoreFile` (connections, locks,
fault counters) and holds what is pending for those tables; the store writes the pending
alerts and audit records in the same transaction as its buckets (see
:meth:`RecordTables.pending` and :meth:`RecordTables.write`). The store checks for ``fork``
(:meth:`~.store_file.StoreFile.check_fork`) before calling any method here.
"""

from __future__ import annotations

import math
import sqlite3

from otel_monitoring.alerting.model import Alert, alert_from_json
from otel_monitoring.audit import AuditRecord
from otel_monitoring.store.sqlite import records
from otel_monitoring.store.sqlite.schema import transaction
from otel_monitoring.store.sqlite.store_file import StoreFile

__all__ = ["RecordTables"]

_WRITTEN_KEPT = 10_000  # audit records kept in memory as the fallback of reads


class RecordTables:
    """Alert, audit, version and lease records of the SQLite store (see the module docstring).

    Args:
        file: the store's file.
        max_backlog: alerts, and audit records, kept for retry while the file cannot be
            written (each; the oldest is dropped and counted in ``file.dropped`` past it).
    """

    def __init__(self, file: StoreFile, *, max_backlog: int) -> None:
        self._file = file
        self.max_backlog = max_backlog
        self._seq = 0
        self._alerts: dict[str, Alert] = {}  # pending write
        self._known_alerts: dict[str, Alert] = {}  # fallback for reads
        self._audit: dict[int, AuditRecord] = {}  # pending write, by sequence
        self._audit_written: list[AuditRecord] = []  # fallback for reads (bounded)
        self._held: dict[tuple[str, str], float] = {}  # leases we hold -> expiry
        file.on_fork(self._forget_pending)

    def _forget_pending(self) -> None:
        """A forked child writes none of its parent's pending records."""
        with self._file.pending_lock:
            self._alerts.clear()
            self._audit.clear()

    # -- the backlog, written with the store's buckets ---------------------------------------
    def queue_alert(self, alert: Alert) -> None:
        """Keep ``alert`` for the next write (and for reads meanwhile)."""
        with self._file.pending_lock:
            self._known_alerts[alert.id] = alert
            self._alerts[alert.id] = alert
            while len(self._alerts) > self.max_backlog:
                del self._alerts[next(iter(self._alerts))]
                self._file.dropped += 1

    def queue_audit(self, record: AuditRecord) -> None:
        """Keep ``record`` for the next write (and for reads meanwhile)."""
        with self._file.pending_lock:
            self._seq += 1
            self._audit[self._seq] = record
            while len(self._audit) > self.max_backlog:
                del self._audit[next(iter(self._audit))]
                self._file.dropped += 1

    def backlog(self) -> int:
        """Alerts and audit records waiting to be written (caller holds the pending lock)."""
        return len(self._alerts) + len(self._audit)

    def pending(self) -> tuple[dict[str, Alert], dict[int, AuditRecord]]:
        """Copies of the pending alerts and audit records (caller holds the pending lock)."""
        return dict(self._alerts), dict(self._audit)

    @staticmethod
    def write(
        conn: sqlite3.Connection, alerts: dict[str, Alert], audit: dict[int, AuditRecord]
    ) -> None:
        """Write what :meth:`pending` returned (inside the caller's transaction; raises
        :class:`sqlite3.Error`)."""
        records.upsert_alerts(conn, alerts.values())
        records.append_audit(conn, audit.values())

    def written(self, alerts: dict[str, Alert], audit: dict[int, AuditRecord]) -> None:
        """Forget what :meth:`pending` returned once it is committed, except alerts saved
        again meanwhile (caller holds the pending lock)."""
        for alert_id, alert in alerts.items():
            if self._alerts.get(alert_id) is alert:
                del self._alerts[alert_id]
        for seq in audit:
            self._audit.pop(seq, None)
        self._audit_written = (self._audit_written + list(audit.values()))[-_WRITTEN_KEPT:]

    # -- alerts and audit --------------------------------------------------------------------
    def load_alerts(self) -> list[Alert]:
        """Every stored alert (active and resolved, of every process), oldest first.

        Alerts saved by this process but not written yet are included; if the file cannot be
        read, the alerts this process saved or loaded before.
        """
        file = self._file
        found: dict[str, Alert] = {}
        with file.read_lock:
            try:
                bodies = records.read_alert_bodies(file.reader())
            except sqlite3.Error as exc:
                file.read_failed("reading alerts from", exc)
                bodies = None
        with file.pending_lock:
            if bodies is None:
                found.update(self._known_alerts)
            for body in bodies or ():
                try:
                    alert = alert_from_json(body)
                except ValueError as exc:
                    file.read_errors += 1
                    file.guard.error(f"monitoring store: an alert in {file.path}", exc)
                    continue
                found[alert.id] = self._known_alerts[alert.id] = alert
            found.update(self._alerts)
        return sorted(found.values(), key=lambda a: (a.updated_s, a.id))

    def audit_records(self, limit: int = 100) -> list[AuditRecord]:
        """The newest ``limit`` records of every process, newest first.

        Stored records carry the file's sequence number as ``id`` (unique across processes);
        records not written yet come first with the ``id`` they were given. If the file
        cannot be read: this process's records only.
        """
        file = self._file
        with file.pending_lock:
            pending = list(self._audit.values())[::-1]
            fallback = self._audit_written[::-1]
        with file.read_lock:
            try:
                stored = records.read_audit(file.reader(), limit)
            except sqlite3.Error as exc:
                file.read_failed("reading the audit trail from", exc)
                stored = fallback
        return (pending + stored)[:limit]

    # -- deployed versions -------------------------------------------------------------------
    def note_version(self, version: str, now_s: float) -> None:
        """Record ``version`` as first seen at ``now_s`` (Unix seconds) unless the file knows
        it. Never raises (a failed write is counted and logged)."""
        file = self._file
        with file.write_lock:
            try:
                with transaction(file.writer()) as conn:
                    conn.execute(
                        "INSERT OR IGNORE INTO versions (version, first_s) VALUES (?, ?)",
                        (version, now_s),
                    )
            except sqlite3.Error as exc:
                file.write_failed("recording the service version in", exc)

    def versions(self, known: dict[str, float]) -> list[tuple[float, str]]:
        """``(first seen, version)`` of every process that wrote the file, oldest first,
        merged with ``known`` (version -> first seen, this process's memory); ``known``
        alone if the file cannot be read."""
        file = self._file
        with file.read_lock:
            try:
                rows = file.reader().execute("SELECT version, first_s FROM versions")
                for version, first_s in rows:
                    known[str(version)] = min(float(first_s), known.get(version, math.inf))
            except sqlite3.Error as exc:
                file.read_failed("reading service versions from", exc)
        return sorted((t, v) for v, t in known.items())

    # -- leases ------------------------------------------------------------------------------
    def try_lease(self, name: str, holder: str, ttl_s: float, now_s: float) -> bool:
        """Take or renew the lease ``name`` for ``holder`` until ``now_s + ttl_s`` (seconds).

        ``True`` when ``holder`` holds it now. Another holder gets it only once the current
        one's expiry has passed, so a dead worker's lease lapses after ``ttl_s``. If the file
        cannot be written, a holder keeps a lease it already had until its known expiry (no
        one else can take it before that either) and gets no new one. Never raises.
        """
        file = self._file
        with file.write_lock:
            try:
                with transaction(file.writer()) as conn:
                    held = records.acquire_lease(conn, name, holder, ttl_s, now_s)
            except sqlite3.Error as exc:
                file.write_failed("taking a lease in", exc)
                return now_s < self._held.get((name, holder), -math.inf)
        if held:
            self._held[(name, holder)] = now_s + ttl_s
        else:
            self._held.pop((name, holder), None)
        return held

    def release(self, name: str, holder: str) -> None:
        """Give the lease up (if ``holder`` holds it) so another may take it at once."""
        file = self._file
        self._held.pop((name, holder), None)
        with file.write_lock:
            try:
                with transaction(file.writer()) as conn:
                    records.release_lease(conn, name, holder)
            except sqlite3.Error as exc:
                file.write_failed("releasing a lease in", exc)
