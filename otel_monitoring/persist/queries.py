"""Reads of :class:`~otel_monitoring.persist.sqlite.SqliteStore`: every process's buckets.

A mixin: the store owns the connections, locks and series catalog these methods use; they
are kept here so each module holds one kind of thing (the file's lifecycle and writes there,
its queries here). Each query merges this process's memory with the rows other processes
wrote (see :mod:`.codec`); if the file cannot be read, this process's data answers alone.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from otel_monitoring.persist.codec import ROW_COLUMNS, Merger, RowValues
from otel_monitoring.persist.schema import TOTAL_WIDTH
from otel_monitoring.store import Agg, Kind, MetricStore, SeriesKey

__all__ = ["StoreQueries"]

K = TypeVar("K")
_Plan = list[tuple[int, int, int]]  # (width, first index, last index), inclusive
_COLUMNS = ", ".join(ROW_COLUMNS)
_MINUTE, _HOUR = 60, 3600
_PER_HOUR = _HOUR // _MINUTE
_KEPT_HOURS = 26  # a day's window and its edges


class StoreQueries(MetricStore):
    """Query methods of the SQLite store (see the module docstring)."""

    process_id: int
    _widths: list[int]
    _rollup_width: int | None  # the hourly rows' width, when processes write them
    _catalog: dict[int, tuple[SeriesKey, Kind, str]]
    _read_lock: threading.Lock
    _hours: dict[tuple[int, int], tuple[dict[int, tuple[int, int, float]], Agg]]

    def _check_fork(self) -> None:
        raise NotImplementedError

    def _reader_conn(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _read_failed(self, what: str, exc: sqlite3.Error) -> None:
        raise NotImplementedError

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
        self._check_fork()
        plan = self._plan(window_s, now_s)
        merger: Merger[K] = Merger()
        # this process's part as the memory store folds it (through whole coarser buckets and
        # the hourly rollup: one aggregate per group instead of one per bucket)
        kind_of = self._kind_lookup(metric, group)
        for g, agg in super().fold(metric, window_s, now_s, group).items():
            merger.add_agg(g, agg, kind_of(g))
        self._remote_fold(metric, group, plan, merger)
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
        self._check_fork()
        plan = [(int(width), first, last)]
        merger: Merger[tuple[K, int]] = Merger()
        local = super().bucket_range(metric, width, first, last, group)
        groups: set[K] = set(local)
        kind_of = self._kind_lookup(metric, group)
        for g, per_index in local.items():
            for index, agg in per_index.items():
                merger.add_agg((g, index), agg, kind_of(g))
        for g, _, i, kind, row in self._remote_rows(metric, group, plan, groups.add):
            merger.add_row((g, i), kind, row)
        out: dict[K, dict[int, Agg]] = {g: {} for g in groups}
        for (g, index), agg in merger.results().items():
            out[g][index] = agg
        return out

    def series(self, metric: str | None = None) -> list[tuple[SeriesKey, Kind, str]]:
        """As :meth:`MetricStore.series`: this process's series, then other processes'."""
        self._check_fork()
        found = {key: (key, kind, unit) for key, kind, unit in super().series(metric)}
        with self._read_lock:
            try:
                for series_id in self._series_ids(metric):
                    entry = self._catalog[series_id]
                    found.setdefault(entry[0], entry)
            except sqlite3.Error as exc:
                self._read_failed("reading", exc)
        return list(found.values())

    def series_count(self, metric: str | None = None) -> int:
        """Number of distinct series over all processes (optionally of one metric)."""
        return len(self.series(metric))

    def __iter__(self) -> Iterator[SeriesKey]:
        return iter([key for key, _, _ in self.series()])

    def _plan(self, window_s: float | None, now_s: float) -> _Plan:
        """Bucket ranges that together hold exactly the window of :meth:`MetricStore.fold`."""
        if window_s is None:
            return [(TOTAL_WIDTH, 0, 0)]
        width = int(self.width_for(window_s))
        first = math.floor((now_s - window_s) / width) + 1
        last = math.floor(now_s / width)
        coarser = [w for w in reversed(self._widths) if w > width and w % width == 0]
        return _cover(first * width, (last + 1) * width, [*coarser, width])

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

    def _remote_rows(
        self,
        metric: str,
        group: Callable[[SeriesKey], K | None],
        plan: _Plan,
        touch: Callable[[K], None],
    ) -> list[tuple[K, int, int, Kind, RowValues]]:
        """Rows of other processes in the plan's ranges; empty if the file cannot be read."""
        with self._read_lock:
            try:
                chosen = self._chosen(metric, group, touch)
                return self._rows_of(chosen, plan) if chosen else []
            except sqlite3.Error as exc:
                self._read_failed("reading", exc)
                return []

    def _remote_fold(
        self,
        metric: str,
        group: Callable[[SeriesKey], K | None],
        plan: _Plan,
        merger: Merger[K],
    ) -> None:
        """Merge other processes' rows in the plan's ranges; whole hours of 1-min rows come
        from :meth:`_hours_of` (merged once, reused while they stay the same) wherever
        processes write hourly rows. Nothing is merged if the file cannot be read."""
        whole: list[tuple[int, int]] = []
        rest: _Plan = []
        for width, first, last in plan:
            start, end = -(-first // _PER_HOUR), (last + 1) // _PER_HOUR - 1
            if width != _MINUTE or self._rollup_width is None or start > end:
                rest.append((width, first, last))
                continue
            whole.append((start, end))
            for edge in ((first, start * _PER_HOUR - 1), ((end + 1) * _PER_HOUR, last)):
                if edge[0] <= edge[1]:
                    rest.append((width, *edge))
        with self._read_lock:
            try:
                chosen = self._chosen(metric, group, merger.touch)
                if not chosen:
                    return
                rows = self._rows_of(chosen, rest)
                hours = self._hours_of(chosen, whole) if whole else []
            except sqlite3.Error as exc:
                self._read_failed("reading", exc)
                return
        for g, _, _, kind, row in rows:
            merger.add_row(g, kind, row)
        for g, kind, agg in hours:
            merger.add_agg(g, agg, kind)

    def _rows_of(
        self, chosen: dict[int, tuple[K, Kind]], plan: _Plan
    ) -> list[tuple[K, int, int, Kind, RowValues]]:
        """Other processes' rows of the ``chosen`` series in the plan's ranges (caller holds
        the read lock; raises :class:`sqlite3.Error`)."""
        conn = self._reader_conn()
        ids = ",".join(str(i) for i in chosen)  # integers from the file: safe inline
        out = []
        for width, first, last in plan:
            for series_id, w, i, *values in conn.execute(
                f"SELECT series, width, idx, {_COLUMNS} FROM buckets"
                f" WHERE series IN ({ids}) AND width = ? AND idx BETWEEN ? AND ?"
                " AND process != ?",
                (width, first, last, self.process_id),
            ):
                g, kind = chosen[series_id]
                out.append((g, w, i, kind, tuple(values)))
        return out

    def _hours_of(
        self, chosen: dict[int, tuple[K, Kind]], spans: list[tuple[int, int]]
    ) -> list[tuple[K, Kind, Agg]]:
        """Other processes' data of the ``chosen`` series in whole hours (``spans`` of hour
        indices), merged per series and hour (caller holds the read lock; raises
        :class:`sqlite3.Error`).

        Each process writes an hourly row beside its 1-min rows (see
        :class:`~otel_monitoring.persist.sqlite.SqliteStore`); it stands in for them when its
        request count and latest time are theirs, else (a file written before hourly rows,
        rows removed by a cleanup) the 1-min rows are merged. Each hour's merge is kept with
        the signature of its 1-min rows per process (how many, their request count, their
        latest time), read by a query that touches no histogram: a row rewritten with more
        data, added or deleted changes it, and only such hours are read again. Hours more
        than a day older than the newest asked are forgotten.
        """
        conn = self._reader_conn()
        ids = ",".join(str(i) for i in chosen)  # integers from the file: safe inline
        signatures: dict[tuple[int, int], dict[int, tuple[int, int, float]]] = {}
        for start, end in spans:
            for series_id, hour, process, rows, requests, last_t in conn.execute(
                f"SELECT series, idx / {_PER_HOUR}, process, count(*), sum(count), max(last_t)"
                f" FROM buckets WHERE series IN ({ids}) AND width = {_MINUTE}"
                " AND idx BETWEEN ? AND ? AND process != ?"
                f" GROUP BY series, idx / {_PER_HOUR}, process",
                (start * _PER_HOUR, (end + 1) * _PER_HOUR - 1, self.process_id),
            ):
                signatures.setdefault((series_id, hour), {})[process] = (rows, requests, last_t)
        stale: dict[int, list[int]] = {}
        for cell, signature in signatures.items():
            held = self._hours.get(cell)
            if held is None or held[0] != signature:
                stale.setdefault(cell[1], []).append(cell[0])
        for hour, series_ids in stale.items():
            fresh: Merger[int] = Merger()
            listed = ",".join(str(i) for i in series_ids)
            whole: set[tuple[int, int]] = set()  # (series, process) read from hourly rows
            for series_id, process, *values in conn.execute(
                f"SELECT series, process, {_COLUMNS} FROM buckets WHERE series IN ({listed})"
                f" AND width = {_HOUR} AND idx = ? AND process != ?",
                (hour, self.process_id),
            ):
                minutes = signatures[(series_id, hour)].get(process)
                if minutes is not None and (values[0], values[3]) == minutes[1:]:
                    fresh.add_row(series_id, chosen[series_id][1], tuple(values))
                    whole.add((series_id, process))
            partial = [
                i
                for i in series_ids
                if any((i, process) not in whole for process in signatures[(i, hour)])
            ]
            if partial:
                listed = ",".join(str(i) for i in partial)
                for series_id, process, *values in conn.execute(
                    f"SELECT series, process, {_COLUMNS} FROM buckets WHERE series IN ({listed})"
                    f" AND width = {_MINUTE} AND idx BETWEEN ? AND ? AND process != ?",
                    (hour * _PER_HOUR, (hour + 1) * _PER_HOUR - 1, self.process_id),
                ):
                    if (series_id, process) not in whole:
                        fresh.add_row(series_id, chosen[series_id][1], tuple(values))
            for series_id, agg in fresh.results().items():
                if agg.hist is not None:
                    agg.hist.compact()
                self._hours[(series_id, hour)] = (signatures[(series_id, hour)], agg)
        newest = max((hour for _, hour in signatures), default=0)
        for cell in [c for c in self._hours if c[1] < newest - _KEPT_HOURS]:
            del self._hours[cell]
        return [
            (chosen[series_id][0], chosen[series_id][1], self._hours[(series_id, hour)][1])
            for series_id, hour in signatures
        ]

    def _chosen(
        self, metric: str, group: Callable[[SeriesKey], K | None], touch: Callable[[K], None]
    ) -> dict[int, tuple[K, Kind]]:
        """The file's series of ``metric`` in a group, by id: ``(group, kind)`` (caller holds
        the read lock); ``touch`` sees each group."""
        chosen: dict[int, tuple[K, Kind]] = {}
        for series_id in self._series_ids(metric):
            key, kind, _ = self._catalog[series_id]
            g = group(key)
            if g is not None:
                chosen[series_id] = (g, kind)
                touch(g)
        return chosen

    def _series_ids(self, metric: str | None) -> list[int]:
        """Ids of the series in the file (caller holds the read lock); refreshes the catalog."""
        conn = self._reader_conn()
        if metric is None:
            ids = [row[0] for row in conn.execute("SELECT id FROM series")]
        else:
            ids = [
                row[0] for row in conn.execute("SELECT id FROM series WHERE metric = ?", (metric,))
            ]
        if any(i not in self._catalog for i in ids):
            known = max(self._catalog, default=0)
            for i, name, attributes, kind, unit in conn.execute(
                "SELECT id, metric, attributes, kind, unit FROM series WHERE id > ?", (known,)
            ):
                pairs = tuple((str(k), str(v)) for k, v in json.loads(attributes))
                self._catalog[i] = (SeriesKey(name, pairs), Kind(kind), unit)
        return [i for i in ids if i in self._catalog]


def _cover(start: int, stop: int, widths: list[int]) -> _Plan:
    """Ranges of bucket indices, coarsest first, tiling seconds ``[start, stop)`` exactly.

    ``widths`` runs from coarse to fine and each divides the previous; ``start`` and ``stop``
    are multiples of the finest.
    """
    if start >= stop:
        return []
    width, finer = widths[0], widths[1:]
    if not finer:
        return [(width, start // width, stop // width - 1)]
    first, last = -(-start // width), stop // width - 1
    if first > last:
        return _cover(start, stop, finer)
    return [
        (width, first, last),
        *_cover(start, first * width, finer),
        *_cover((last + 1) * width, stop, finer),
    ]
