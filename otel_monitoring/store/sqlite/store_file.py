"""The SQLite file of a :class:`~otel_monitoring.store.sqlite.store.SqliteStore`: its connections.

:class:`StoreFile` owns what every part of the store shares: the writer and reader
connections and their locks, the lock of the pending backlog, this process's identity in the
file (and the check that renews it after ``fork``), and the counting and logging of faults.
The bucket reader (:mod:`.queries`), the record tables (:mod:`.shared_records`) and the store
itself each take it; none of them opens a connection or counts a fault on its own.
"""

from __future__ import annotations

import math
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from otel_monitoring.errors import ConfigError
from otel_monitoring.self_telemetry import Guard
from otel_monitoring.store.sqlite.schema import NotAStore, check_file, connect, create_schema

__all__ = ["ReadsPaused", "StoreFile"]

_PAGE_BYTES = 4096
# A read waits at most this long for another process's commit (milliseconds, normally) ...
_READ_BUSY_S = 0.5
# ... and after a read failed, reads answer from memory this long before the file is tried
# again, so a locked or damaged file does not make every query of the API wait or fail.
_READ_PAUSE_S = 5.0


class ReadsPaused(sqlite3.OperationalError):
    """A read failed less than ``_READ_PAUSE_S`` (5 s) ago: answer from memory without trying."""


