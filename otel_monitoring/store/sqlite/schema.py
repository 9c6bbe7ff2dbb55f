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
  :func:`~otel_monitoring.alerting.engine.alert_to_json`).
* ``audit``: append-only; triggers refuse ``UPDATE`` and ``DELETE``, so even raw SQL through
  this package cannot change a record.
* ``leases``: named leases with a holder and an expiry (Unix seconds).
* ``meta``: schema version and the ``generation``, bumped by ``clear()``.

**The mark.** A file this package creates carries ``PRAGMA application_id =``
:data:`APPLICATION_ID`. An existing file that is neither marked, nor empty, nor exactly a
store written before the mark is refused before anything is written to it (no journal
change, no table, no trigger): :class:`NotAStore`, which the store turns into a
configuration error naming ``OTEL_MONITORING_STORE`` at start-up, and into a counted write
error if the file is replaced by a foreign one later.

**The journal: a rollback journal (TRUNCATE), nothing memory-mapped.** A fault in the
store's files must cost the monitoring, never the host process. In WAL mode every connection
maps the ``-shm`` file into memory; when another program truncates it (or the disk under it
goes), the next access raises SIGBUS and kills the whole process, and ``PRAGMA mmap_size = 0``
does not help: it governs the database file, not the WAL index (measured: a connection whose
``-shm`` was truncated dies on its next query either way). The same goes for the database
file itself once ``mmap_size`` is set. So connections use ``journal_mode = TRUNCATE`` (the
``-journal`` file is written with ordinary ``write`` calls and emptied after each commit) and
``mmap_size = 0``: a truncated, replaced, read-only or immutable file then makes SQLite
return an error (``disk I/O error``, ``readonly``, ``no such table``), which the store
counts, logs and retries. Several processes still share the file through POSIX locks.

What it costs: a commit waits for reads under way in other processes to end, and reads wait
while a commit writes (a few milliseconds per interval; ``busy_timeout`` bounds both). Every
store read runs off the request path (the collection thread, or a worker thread for the
monitoring API), so the host's requests never wait on the file. ``benchmarks/sqlite_journal.py``
measures both modes side by side.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = [
    "APPLICATION_ID",
    "JOURNAL_MODE",
    "SCHEMA_VERSION",
    "TOTAL_WIDTH",
    "NotAStore",
    "check_file",
    "check_store",
    "connect",
    "create_schema",
    "transaction",
]

SCHEMA_VERSION = 1

#: The ``width`` column value of since-start totals (a tier of infinite width).
TOTAL_WIDTH = 0

#: ``PRAGMA application_id`` of a monitoring store: ``"OTMS"`` (see :func:`check_store`).
APPLICATION_ID = 0x4F544D53

#: The rollback journal every connection uses; see the module docstring for why not WAL.
JOURNAL_MODE = "TRUNCATE"

