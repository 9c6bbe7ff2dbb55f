"""Persistence: a SQLite store shared by the processes of one host.

:class:`SqliteStore` is a drop-in :class:`~otel_monitoring.store.memory.MetricStore` (plus alerts,
the audit trail and leases) whose numbers are those of every process writing to the file.
Select it with ``OTEL_MONITORING_STORE=sqlite:///monitoring.db``; see ``docs/persistence.md``.
"""

from otel_monitoring.store.sqlite.store import PersistStats, SqliteStore
from otel_monitoring.store.sqlite.url import parse_store_url

__all__ = ["PersistStats", "SqliteStore", "parse_store_url"]