class StoreFile:
    """The connections, locks, process identity and fault counters of one store's file.

    Locks (never taken in another order than listed, and ``pending_lock`` never held while
    waiting for the file):

    - ``write_lock``: the writer connection, and every write (one at a time per process);
    - ``read_lock``: the reader connection, and the caches of what was read;
    - ``pending_lock``: the backlog waiting to be written (dirty buckets, alerts, audit).

    Counters (since creation; read them through ``SqliteStore.persist_stats()``): ``writes``
    (transactions committed), ``write_errors``, ``read_errors``, ``dropped`` (backlog entries
    discarded), ``failing`` (the last write failed), ``last_write_duration_s`` (seconds) and
    ``last_write_rows``.

    Args:
        path: the SQLite file (created if missing; its directory must exist).
        busy_timeout_s: how long a write waits for another process's lock (seconds).
        max_size_bytes: cap on the file size (``PRAGMA max_page_count``); ``None``: no cap.
        guard: where faults are counted and logged (rate-limited).

    Raises:
        ValueError: the directory of ``path`` does not exist (a configuration error).
        ConfigError: ``path`` holds something other than a monitoring store; it is refused
            before anything is written to it.
    """

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout_s: float,
        max_size_bytes: int | None,
        guard: Guard,
    ) -> None:
        self.path = path
        if not self.path.parent.is_dir():
            raise ValueError(
                f"the directory of the monitoring store {str(self.path)!r} does not exist"
            )
        try:
            check_file(self.path)
        except NotAStore as exc:
            raise ConfigError(f"invalid setting OTEL_MONITORING_STORE: {exc}") from None
        self.busy_timeout_s = busy_timeout_s
        self.guard = guard
        self._max_size_bytes = max_size_bytes
        self.write_lock = threading.Lock()
        self.read_lock = threading.Lock()
        self.pending_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._abandoned: list[sqlite3.Connection] = []
        self._schema_ready = False
        self._on_fork: list[Callable[[], None]] = []
        self.closed = False
        self.writes = self.write_errors = self.read_errors = self.dropped = 0
        self.failing = False
        self._reads_paused_until = -math.inf  # time.monotonic()
        self.last_write_duration_s = 0.0
        self.last_write_rows = 0
        self._start_process()

    # -- process identity --------------------------------------------------------------------
    def _start_process(self) -> None:
        self._pid = os.getpid()
        self.process_id = secrets.randbits(62)
        self._registered = False

    def on_fork(self, forget: Callable[[], None]) -> None:
        """Have :meth:`check_fork` call ``forget`` in a forked child (in registration order)."""
        self._on_fork.append(forget)

    def check_fork(self) -> None:
        """After ``fork`` (gunicorn --preload) the child is a new writer with no data: it gets
        a new ``process_id`` and new connections, and every part forgets its data (through the
        callbacks given to :meth:`on_fork`). Cheap (one ``os.getpid()``) when not forked."""
        if os.getpid() == self._pid:
            return
        # A connection must not be used across fork, nor closed (SQLite's docs forbid both).
        self._abandoned += [c for c in (self._writer, self._reader) if c is not None]
        self._writer = self._reader = None
        self._start_process()
        for forget in self._on_fork:
            forget()

    def register(self, conn: sqlite3.Connection) -> None:
        """Insert this process's row in ``processes`` once per writer connection (caller holds
        the write lock, inside a transaction; raises :class:`sqlite3.Error`)."""
        if not self._registered:
            conn.execute(
                "INSERT OR IGNORE INTO processes VALUES (?, ?, ?, ?)",
                (self.process_id, os.getpid(), socket.gethostname(), time.time()),
            )
            self._registered = True

    # -- connections -------------------------------------------------------------------------
    @property
    def max_size_bytes(self) -> int | None:
        """Cap on the file size in bytes (``None``: none); applies from the next write."""
        return self._max_size_bytes

    @max_size_bytes.setter
    def max_size_bytes(self, value: int | None) -> None:
        with self.write_lock:
            self._max_size_bytes = value
            self.drop_writer()

    def prepare(self) -> bool:
        """Open the file for writing now (creating its tables); ``False`` (counted and
        logged) if it cannot be written yet. Never raises."""
        with self.write_lock:
            try:
                self.writer()
            except sqlite3.Error as exc:
                self.write_failed("opening", exc)
                return False
        return True

    def writer(self) -> sqlite3.Connection:
        """The writer connection, opened (and the tables created) if needed (caller holds the
        write lock; raises :class:`sqlite3.Error`, ``ProgrammingError`` once closed)."""
        if self.closed:
            raise sqlite3.ProgrammingError("the monitoring store is closed")
        if self._writer is None:
            # a reader opened while the file was read-only would keep the new writer so
            with self.read_lock:
                if self._reader is not None:
                    self._reader.close()
                    self._reader = None
            conn = connect(self.path, self.busy_timeout_s)
            try:
                if not self._schema_ready:
                    create_schema(conn, self.path)
                    self._schema_ready = True
                if self._max_size_bytes is not None:
                    pages = max(1, self._max_size_bytes // _PAGE_BYTES)
                    conn.execute(f"PRAGMA max_page_count = {pages}")
            except sqlite3.Error:
                conn.close()
                raise
            self._writer = conn
        return self._writer

    def drop_writer(self) -> None:
        """Close the writer connection (caller holds the write lock); the next write reopens
        it: after a fault, a file opened read-only stays read-only on that connection."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._registered = False

    def reader(self) -> sqlite3.Connection:
        """The reader connection (caller holds the read lock). It waits at most 0.5 s for a
        lock; raises :class:`ReadsPaused` for 5 s after a failed read, and
        :class:`sqlite3.Error` if the file cannot be opened."""
        if self.closed:
            raise sqlite3.ProgrammingError("the monitoring store is closed")
        if time.monotonic() < self._reads_paused_until:
            raise ReadsPaused("a read failed a moment ago")
        if self._reader is None:
            self._reader = connect(self.path, min(self.busy_timeout_s, _READ_BUSY_S))
        return self._reader

    def close(self) -> None:
        """Close both connections; every later use raises ``sqlite3.ProgrammingError``."""
        self.closed = True
        with self.write_lock:
            self.drop_writer()
        with self.read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    # -- outcomes ----------------------------------------------------------------------------
    def wrote(self, rows: int, duration_s: float) -> None:
        """Count a committed write of ``rows`` bucket rows that took ``duration_s`` seconds;
        the file works again, so reads try it at once."""
        self.writes += 1
        self.failing = False
        self._reads_paused_until = -math.inf
        self.last_write_duration_s = duration_s
        self.last_write_rows = rows

    def write_failed(self, what: str, exc: sqlite3.Error) -> None:
        """Count and log (rate-limited) a failed write; the next write reopens the file and
        checks it again (caller holds the write lock)."""
        self.write_errors += 1
        self.failing = True
        self.drop_writer()
        # the file may have been emptied, replaced or damaged meanwhile: check it again and
        # create the tables if they are gone (the backlog then fills them)
        self._schema_ready = False
        self.guard.error(f"monitoring store: {what} {self.path}", exc)

    def read_failed(self, what: str, exc: sqlite3.Error) -> None:
        """Count and log a failed read and pause reads for 5 s (caller holds the read lock);
        a :class:`ReadsPaused` is neither counted nor logged again."""
        if isinstance(exc, ReadsPaused):
            return
        self._reads_paused_until = time.monotonic() + _READ_PAUSE_S
        self.read_errors += 1
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self.guard.error(f"monitoring store: {what} {self.path} (answering from memory)", exc)