_CACHE_KIB = 32 * 1024
# Bytes of the file SQLite may map (0: none; see the module docstring). Only
# benchmarks/sqlite_journal.py sets it, to measure the previous design.
_MMAP_BYTES = 0

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
    """Open ``path`` in autocommit mode (transactions are explicit), never memory-mapped.

    Checks first, reading only, that the file is a monitoring store or empty (see
    :func:`check_store`), then sets the rollback journal (:data:`JOURNAL_MODE`; a file left in
    WAL by an earlier version is converted, see :func:`_set_journal_mode`) and
    ``busy_timeout``. Usable from any thread; callers serialise access with their own lock.

    Raises:
        NotAStore: the file holds something else (nothing was written to it).
        sqlite3.Error: the file cannot be opened.
    """
    deadline = time.monotonic() + busy_timeout_s
    pause_s = 0.005
    while True:
        conn = sqlite3.connect(
            str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            # Nothing of the file is mapped into memory: another program truncating a mapped
            # file makes the next access fault (SIGBUS), which kills the whole host process.
            conn.execute(f"PRAGMA mmap_size = {_MMAP_BYTES}")
            check_store(conn, path)
            if _set_journal_mode(conn):
                # NORMAL syncs at the critical moments of a commit; this is monitoring data
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute(f"PRAGMA cache_size = -{_CACHE_KIB}")
                return conn
        except sqlite3.Error:
            conn.close()
            raise
        conn.close()  # let another opener convert the file, or the one converting finish
        if time.monotonic() + pause_s > deadline:
            raise sqlite3.OperationalError(
                "database is locked: the file is in WAL mode and another process keeps it"
                " open (a worker of the previous version?), so it cannot be converted yet"
            )
        time.sleep(pause_s * random.uniform(0.5, 1.5))
        pause_s = min(pause_s * 2, 0.1)


def _set_journal_mode(conn: sqlite3.Connection) -> bool:
    """Use :data:`JOURNAL_MODE`; ``False`` if the file is in WAL and cannot be converted now.

    A rollback mode is per connection, so a new file needs nothing written. A file an earlier
    version left in WAL is converted back, which needs every other connection to it closed:
    SQLite reports "database is locked" at once (not a held lock, so ``busy_timeout`` does not
    wait). When several processes open such a file together, each holds it open in WAL and
    none could convert it: the caller closes this connection and retries after a random
    pause, so one of them converts it and the others then find a rollback file. Until then a
    connection maps the old file's ``-shm``, as that version did.
    """
    try:
        (mode,) = conn.execute(f"PRAGMA journal_mode = {JOURNAL_MODE}").fetchone()
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
        return False
    return str(mode).upper() == JOURNAL_MODE


class NotAStore(sqlite3.DatabaseError):
    """The file holds something other than a monitoring store (another application's
    database, or not a database at all); nothing was written to it."""


def _reference_schema() -> frozenset[tuple[str, str, str | None]]:
    """``(type, name, sql)`` of every object :data:`_DDL` creates, as SQLite records them."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.executescript(_DDL)
        return frozenset(conn.execute("SELECT type, name, sql FROM sqlite_master"))
    finally:
        conn.close()


_REFERENCE = _reference_schema()


def check_store(conn: sqlite3.Connection, path: Path) -> None:
    """Accept a monitoring store or an empty file; refuse anything else. Reads only.

    A store is marked ``PRAGMA application_id = APPLICATION_ID`` when it is created. A file
    written before the mark (by an earlier version) is recognised by its schema: every object
    in it is one this package creates, with the very same SQL, and ``meta`` is among them;
    :func:`create_schema` then marks it. An empty file (no bytes, or a database with nothing
    in it and no application id) becomes a store.

    Raises:
        NotAStore: anything else (say, another application's tables named ``series`` and
            ``audit``); the message says what was found.
        sqlite3.Error: the file cannot be read (locked, unreadable): a fault, not a verdict.
    """
    try:
        (app_id,) = conn.execute("PRAGMA application_id").fetchone()
        objects = frozenset(conn.execute("SELECT type, name, sql FROM sqlite_master"))
    except sqlite3.DatabaseError as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
            raise NotAStore(f"{str(path)!r} is not a monitoring store ({exc})") from None
        raise
    if app_id == APPLICATION_ID or (app_id == 0 and not objects):
        return
    if app_id == 0 and objects <= _REFERENCE and ("table", "meta") in {o[:2] for o in objects}:
        return
    tables = sorted(name for kind, name, _ in objects if kind == "table")
    held = f"tables {', '.join(tables[:8])}" if tables else "no tables"
    raise NotAStore(
        f"{str(path)!r} is not a monitoring store (application id {app_id}, {held}); it was"
        " left untouched: point the variable at a new file"
    )


def _statements(script: str) -> list[str]:
    """The SQL statements of ``script``, one by one (a trigger body's ``;`` stays inside)."""
    found, pending = [], ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            found.append(pending.strip())
            pending = ""
    return found


_DDL_STATEMENTS = _statements(_DDL)


def check_file(path: Path) -> None:
    """At start-up, before anything is written: refuse a file that is not a store.

    Opens ``path`` read-only (``mode=ro``) if it exists and is not empty, and applies
    :func:`check_store`. A file that cannot be read now (locked, unreadable) passes: that is
    a fault, counted when the store first writes, and the writer checks again then.

    Raises:
        NotAStore: the file holds something else.
    """
    try:
        if path.stat().st_size == 0:
            return
    except OSError:
        return
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return
    try:
        conn.execute("PRAGMA mmap_size = 0")
        check_store(conn, path)
    except NotAStore:
        raise
    except sqlite3.Error:
        return
    finally:
        conn.close()


def create_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Create the tables if missing and mark the file as a store (idempotent, safe when
    several processes race). Checks the file again inside the write transaction, so nothing
    is written to a file that is not a store.

    Raises:
        NotAStore: the file is not a monitoring store (nothing written).
        sqlite3.Error: the file is locked, read-only or full, or has a newer schema.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
        check_store(conn, path)
        for statement in _DDL_STATEMENTS:
            conn.execute(statement)
        conn.execute(f"INSERT OR IGNORE INTO meta VALUES ('schema_version', {SCHEMA_VERSION})")
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('generation', 0)")
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("COMMIT")
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
    at ``BEGIN`` instead of half-way through. Readers go on until the commit, which waits
    for the reads under way to end (and new reads wait for the commit, milliseconds).
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
