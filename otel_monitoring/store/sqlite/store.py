"""A :class:`~otel_monitoring.store.memory.MetricStore` backed by one SQLite file.

The file is shared by processes.

Every process keeps its own data in memory, exactly as :class:`MetricStore` does (that copy
answers for the process itself and is the fallback when the file cannot be read), and writes
it to the file once per collection interval in one ``BEGIN IMMEDIATE`` transaction: one row
per (series, tier bucket) it touched, holding its *whole* aggregate of that bucket, and once
an hour is over one row per series of its hourly rollup (width 3600; where the tiers have no
hourly tier), which other processes read in place of that hour's 1-min rows. Reads
combine the process's own memory with the rows of every other process (and of earlier runs,
so data survives restarts). Counts and histogram buckets add up exactly; see
:mod:`.codec` for the merge.

Faults never reach the caller, nor kill the process (nothing of the file is mapped into memory:
see :mod:`.schema`): when the file is locked, full, read-only, immutable, emptied or replaced,
the write is counted (``write_errors``), logged rate-limited through the
:class:`~otel_monitoring.self_telemetry.Guard`, and what was not written stays in a bounded
backlog (dirty buckets, alerts, audit records; the oldest is dropped and counted past
``max_backlog``). The next write retries all of it, and since rows hold whole aggregates a
retry is idempotent: nothing acknowledged is lost and totals stay exact once the fault clears.

All processes sharing a file must use the same retention (hence the same tiers).
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from otel_monitoring.alerting.model import Alert
from otel_monitoring.audit import AuditRecord
from otel_monitoring.self_telemetry import Guard
from otel_monitoring.store.memory import OVERFLOW_ATTRIBUTES, Agg, Kind, MetricStore, SeriesKey
from otel_monitoring.store.sqlite.codec import ROW_COLUMNS, Merger, RowValues, encode_agg
from otel_monitoring.store.sqlite.queries import BucketReader
from otel_monitoring.store.sqlite.schema import TOTAL_WIDTH, transaction
from otel_monitoring.store.sqlite.shared_records import RecordTables
from otel_monitoring.store.sqlite.store_file import StoreFile
from otel_monitoring.store.sqlite.url import parse_store_url

__all__ = ["PersistStats", "SqliteStore"]

K = TypeVar("K")
_Cell = tuple[SeriesKey, int, int]  # series, tier width (0: since-start total), bucket index
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


class SqliteStore(MetricStore):
    """Drop-in :class:`MetricStore` whose numbers are those of every process using ``path``.

    Example::

        store = SqliteStore.from_url("sqlite:////var/lib/shop/monitoring.db")
        store.add(key, Kind.HISTOGRAM, "s", now_s, agg)  # in memory
        store.flush()                                    # once per collection interval
        store.fold(metric, 3600.0, now_s, group)         # this process + all others

    Built of parts, each taking the same :class:`~.store_file.StoreFile` (the connections,
    locks, ``fork`` check and fault counters): the :class:`MetricStore` it extends holds this
    process's buckets, which this class writes; a :class:`~.queries.BucketReader` reads other
    processes' buckets; :class:`~.shared_records.RecordTables` holds alerts, the audit trail,
    versions and leases. Every public method checks for ``fork`` first, then does its part or
    delegates.

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
        self._file = StoreFile(
            Path(path),
            busy_timeout_s=busy_timeout_s,
            max_size_bytes=max_size_bytes,
            guard=guard or Guard(),
        )
        self.path = self._file.path
        self.max_backlog = max_backlog
        self._widths = [int(tier.width_s) for tier in self.tiers]
        # the hourly rollup is written where readers merge whole hours of 1-min rows (a 1-min
        # tier and no hourly one); both sides read this to agree
        self._rollup_width = (
            int(self._rollup.width_s) if self._rollup is not None and 60 in self._widths else None
        )
        self._buckets = BucketReader(
            self._file, widths=self._widths, rollup_width=self._rollup_width
        )
        self._records = RecordTables(self._file, max_backlog=max_backlog)
        self._hour: int | None = None  # the hour being filled, and the series it touched
        self._hour_keys: set[SeriesKey] = set()
        self._generation: int | None = None
        self._dirty: dict[_Cell, int] = {}  # pending write: cell -> its latest mark
        self._seq = 0
        self._batch_t: float | None = None
        self._file.on_fork(self._forget_process_data)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> SqliteStore:
        """A store for a ``sqlite:///`` URL (see :func:`.parse_store_url`); kwargs as above."""
        return cls(parse_store_url(url), **kwargs)

    # -- lifecycle ---------------------------------------------------------------------------
    def _forget_process_data(self) -> None:
        """A forked child starts with no data of its own (its parent's is the parent's)."""
        MetricStore.clear(self)
        with self._file.pending_lock:
            self._dirty.clear()
            self._hour_keys.clear()

    @property
    def process_id(self) -> int:
        """This process's id in the file (random, 62 bits; a new one after ``fork``)."""
        return self._file.process_id

    @property
    def max_size_bytes(self) -> int | None:
        """Cap on the file size in bytes (``None``: none); applies from the next write."""
        return self._file.max_size_bytes

    @max_size_bytes.setter
    def max_size_bytes(self, value: int | None) -> None:
        self._file.max_size_bytes = value

    def close(self) -> None:
        """Write what is pending (best effort) and close the file. Safe to call twice."""
        if self._file.closed:
            return
        with self._file.pending_lock:
            self._close_hour()  # the hour in progress: written as far as it goes
        self.flush()
        self._file.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def persist_stats(self) -> PersistStats:
        """Counters for self-telemetry (see :class:`PersistStats`)."""
        file = self._file
        with file.pending_lock:
            backlog = len(self._dirty) + self._records.backlog()
        return PersistStats(
            failing=file.failing,
            writes=file.writes,
            write_errors=file.write_errors,
            read_errors=file.read_errors,
            backlog=backlog,
            dropped=file.dropped,
            last_write_duration_s=file.last_write_duration_s,
            last_write_rows=file.last_write_rows,
        )

    def prepare(self) -> bool:
        """Open the file for writing now (creating its tables), so the first reads of a new
        file find them; ``False`` (counted and logged) if it cannot be written yet."""
        self._file.check_fork()
        return self._file.prepare()

    # -- ingestion ---------------------------------------------------------------------------
    def add(self, key: SeriesKey, kind: Kind, unit: str, t_s: float, agg: Agg) -> None:
        """As :meth:`MetricStore.add`; the file is written by :meth:`flush`.

        If the previous interval (another ``t_s``) was not flushed yet, it is flushed first,
        so the file lags at most one interval even when nobody calls :meth:`flush`.
        """
        self._file.check_fork()
        super().add(key, kind, unit, t_s, agg)
        with self._lock:
            if key not in self._series:
                key = SeriesKey(key.metric, OVERFLOW_ATTRIBUTES)
                if key not in self._series:
                    return
        with self._file.pending_lock:
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
            self._file.dropped += 1

    def flush(self) -> bool:
        """Write every pending bucket, alert and audit record in one transaction.

        Returns ``True`` when the backlog is empty afterwards; ``False`` when the file could
        not be written (counted and logged; retried at the next call). Never raises.
        """
        self._file.check_fork()
        with self._file.write_lock:
            return self._flush(with_buckets=True)

    def _flush(self, *, with_buckets: bool) -> bool:
        """Write the pending records, and the dirty buckets if ``with_buckets``, in one
        transaction (caller holds the write lock); ``True`` when the backlog is empty."""
        file = self._file
        with file.pending_lock:
            dirty = dict(self._dirty) if with_buckets else {}
            alerts, audit = self._records.pending()
        if not (dirty or alerts or audit):
            return True
        rows = self._encode(dirty)
        started = time.perf_counter()
        try:
            conn = file.writer()
            with transaction(conn):
                cleared = self._check_generation(conn)
                if rows and not cleared:
                    self._write_rows(conn, rows)
                self._records.write(conn, alerts, audit)
        except sqlite3.Error as exc:
            file.write_failed("writing to", exc)
            return False
        file.wrote(len(rows), time.perf_counter() - started)
        with file.pending_lock:
            for cell, seq in dirty.items():
                if self._dirty.get(cell) == seq:
                    del self._dirty[cell]
            self._records.written(alerts, audit)
            return not (self._dirty or self._records.backlog())

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
                    self._file.dropped += 1
                    continue
                rows.append((key, series.kind, series.unit, width, index, encode_agg(agg)))
        if gone:
            with self._file.pending_lock:
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
        with self._file.pending_lock:
            self._dirty.clear()
            self._hour_keys.clear()
        return True

    def _write_rows(
        self, conn: sqlite3.Connection, rows: list[tuple[SeriesKey, Kind, str, int, int, RowValues]]
    ) -> None:
        self._file.register(conn)
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
            [(ids[key], w, i, self._file.process_id, *values) for key, _, _, w, i, values in rows],
        )

    # -- retention ---------------------------------------------------------------------------
    def drop_before(self, t_s: float) -> int:
        """As :meth:`MetricStore.drop_before`, for every process's rows in the file.

        Returns the number of buckets removed from the file (from memory if the file cannot
        be written; the next call catches up).
        """
        self._file.check_fork()
        removed = super().drop_before(t_s)
        with self._file.pending_lock:
            for cell in list(self._dirty):
                key, width, index = cell
                if key not in self._series or (
                    width != TOTAL_WIDTH and index < self._first_kept(width, t_s)
                ):
                    del self._dirty[cell]
        with self._file.write_lock:
            try:
                with transaction(self._file.writer()) as conn:
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
                self._file.write_failed("removing old buckets from", exc)
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
        self._file.check_fork()
        super().clear()
        with self._file.pending_lock:
            self._dirty.clear()
            self._hour_keys.clear()
        with self._file.write_lock:
            try:
                with transaction(self._file.writer()) as conn:
                    conn.execute("DELETE FROM buckets")
                    conn.execute("DELETE FROM series")
                    (self._generation,) = conn.execute(
                        "UPDATE meta SET value = value + 1 WHERE key = 'generation' RETURNING value"
                    ).fetchone()
            except sqlite3.Error as exc:
                self._file.write_failed("clearing", exc)

    # -- reads: this process's memory and other processes' rows --------------------------------
    def fold(
        self,
        metric: str,
        window_s: float | None,
        now_s: float,
        group: Callable[[SeriesKey], K | None],
    ) -> dict[K, Agg]:
        """As :meth:`MetricStore.fold`, over every process writing to the file.

        A window is read from the finest tier that covers it (as in memory), with whole
        coarser buckets standing in for the runs of fine buckets they hold exactly, so an
        hour of 10 s buckets costs ~70 rows per series and process, not 360.
        ``window_s=None``: since-start totals of every process (and earlier runs).
        """
        self._file.check_fork()
        plan = self._buckets.plan(window_s, now_s, self.width_for)
        merger: Merger[K] = Merger()
        # this process's part as the memory store folds it (through whole coarser buckets and
        # the hourly rollup: one aggregate per group instead of one per bucket)
        kind_of = self._kind_lookup(metric, group)
        for g, agg in super().fold(metric, window_s, now_s, group).items():
            merger.add_agg(g, agg, kind_of(g))
        self._buckets.merge(metric, group, plan, merger)
        return merger.results()

    def bucket_range(
        self,
        metric: str,
        width: float,
        first: int,
        last: int,
        group: Callable[[SeriesKey], K | None],
    ) -> dict[K, dict[int, Agg]]:
        """As :meth:`MetricStore.bucket_range`, over every process writing to the file."""
        self._file.check_fork()
        plan = [(int(width), first, last)]
        merger: Merger[tuple[K, int]] = Merger()
        local = super().bucket_range(metric, width, first, last, group)
        groups: set[K] = set(local)
        kind_of = self._kind_lookup(metric, group)
        for g, per_index in local.items():
            for index, agg in per_index.items():
                merger.add_agg((g, index), agg, kind_of(g))
        for g, _, i, kind, row in self._buckets.rows(metric, group, plan, groups.add):
            merger.add_row((g, i), kind, row)
        out: dict[K, dict[int, Agg]] = {g: {} for g in groups}
        for (g, index), agg in merger.results().items():
            out[g][index] = agg
        return out

    def series(self, metric: str | None = None) -> list[tuple[SeriesKey, Kind, str]]:
        """As :meth:`MetricStore.series`: this process's series, then other processes'."""
        self._file.check_fork()
        found = {key: (key, kind, unit) for key, kind, unit in super().series(metric)}
        for entry in self._buckets.series(metric):
            found.setdefault(entry[0], entry)
        return list(found.values())

    def series_count(self, metric: str | None = None) -> int:
        """Number of distinct series over all processes (optionally of one metric)."""
        return len(self.series(metric))

    def __iter__(self) -> Iterator[SeriesKey]:
        return iter([key for key, _, _ in self.series()])

    def _kind_lookup(
        self, metric: str, group: Callable[[SeriesKey], K | None]
    ) -> Callable[[K], Kind]:
        """The kind of a group of this process's series of ``metric``."""

        def kinds() -> dict[K, Kind]:
            with self._lock:
                return {
                    g: series.kind
                    for key, series in self._series.items()
                    if key.metric == metric and (g := group(key)) is not None
                }

        known = kinds()

        def kind_of(g: K) -> Kind:
            if g not in known:  # a series created since: it is there now
                known.update(kinds())
            return known[g]

        return kind_of

    # -- alerts and audit (RecordTables) ---------------------------------------------------------
    def save_alert(self, alert: Alert) -> None:
        """Insert or replace the alert with ``alert.id``. Never raises (kept for retry)."""
        self._file.check_fork()
        self._records.queue_alert(alert)
        with self._file.write_lock:
            self._flush(with_buckets=False)

    def load_alerts(self) -> list[Alert]:
        """Every stored alert (active and resolved, of every process), oldest first.

        Alerts saved by this process but not written yet are included; if the file cannot be
        read, the alerts this process saved or loaded before.
        """
        self._file.check_fork()
        return self._records.load_alerts()

    def append_audit(self, record: AuditRecord) -> None:
        """Append a record. Never raises (kept for retry); there is no way to edit or remove
        one: the file's triggers refuse ``UPDATE`` and ``DELETE`` on the audit table.
        """
        self._file.check_fork()
        self._records.queue_audit(record)
        with self._file.write_lock:
            self._flush(with_buckets=False)

    def audit_records(self, limit: int = 100) -> list[AuditRecord]:
        """The newest ``limit`` records of every process, newest first.

        Stored records carry the file's sequence number as ``id`` (unique across processes);
        records not written yet come first with the ``id`` they were given. If the file
        cannot be read: this process's records only.
        """
        self._file.check_fork()
        return self._records.audit_records(limit)

    # -- deployed versions ---------------------------------------------------------------------
    def note_version(self, version: str, now_s: float) -> None:
        """Record ``version`` as first seen at ``now_s`` unless the file knows it (kept in
        memory too, so a failed write still labels this process's data). Never raises."""
        self._file.check_fork()
        super().note_version(version, now_s)
        self._records.note_version(version, now_s)

    def versions(self) -> list[tuple[float, str]]:
        """``(first seen, version)`` of every process that wrote the file, oldest first."""
        self._file.check_fork()
        return self._records.versions({v: t for t, v in super().versions()})

    # -- leases --------------------------------------------------------------------------------
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
        self._file.check_fork()
        return self._records.try_lease(name, holder, ttl_s, now_s)

    def release(self, name: str, holder: str) -> None:
        """Give the lease up (if ``holder`` holds it) so another may take it at once."""
        self._file.check_fork()
        self._records.release(name, holder)
