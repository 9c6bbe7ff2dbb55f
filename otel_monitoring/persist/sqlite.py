"""A :class:`~otel_monitoring.store.MetricStore` backed by one SQLite file shared by processes.

Every process keeps its own data in memory, exactly as :class:`MetricStore` does (that copy
answers for the process itself and is the fallback when the file cannot be read), and writes
it to the file once per collection interval in one ``BEGIN IMMEDIATE`` transaction: one row
per (series, tier bucket) it touched, holding its *whole* aggregate of that bucket, and once
an hour is over one row per series of its hourly rollup (width 3600; where the tiers have no
hourly tier), which other processes read in place of that hour's 1-min rows. Reads
combine the process's own memory with the rows of every other process (and of earlier runs,
so data survives restarts). Counts and histogram buckets add up exactly; see
:mod:`.codec` for the merge.

Faults never reach the caller, nor kill the process (nothing of the file is mapped into
memory: see :mod:`.schema`): when the file is locked, full, read-only, immutable, emptied or
replaced, the write is
counted (``write_errors``), logged rate-limited through the :class:`~otel_monitoring.guard.Guard`,
and what was not written stays in a bounded backlog (dirty buckets, alerts, audit records;
the oldest is dropped and counted past ``max_backlog``). The next write retries all of it,
and since rows hold whole aggregates a retry is idempotent: nothing acknowledged is lost and
totals stay exact once the fault clears.

All processes sharing a file must use the same retention (hence the same tiers).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from otel_monitoring.alerts import Alert
from otel_monitoring.audit import AuditRecord
from otel_monitoring.errors import ConfigError
from otel_monitoring.guard import Guard
from otel_monitoring.persist import records
from otel_monitoring.persist.codec import ROW_COLUMNS, RowValues, encode_agg
from otel_monitoring.persist.queries import StoreQueries
from otel_monitoring.persist.schema import (
    TOTAL_WIDTH,
    NotAStore,
    check_file,
    connect,
    create_schema,
    transaction,
)
from otel_monitoring.persist.shared_records import SharedRecords
from otel_monitoring.persist.url import parse_store_url
from otel_monitoring.store import OVERFLOW_ATTRIBUTES, Agg, Kind, MetricStore, SeriesKey

__all__ = ["PersistStats", "SqliteStore"]

K = TypeVar("K")
_Cell = tuple[SeriesKey, int, int]  # series, tier width (0: since-start total), bucket index
_Plan = list[tuple[int, int, int]]  # (width, first index, last index), inclusive
_PAGE_BYTES = 4096
# A read waits at most this long for another process's commit (milliseconds, normally) ...
_READ_BUSY_S = 0.5
# ... and after a read failed, reads answer from memory this long before the file is tried
# again, so a locked or damaged file does not make every query of the API wait or fail.
_READ_PAUSE_S = 5.0
_COLUMNS = ", ".join(ROW_COLUMNS)


@dataclass(frozen=True, slots=True)
class PersistStats:
    """Self-telemetry of a :class:`SqliteStore` (counts since the store was created).

    ``failing``: the last write failed (and the next interval retries). ``backlog`` is
    what waits to be written: dirty buckets, alerts and audit records.
    ``dropped`` counts backlog entries discarded because it was full (or a bucket the
    in-memory ring overwrote before it could be written).
    """

    failing: bool
    writes: int
    write_errors: int
    read_errors: int
    backlog: int
    dropped: int
    last_write_duration_s: float
    last_write_rows: int


class _ReadsPaused(sqlite3.OperationalError):
    """A read failed less than ``_READ_PAUSE_S`` ago: answer from memory without trying."""


class SqliteStore(SharedRecords, StoreQueries):
    """Drop-in :class:`MetricStore` whose numbers are those of every process using ``path``.

    Example::

        store = SqliteStore.from_url("sqlite:////var/lib/shop/monitoring.db")
        store.add(key, Kind.HISTOGRAM, "s", now_s, agg)  # in memory
        store.flush()                                    # once per collection interval
        store.fold(metric, 3600.0, now_s, group)         # this process + all others

    Args:
        path: the SQLite file (created if missing; its directory must exist).
        retention_s, max_series: as for :class:`MetricStore` (the cap is per process).
        busy_timeout_s: how long a write waits for another process's lock before it fails
            and is retried at the next interval.
        max_backlog: entries kept for retry while the file cannot be written.
        max_size_bytes: cap on the file size (``PRAGMA max_page_count``); ``None``: no cap.
        guard: where faults are counted and logged (rate-limited).

    Raises:
        ValueError: the directory of ``path`` does not exist (a configuration error).
        ConfigError: ``path`` holds something other than a monitoring store (another
            application's database, say); it is refused before anything is written to it.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        retention_s: float = 86400.0,
        max_series: int = 2000,
        busy_timeout_s: float = 2.0,
        max_backlog: int = 100_000,
        max_size_bytes: int | None = None,
        guard: Guard | None = None,
    ) -> None:
        super().__init__(retention_s=retention_s, max_series=max_series)
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise ValueError(
                f"the directory of the monitoring store {str(self.path)!r} does not exist"
            )
        try:
            check_file(self.path)
        except NotAStore as exc:
            raise ConfigError(f"invalid setting OTEL_MONITORING_STORE: {exc}") from None
        self.busy_timeout_s = busy_timeout_s
        self.max_backlog = max_backlog
        self.guard = guard or Guard()
        self._max_size_bytes = max_size_bytes
        self._widths = [int(tier.width_s) for tier in self.tiers]
        # the hourly rollup is written where readers merge whole hours of 1-min rows (a 1-min
        # tier and no hourly one); both sides read this to agree
        self._rollup_width = (
            int(self._rollup.width_s) if self._rollup is not None and 60 in self._widths else None
        )
        self._hour: int | None = None  # the hour being filled, and the series it touched
        self._hour_keys: set[SeriesKey] = set()
        self._write_lock = threading.Lock()  # the writer connection and flushes
        self._read_lock = threading.Lock()  # the reader connection and the series cache
        self._pending_lock = threading.Lock()  # dirty cells, pending alerts and audit
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._abandoned: list[sqlite3.Connection] = []
        self._schema_ready = False
        self._generation: int | None = None
        self._catalog: dict[int, tuple[SeriesKey, Kind, str]] = {}
        # other processes' 1-min rows of whole hours, merged, with their rows' signature
        self._hours: dict[tuple[int, int], tuple[dict[int, tuple[int, int, float]], Agg]] = {}
        self._dirty: dict[_Cell, int] = {}
        self._alerts: dict[str, Alert] = {}  # pending write
        self._known_alerts: dict[str, Alert] = {}  # fallback for reads
        self._audit: dict[int, AuditRecord] = {}  # pending write, by sequence
        self._audit_written: list[AuditRecord] = []  # fallback for reads (bounded)
        self._seq = 0
        self._batch_t: float | None = None
        self._held: dict[tuple[str, str], float] = {}  # leases we hold -> expiry
        self._closed = False
        self.writes = self.write_errors = self.read_errors = self.dropped = 0
        self._failing = False
        self._reads_paused_until = -math.inf  # time.monotonic()
        self.last_write_duration_s = 0.0
        self.last_write_rows = 0
        self._start_process()

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> SqliteStore:
        """A store for a ``sqlite:///`` URL (see :func:`.parse_store_url`); kwargs as above."""
        return cls(parse_store_url(url), **kwargs)

    # -- lifecycle ---------------------------------------------------------------------------
    def _start_process(self) -> None:
        self._pid = os.getpid()
        self.process_id = secrets.randbits(62)
        self._registered = False

    def _check_fork(self) -> None:
        """After ``fork`` (gunicorn --preload) the child is a new writer with no data."""
        if os.getpid() == self._pid:
            return
        # A connection must not be used across fork, nor closed (SQLite's docs forbid both).
        self._abandoned += [c for c in (self._writer, self._reader) if c is not None]
        self._writer = self._reader = None
        self._start_process()
        MetricStore.clear(self)
        with self._pending_lock:
            self._dirty.clear()
            self._hour_keys.clear()
            self._alerts.clear()
            self._audit.clear()

    @property
    def max_size_bytes(self) -> int | None:
        """Cap on the file size in bytes (``None``: none); applies from the next write."""
        return self._max_size_bytes

    @max_size_bytes.setter
    def max_size_bytes(self, value: int | None) -> None:
        with self._write_lock:
            self._max_size_bytes = value
            self._drop_writer()

    def close(self) -> None:
        """Write what is pending (best effort) and close the file. Safe to call twice."""
        if self._closed:
            return
        with self._pending_lock:
            self._close_hour()  # the hour in progress: written as far as it goes
        self.flush()
        self._closed = True
        with self._write_lock:
            self._drop_writer()
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def persist_stats(self) -> PersistStats:
        """Counters for self-telemetry (see :class:`PersistStats`)."""
        with self._pending_lock:
            backlog = len(self._dirty) + len(self._alerts) + len(self._audit)
        return PersistStats(
            failing=self._failing,
            writes=self.writes,
            write_errors=self.write_errors,
            read_errors=self.read_errors,
            backlog=backlog,
            dropped=self.dropped,
            last_write_duration_s=self.last_write_duration_s,
            last_write_rows=self.last_write_rows,
        )

    # -- connections -------------------------------------------------------------------------
    def prepare(self) -> bool:
        """Open the file for writing now (creating its tables), so the first reads of a new
        file find them; ``False`` (counted and logged) if it cannot be written yet."""
        self._check_fork()
        with self._write_lock:
            try:
                self._writer_conn()
            except sqlite3.Error as exc:
                self._write_failed("opening", exc)
                return False
        return True

    def _writer_conn(self) -> sqlite3.Connection:
        if self._closed:
            raise sqlite3.ProgrammingError("the monitoring store is closed")
        if self._writer is None:
            # a reader opened while the file was read-only would keep the new writer so
            with self._read_lock:
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

    def _drop_writer(self) -> None:
        # After a fault, reopen: a file opened read-only stays read-only on that connection.
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._registered = False

    def _reader_conn(self) -> sqlite3.Connection:
        if self._closed:
            raise sqlite3.ProgrammingError("the monitoring store is closed")
        if time.monotonic() < self._reads_paused_until:
            raise _ReadsPaused("a read failed a moment ago")
        if self._reader is None:
            self._reader = connect(self.path, min(self.busy_timeout_s, _READ_BUSY_S))
        return self._reader

    def _write_failed(self, what: str, exc: sqlite3.Error) -> None:
        self.write_errors += 1
        self._failing = True
        self._drop_writer()
        # the file may have been emptied, replaced or damaged meanwhile: check it again and
        # create the tables if they are gone (the backlog then fills them)
        self._schema_ready = False
        self.guard.error(f"monitoring store: {what} {self.path}", exc)

    def _read_failed(self, what: str, exc: sqlite3.Error) -> None:
        if isinstance(exc, _ReadsPaused):
            return
        self._reads_paused_until = time.monotonic() + _READ_PAUSE_S
        self.read_errors += 1
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self.guard.error(f"monitoring store: {what} {self.path} (answering from memory)", exc)

    # -- ingestion ---------------------------------------------------------------------------
    def add(self, key: SeriesKey, kind: Kind, unit: str, t_s: float, agg: Agg) -> None:
        """As :meth:`MetricStore.add`; the file is written by :meth:`flush`.

        If the previous interval (another ``t_s``) was not flushed yet, it is flushed first,
        so the file lags at most one interval even when nobody calls :meth:`flush`.
        """
        self._check_fork()
        super().add(key, kind, unit, t_s, agg)
        with self._lock:
            if key not in self._series:
                key = SeriesKey(key.metric, OVERFLOW_ATTRIBUTES)
                if key not in self._series:
                    return
        with self._pending_lock:
            stale = self._batch_t is not None and self._batch_t != t_s and bool(self._dirty)
            self._batch_t = t_s
            for width in self._widths:
                self._mark((key, width, math.floor(t_s / width)))
            if self._rollup_width:
                self._mark_hour(key, math.floor(t_s / self._rollup_width))
            self._mark((key, TOTAL_WIDTH, 0))
        if stale:
            self.flush()

    def _mark_hour(self, key: SeriesKey, hour: int) -> None:
        """Note that ``key`` has data in ``hour``. An hour's rollup row is written once the
        hour is over (one row per series and hour, not one per interval); a late interval
        of a finished hour marks its row at once (caller holds the pending lock)."""
        if self._hour is None or hour > self._hour:
            self._close_hour()
            self._hour = hour
        if hour == self._hour:
            self._hour_keys.add(key)
        elif self._rollup_width is not None:
            self._mark((key, self._rollup_width, hour))

    def _close_hour(self) -> None:
        """Mark the rollup rows of the hour being filled (caller holds the pending lock)."""
        if self._hour is not None and self._rollup_width is not None:
            for key in self._hour_keys:
                self._mark((key, self._rollup_width, self._hour))
        self._hour_keys.clear()

    def _mark(self, cell: _Cell) -> None:
        self._seq += 1
        self._dirty[cell] = self._seq  # re-marking keeps the cell's place (its age)
        while len(self._dirty) > self.max_backlog:
            del self._dirty[next(iter(self._dirty))]
            self.dropped += 1

    def flush(self) -> bool:
        """Write every pending bucket, alert and audit record in one transaction.

        Returns ``True`` when the backlog is empty afterwards; ``False`` when the file could
        not be written (counted and logged; retried at the next call). Never raises.
        """
        self._check_fork()
        with self._write_lock:
            return self._flush(with_buckets=True)

    def _flush(self, *, with_buckets: bool) -> bool:
        with self._pending_lock:
            dirty = dict(self._dirty) if with_buckets else {}
            alerts = dict(self._alerts)
            audit = dict(self._audit)
        if not (dirty or alerts or audit):
            return True
        rows = self._encode(dirty)
        started = time.perf_counter()
        try:
            conn = self._writer_conn()
            with transaction(conn):
                cleared = self._check_generation(conn)
                if rows and not cleared:
                    self._write_rows(conn, rows)
                records.upsert_alerts(conn, alerts.values())
                records.append_audit(conn, audit.values())
        except sqlite3.Error as exc:
            self._write_failed("writing to", exc)
            return False
        self.writes += 1
        self._failing = False
        self._reads_paused_until = -math.inf  # the file works again: read it
        self.last_write_duration_s = time.perf_counter() - started
        self.last_write_rows = len(rows)
        with self._pending_lock:
            for cell, seq in dirty.items():
                if self._dirty.get(cell) == seq:
                    del self._dirty[cell]
            for alert_id, alert in alerts.items():
                if self._alerts.get(alert_id) is alert:
                    del self._alerts[alert_id]
            for seq in audit:
                self._audit.pop(seq, None)
            self._audit_written = (self._audit_written + list(audit.values()))[-10_000:]
            return not (self._dirty or self._alerts or self._audit)

    def _encode(
        self, dirty: dict[_Cell, int]
    ) -> list[tuple[SeriesKey, Kind, str, int, int, RowValues]]:
        rows = []
        gone: list[_Cell] = []
        with self._lock:
            for cell in dirty:
                key, width, index = cell
                series = self._series.get(key)
                if series is None:  # dropped by drop_before/clear meanwhile
                    gone.append(cell)
                    continue
                agg: Agg | None = series.total
                if width != TOTAL_WIDTH:
                    ring = (
                        series.rollup
                        if width == self._rollup_width and series.rollup is not None
                        else series.rings[self._widths.index(width)]
                    )
                    slot = ring.slots[index % ring.tier.slots]
                    agg = slot[1] if slot is not None and slot[0] == index else None
                if agg is None:  # the ring moved on before the bucket could be written
                    gone.append(cell)
                    self.dropped += 1
                    continue
                rows.append((key, series.kind, series.unit, width, index, encode_agg(agg)))
        if gone:
            with self._pending_lock:
                for cell in gone:
                    self._dirty.pop(cell, None)
        return rows

    def _check_generation(self, conn: sqlite3.Connection) -> bool:
        """``True`` if another process cleared the file since we last wrote: forget ours."""
        (generation,) = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        known, self._generation = self._generation, generation
        if known is None or known == generation:
            return False
        MetricStore.clear(self)
        with self._pending_lock:
            self._dirty.clear()
            self._hour_keys.clear()
        return True

    def _write_rows(
        self, conn: sqlite3.Connection, rows: list[tuple[SeriesKey, Kind, str, int, int, RowValues]]
    ) -> None:
        if not self._registered:
            conn.execute(
                "INSERT OR IGNORE INTO processes VALUES (?, ?, ?, ?)",
                (self.process_id, os.getpid(), socket.gethostname(), time.time()),
            )
            self._registered = True
        ids: dict[SeriesKey, int] = {}
        for key, kind, unit, *_ in rows:
            if key not in ids:
                # ids are looked up in every write: another process may have removed the
                # series (drop_before) since, and a cached id would orphan our rows
                (ids[key],) = conn.execute(
                    "INSERT INTO series (metric, attributes, kind, unit) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (metric, attributes) DO UPDATE SET unit = unit RETURNING id",
                    (key.metric, json.dumps(key.attributes), kind.value, unit),
                ).fetchone()
        conn.executemany(
            f"INSERT INTO buckets (series, width, idx, process, {_COLUMNS})"
            f" VALUES ({', '.join('?' * (4 + len(ROW_COLUMNS)))})"
            " ON CONFLICT (series, width, idx, process) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in ROW_COLUMNS),
            [(ids[key], w, i, self.process_id, *values) for key, _, _, w, i, values in rows],
        )

    # -- retention ---------------------------------------------------------------------------
    def drop_before(self, t_s: float) -> int:
        """As :meth:`MetricStore.drop_before`, for every process's rows in the file.

        Returns the number of buckets removed from the file (from memory if the file cannot
        be written; the next call catches up).
        """
        self._check_fork()
        removed = super().drop_before(t_s)
        with self._pending_lock:
            for cell in list(self._dirty):
                key, width, index = cell
                if key not in self._series or (
                    width != TOTAL_WIDTH and index < self._first_kept(width, t_s)
                ):
                    del self._dirty[cell]
        with self._write_lock:
            try:
                with transaction(self._writer_conn()) as conn:
                    removed = sum(
                        conn.execute(
                            "DELETE FROM buckets WHERE width = ? AND idx < ?",
                            (width, math.floor(t_s / width)),
                        ).rowcount
                        for width in self._widths
                    )
                    if self._rollup_width:
                        conn.execute(
                            "DELETE FROM buckets WHERE width = ? AND idx < ?",
                            (self._rollup_width, self._first_kept(self._rollup_width, t_s)),
                        )
                    conn.execute(
                        "DELETE FROM buckets WHERE width = ? AND series NOT IN"
                        " (SELECT series FROM buckets WHERE width != ?)",
                        (TOTAL_WIDTH, TOTAL_WIDTH),
                    )
                    conn.execute("DELETE FROM series WHERE id NOT IN (SELECT series FROM buckets)")
            except sqlite3.Error as exc:
                self._write_failed("removing old buckets from", exc)
        return removed

    def _first_kept(self, width: int, t_s: float) -> int:
        """The first bucket of ``width`` that :meth:`drop_before` at ``t_s`` keeps: for a
        tier, the one holding ``t_s``; for the hourly rollup, the first that starts at or
        after it (an hour cut in two no longer sums the 1-min rows that remain)."""
        if width == self._rollup_width:
            return math.ceil(t_s / width)
        return math.floor(t_s / width)

    def clear(self) -> None:
        """Forget every process's metrics (alerts, audit and leases stay).

        Other processes notice at their next write and forget their in-memory copy too.
        """
        self._check_fork()
        super().clear()
        with self._pending_lock:
            self._dirty.clear()
            self._hour_keys.clear()
        with self._write_lock:
            try:
                with transaction(self._writer_conn()) as conn:
                    conn.execute("DELETE FROM buckets")
                    conn.execute("DELETE FROM series")
                    (self._generation,) = conn.execute(
                        "UPDATE meta SET value = value + 1 WHERE key = 'generation' RETURNING value"
                    ).fetchone()
            except sqlite3.Error as exc:
                self._write_failed("clearing", exc)
