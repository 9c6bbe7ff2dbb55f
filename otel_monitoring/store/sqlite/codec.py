"""Bucket rows on disk and the fast merge of many of them.

A row holds one aggregate (:class:`~otel_monitoring.store.memory.Agg`) of one series, one tier
bucket, written by one process. Histograms are stored sparse: the occupied bucket positions
relative to the offset as little-endian ``uint32`` followed by their counts as ``int64`` (12
bytes per occupied bucket, nothing for empty ones), so a 10 s bucket with 20 requests takes
~240 bytes whatever the latency spread.

:class:`Merger` folds many rows and in-memory aggregates into one aggregate per group with the
same result as :meth:`Agg.merge` applied one by one: counts, errors and histogram bucket
counts are exact integers (histograms at different scales are down-scaled exactly); float sums
may differ in the last bits because the addition order differs.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

from otel_monitoring.store.histogram import ExpHistogram
from otel_monitoring.store.memory import Agg, Kind

__all__ = ["ROW_COLUMNS", "Merger", "RowValues", "encode_agg"]

K = TypeVar("K", bound=Hashable)
_Ints = npt.NDArray[np.int64]

#: Value columns of a bucket row, in the order :func:`encode_agg` returns them.
ROW_COLUMNS = (
    "count",
    "errors",
    "value",
    "last_t",
    "hscale",
    "hzero",
    "hoffset",
    "hcount",
    "hsum",
    "hmin",
    "hmax",
    "hbuckets",
)

#: ``(count, errors, value, last_t, hscale, hzero, hoffset, hcount, hsum, hmin, hmax, hbuckets)``
RowValues = tuple[
    int,
    int,
    float,
    float,
    int | None,
    int | None,
    int | None,
    int | None,
    float | None,
    float | None,
    float | None,
    bytes | None,
]


def encode_agg(agg: Agg) -> RowValues:
    """The column values of one aggregate (histogram bucket counts sparse, see module doc)."""
    hist = agg.hist
    if hist is None:
        return (agg.count, agg.errors, agg.value, agg.last_t, *(None,) * 8)
    positions = np.flatnonzero(hist.counts)
    blob = positions.astype("<u4").tobytes() + hist.counts[positions].astype("<i8").tobytes()
    return (
        agg.count,
        agg.errors,
        agg.value,
        agg.last_t,
        hist.scale,
        hist.zero_count,
        hist.offset,
        hist.count,
        hist.sum,
        hist.min,
        hist.max,
        blob,
    )


def _sparse(blob: bytes) -> tuple[_Ints, _Ints]:
    n = len(blob) // 12
    positions = np.frombuffer(blob, dtype="<u4", count=n).astype(np.int64)
    counts = np.frombuffer(blob, dtype="<i8", count=n, offset=4 * n).astype(np.int64)
    return positions, counts


class _Cell:
    """Running merge of one group: scalars in Python, histogram parts kept for one bincount."""

    __slots__ = (
        "count",
        "errors",
        "has_hist",
        "hcount",
        "hmax",
        "hmin",
        "hsum",
        "last_t",
        "parts",
        "scale",
        "value",
        "zero",
    )

    def __init__(self) -> None:
        self.count = 0
        self.errors = 0
        self.value = 0.0
        self.last_t = -math.inf
        self.has_hist = False
        self.scale = 0
        self.zero = 0
        self.hcount = 0
        self.hsum = 0.0
        self.hmin = math.inf
        self.hmax = -math.inf
        # (scale, absolute bucket indices, counts) of every non-empty histogram merged in
        self.parts: list[tuple[int, _Ints, _Ints]] = []

    def scalars(self, kind: Kind, count: int, errors: int, value: float, last_t: float) -> None:
        if kind is Kind.GAUGE:
            if last_t >= self.last_t:
                self.value = value
                self.last_t = last_t
        else:
            self.value += value
            if last_t > self.last_t:
                self.last_t = last_t
        self.count += count
        self.errors += errors

    def hist_header(
        self, scale: int, zero: int, count: int, total: float, low: float, high: float
    ) -> bool:
        """Account a histogram's header; ``True`` when its buckets must be merged too."""
        if not self.has_hist:
            self.has_hist = True
            self.scale = scale
        if count <= 0:
            return False
        self.scale = min(self.scale, scale)
        self.zero += zero
        self.hcount += count
        self.hsum += total
        self.hmin = min(self.hmin, low)
        self.hmax = max(self.hmax, high)
        return True

    def result(self) -> Agg:
        agg = Agg()
        agg.count, agg.errors, agg.value, agg.last_t = (
            self.count,
            self.errors,
            self.value,
            self.last_t,
        )
        if not self.has_hist:
            return agg
        scale = self.scale
        hist = ExpHistogram(scale)
        hist.zero_count, hist.count, hist.sum = self.zero, self.hcount, self.hsum
        hist.min, hist.max = self.hmin, self.hmax
        if self.parts:
            indices = np.concatenate([i >> (s - scale) for s, i, _ in self.parts])
            counts = np.concatenate([c for _, _, c in self.parts])
            low = int(indices.min())
            hist.offset = low
            # float weights are exact below 2**53 counts per bucket
            hist.counts = np.bincount(indices - low, weights=counts).astype(np.int64)
        agg.hist = hist
        return agg


class Merger(Generic[K]):
    """Merges aggregates (in memory or as stored rows) into one :class:`Agg` per group."""

    def __init__(self) -> None:
        self._cells: dict[K, _Cell] = {}

    def _cell(self, group: K) -> _Cell:
        cell = self._cells.get(group)
        if cell is None:
            cell = self._cells[group] = _Cell()
        return cell

    def touch(self, group: K) -> None:
        """Make sure ``group`` is in the results (an empty aggregate if nothing is added)."""
        self._cell(group)

    def add_agg(self, group: K, agg: Agg, kind: Kind) -> None:
        """Merge an in-memory aggregate (it is not modified)."""
        cell = self._cell(group)
        cell.scalars(kind, agg.count, agg.errors, agg.value, agg.last_t)
        hist = agg.hist
        if hist is not None and cell.hist_header(
            hist.scale, hist.zero_count, hist.count, hist.sum, hist.min, hist.max
        ):
            positions = np.flatnonzero(hist.counts)
            if positions.size:
                cell.parts.append((hist.scale, positions + hist.offset, hist.counts[positions]))

    def add_row(self, group: K, kind: Kind, row: RowValues) -> None:
        """Merge a stored row (the values of :data:`ROW_COLUMNS`, in order)."""
        count, errors, value, last_t, scale, zero, offset, hcount, hsum, hmin, hmax, blob = row
        cell = self._cell(group)
        cell.scalars(kind, count, errors, value, last_t)
        if scale is None:
            return
        if cell.hist_header(scale, zero or 0, hcount or 0, hsum or 0.0, _f(hmin), _f(hmax, -1)):
            positions, counts = _sparse(blob or b"")
            if positions.size:
                cell.parts.append((scale, positions + (offset or 0), counts))

    def results(self) -> dict[K, Agg]:
        """One merged aggregate per group seen."""
        return {group: cell.result() for group, cell in self._cells.items()}


def _f(value: float | None, sign: int = 1) -> float:
    """SQLite stores infinities as REAL but NaN as NULL; an absent bound is +-inf."""
    return sign * math.inf if value is None else value
