"""The SQLite file's tables and how connections to it are opened.

One file is shared by every process of one host. Tables:

* ``series``: one row per series (metric, attributes as JSON, kind, unit); ids never reused.
* ``buckets``: one row per (series, tier width, bucket index, process) holding that process's
  full aggregate of the bucket (width ``0`` and index ``0`` hold the since-start total). A
  process only ever writes its own rows, and always the whole aggregate, so a retried write
  is idempotent and two processes never contend for a row.
* ``processes``: who wrote (pid, host, start time); informational.
* ``versions``: each ``service.version`` that wrote, with when it was first seen.
* ``alerts``: the latest state of each alert (JSON of
  :func:`~otel_monitoring.alerts.alert_to_json`).
* ``audit``: append-only; triggers refuse ``UPDATE`` and ``DELETE``, so even raw SQL through
  this package cannot change a record.
* ``leases``: named leases with a holder and an expiry (Unix seconds).
* ``meta``: schema version and the ``generation``, bumped by ``clear()``.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = ["SCHEMA_VERSION", "TOTAL_WIDTH", "connect", "create_schema", "transaction"]

SCHEMA_VERSION = 1

#: The ``width`` column value of since-start totals (a tier of infinite width).
TOTAL_WIDTH = 0

_MMAP_BYTES = 256 * 1024 * 1024
_CACHE_KIB = 32 * 1024

_DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS processes (
    id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    started_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    metric TEXT NOT NULL,
    attributes TEXT NOT NULL,
    kind TEXT NOT NULL,
    unit TEXT NOT NULL,
    UNIQUE (metric, attributes)
);
CREATE TABLE IF NOT EXISTS buckets (
    id INTEGER PRIMARY KEY,
    series INTEGER NOT NULL,
    width INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    process INTEGER NOT NULL,
    count INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    value REAL NOT NULL,
    last_t REAL NOT NULL,
    hscale INTEGER,
    hzero INTEGER,
    hoffset INTEGER,
    hcount INTEGER,
    hsum REAL,
    hmin REAL,
    hmax REAL,
    hbuckets BLOB
);
CREATE UNIQUE INDEX IF NOT EXISTS buckets_by_cell ON buckets (series, width, idx, process);
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    updated_s REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at_s REAL NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    result TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_s REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    version TEXT PRIMARY KEY,
    first_s REAL NOT NULL
);
"""


def connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """Open ``path`` in autocommit mode (transactions are explicit), WAL, ``busy_timeout`` set.

    Usable from any thread; callers serialise access with their own lock.

    Raises:
        sqlite3.Error: the file cannot be opened.
    """
    conn = sqlite3.connect(
        str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        # WAL: readers never block the writer nor each other. NORMAL is durable across an
        # application crash (only an OS crash may lose the last transactions).
        _enable_wal(conn, time.monotonic() + busy_timeout_s)
        conn.execute("PRAGMA synchronous = NORMAL")
        # Reads touch rows spread over the file: map it rather than pread page by page.
        conn.execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")
        conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def _enable_wal(conn: sqlite3.Connection, deadline: float) -> None:
    """Switch the file to WAL, retrying a lock conflict until ``deadline`` (monotonic s).

    When several processes open a new file at once, each converts it to WAL, and SQLite reports
    that deadlock as "database is locked" at once, without waiting on ``busy_timeout`` (it is
    lock escalation, not a held lock). Once one of them has converted the file the others'
    pragma is a no-op, so a short retry settles it; the mode is persistent in the file.
    """
    pause_s = 0.005
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause_s > deadline:
                raise
        time.sleep(pause_s)
        pause_s = min(pause_s * 2, 0.1)


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the tables if missing (idempotent, safe when several processes race).

    Raises:
        sqlite3.Error: the file is locked, read-only or full, or has a newer schema.
    """
    try:
        conn.executescript(
            "BEGIN IMMEDIATE;"
            + _DDL
            + f"INSERT OR IGNORE INTO meta VALUES ('schema_version', {SCHEMA_VERSION});"
            + "INSERT OR IGNORE INTO meta VALUES ('generation', 0);"
            + "COMMIT;"
        )
    except sqlite3.Error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None or row[0] != SCHEMA_VERSION:
        raise sqlite3.DatabaseError(
            f"schema version {row[0] if row else None} of the monitoring store is not"
            f" {SCHEMA_VERSION}; use a new file (or delete this one)"
        )


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolled back if anything raises.

    ``IMMEDIATE`` takes the write lock up front, so a busy file fails (after ``busy_timeout``)
    at ``BEGIN`` instead of half-way through, and readers are never blocked (WAL).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            # SQLite may have rolled back already (e.g. after SQLITE_FULL)
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
