"""Reads of :class:`~otel_monitoring.store.sqlite.store.SqliteStore`: other processes' buckets.

:class:`BucketReader` takes the store's :class:`~.store_file.StoreFile` (the reader
connection, its lock, the fault counters) and keeps what it read: the series catalog and the
merged whole hours. The store merges this process's memory with what the reader returns
(see :mod:`.codec`); if the file cannot be read, the reader returns nothing (the fault is
counted and logged) and this process's data answers alone. The store checks for ``fork``
(:meth:`~.store_file.StoreFile.check_fork`) before calling any method here.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from otel_monitoring.store.memory import Agg, Kind, SeriesKey
from otel_monitoring.store.sqlite.codec import ROW_COLUMNS, Merger, RowValues
from otel_monitoring.store.sqlite.schema import TOTAL_WIDTH
from otel_monitoring.store.sqlite.store_file import StoreFile

__all__ = ["BucketReader"]

K = TypeVar("K")
_Plan = list[tuple[int, int, int]]  # (width, first index, last index), inclusive
_COLUMNS = ", ".join(ROW_COLUMNS)
_MINUTE, _HOUR = 60, 3600
_PER_HOUR = _HOUR // _MINUTE
_KEPT_HOURS = 26  # a day's window and its edges


class BucketReader:
    """Other processes' buckets and series in the file (see the module docstring).

    Args:
        file: the store's file.
        widths: the store's tier widths (seconds, finest first).
        rollup_width: the width of the hourly rows processes write beside their 1-min rows
            (3600), or ``None`` where they write none (the tiers have an hourly tier or no
            1-min one); 1-min rows of whole hours are then read one by one.
    """

    def __init__(self, file: StoreFile, *, widths: list[int], rollup_width: int | None) -> None:
        self._file = file
        self._widths = widths
        self._rollup_width = rollup_width
        self._catalog: dict[int, tuple[SeriesKey, Kind, str]] = {}
        # other processes' 1-min rows of whole hours, merged, with their rows' signature
        self._hours: dict[tuple[int, int], tuple[dict[int, tuple[int, int, float]], Agg]] = {}

    def series(self, metric: str | None) -> list[tuple[SeriesKey, Kind, str]]:
        """The file's series (of ``metric``, or all): ``(key, kind, unit)``; empty if the file
        cannot be read."""
        with self._file.read_lock:
            try:
                return [self._catalog[series_id] for series_id in self._series_ids(metric)]
            except sqlite3.Error as exc:
                self._file.read_failed("reading", exc)
                return []

    def plan(
        self, window_s: float | None, now_s: float, width_for: Callable[[float], float]
    ) -> _Plan:
        """Bucket ranges that together hold exactly the window of
        :meth:`MetricStore.fold <otel_monitoring.store.MetricStore.fold>` (``window_s`` and
        ``now_s`` in seconds; ``width_for``: the store's finest tier covering a window)."""
        if window_s is None:
            return [(TOTAL_WIDTH, 0, 0)]
        width = int(width_for(window_s))
        first = math.floor((now_s - window_s) / width) + 1
        last = math.floor(now_s / width)
        coarser = [w for w in reversed(self._widths) if w > width and w % width == 0]
        return _cover(first * width, (last + 1) * width, [*coarser, width])

    def rows(
        self,
        metric: str,
        group: Callable[[SeriesKey], K | None],
        plan: _Plan,
        touch: Callable[[K], None],
    ) -> list[tuple[K, int, int, Kind, RowValues]]:
        """Rows of other processes in the plan's ranges; empty if the file cannot be read."""
        with self._file.read_lock:
            try:
                chosen = self._chosen(metric, group, touch)
                return self._rows_of(chosen, plan) if chosen else []
            except sqlite3.Error as exc:
                self._file.read_failed("reading", exc)
                return []

    def merge(
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
        with self._file.read_lock:
            try:
                chosen = self._chosen(metric, group, merger.touch)
                if not chosen:
                    return
                rows = self._rows_of(chosen, rest)
                hours = self._hours_of(chosen, whole) if whole else []
            except sqlite3.Error as exc:
                self._file.read_failed("reading", exc)
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
        conn = self._file.reader()
        ids = ",".join(str(i) for i in chosen)  # integers from the file: safe inline
        out = []
        for width, first, last in plan:
            for series_id, w, i, *values in conn.execute(
                f"SELECT series, width, idx, {_COLUMNS} FROM buckets"
                f" WHERE series IN ({ids}) AND width = ? AND idx BETWEEN ? AND ?"
                " AND process != ?",
                (width, first, last, self._file.process_id),
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
        :class:`~otel_monitoring.store.sqlite.store.SqliteStore`); it stands in for them when its
        request count and latest time are theirs, else (a file written before hourly rows,
        rows removed by a cleanup) the 1-min rows are merged. Each hour's merge is kept with
        the signature of its 1-min rows per process (how many, their request count, their
        latest time), read by a query that touches no histogram: a row rewritten with more
        data, added or deleted changes it, and only such hours are read again. Hours more
        than a day older than the newest asked are forgotten.
        """
        conn = self._file.reader()
        ids = ",".join(str(i) for i in chosen)  # integers from the file: safe inline
        signatures: dict[tuple[int, int], dict[int, tuple[int, int, float]]] = {}
        for start, end in spans:
            for series_id, hour, process, rows, requests, last_t in conn.execute(
                f"SELECT series, idx / {_PER_HOUR}, process, count(*), sum(count), max(last_t)"
                f" FROM buckets WHERE series IN ({ids}) AND width = {_MINUTE}"
                " AND idx BETWEEN ? AND ? AND process != ?"
                f" GROUP BY series, idx / {_PER_HOUR}, process",
                (start * _PER_HOUR, (end + 1) * _PER_HOUR - 1, self._file.process_id),
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
                (hour, self._file.process_id),
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
                    (hour * _PER_HOUR, (hour + 1) * _PER_HOUR - 1, self._file.process_id),
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
        conn = self._file.reader()
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
