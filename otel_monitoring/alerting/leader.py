"""Several workers of one host sharing one SQLite store: writes, the lease, alerts, audit.

With ``OTEL_MONITORING_STORE=sqlite:///path.db`` each worker writes its aggregates after each
collection and reads everyone's. Only the worker holding the ``alert-evaluation`` lease
evaluates rules (the lease lapses after three intervals, so a dead worker's successor takes
over); it first applies hand resolutions made through other workers, then saves every alert
change. The other workers mirror the stored alerts, so any worker's API shows the same list.
Audit records go to the file too. Store faults are absorbed by the store (backlog, retry).
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

from otel_monitoring.alerting.engine import AlertEngine
from otel_monitoring.alerting.model import Alert
from otel_monitoring.audit import AuditLog
from otel_monitoring.self_telemetry import Guard

if TYPE_CHECKING:
    from otel_monitoring.store.sqlite import SqliteStore

__all__ = ["LEASE", "SharedState"]

LEASE = "alert-evaluation"


class SharedState:
    """Glue between a monitor's alert engine and audit log and a :class:`SqliteStore`."""

    def __init__(
        self,
        store: SqliteStore,
        alerts: AlertEngine,
        audit: AuditLog,
        guard: Guard,
        interval_s: float,
    ) -> None:
        self.store = store
        self.alerts = alerts
        self.audit = audit
        self.guard = guard
        self.ttl_s = 3 * interval_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self.leader = False
        store.prepare()
        alerts.restore(store.load_alerts())
        alerts.listeners.append(self._save)
        audit.sinks.append(store.append_audit)
        audit.source = store.audit_records

    def _save(self, alert: Alert) -> None:
        self.store.save_alert(alert)

    def after_collect(self, now_s: float) -> bool:
        """Write this interval; returns whether this worker should evaluate alerts now."""
        self.store.flush()
        try:
            leased = self.store.try_lease(LEASE, self.holder, self.ttl_s, now_s)
        except Exception as exc:  # instrumentation boundary: the store absorbs faults
            self.guard.error("alert lease", exc)
            leased = False
        if not leased and self.leader and self.store.persist_stats().backlog > 0:
            # The file cannot be written (disk full, locked, read-only): nobody can take the
            # lease meanwhile, so the last leader keeps evaluating in memory until it clears.
            leased = True
        self.leader = leased
        stored = self.store.load_alerts()
        if self.leader:
            self.alerts.apply_resolutions(stored)
        else:
            self.alerts.mirror(stored)
        return self.leader

    def close(self) -> None:
        """Give the lease back and close the store."""
        if self.leader:
            self.store.release(LEASE, self.holder)
        self.store.close()
