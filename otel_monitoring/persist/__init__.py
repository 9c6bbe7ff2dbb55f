"""Old import path, kept working: the SQLite store is :mod:`otel_monitoring.store.sqlite`."""

from otel_monitoring.store.sqlite import (
    PersistStats,
    SqliteStore,
    parse_store_url,
)

__all__ = [
    "PersistStats",
    "SqliteStore",
    "parse_store_url",
]
