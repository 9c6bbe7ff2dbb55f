"""The in-memory store: time-bucketed series with tiers and a cardinality cap.

Each series (a metric name plus normalised attributes) keeps ring buffers of buckets: 10 s
buckets for the last hour, 1 min buckets for the last day and 1 h buckets beyond, up to the
retention, plus one running total since start. With a retention of a day or less an hourly
rollup (25 buckets; the SQLite store also writes it, for other workers) sits beside the tiers,
so a window is folded from whole coarser buckets with finer ones only at its edges: exactly the
same sums, a day in about 100 merges instead of 1,440. Memory is bounded by ``series x buckets x
histogram width`` and never grows with the number of requests. Past ``max_series`` series of one
metric, new attribute sets fold into a single overflow series (``otel.metric.overflow=true``),
as the OpenTelemetry specification does for SDK limits.

Thread-safety: every public method takes the store's lock; ingestion happens once per
collection interval (not per request), so the lock is never held on the request path.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

from otel_monitoring.store.histogram import ExpHistogram

__all__ = ["OVERFLOW_ATTRIBUTES", "Agg", "Kind", "MetricStore", "SeriesKey", "Tier"]

K = TypeVar("K")
Attributes = tuple[tuple[str, str], ...]

OVERFLOW_ATTRIBUTES: Attributes = (("otel.metric.overflow", "true"),)
_ROLLUP_S = 3600.0
_MAX_VERSIONS = 100


class Kind(StrEnum):
    """What a series accumulates."""

    HISTOGRAM = "histogram"
    SUM = "sum"
    GAUGE = "gauge"


@dataclass(frozen=True, slots=True)
class SeriesKey:
    """Identity of a series: metric name and sorted, stringified attributes."""

    metric: str
    attributes: Attributes

    def get(self, name: str, default: str = "") -> str:
        """Value of one attribute, or ``default``."""
        for key, value in self.attributes:
            if key == name:
                return value
        return default


class Agg:
    """What one bucket (or a whole window) holds for a series.

    ``hist`` for histograms; ``value`` is the sum (sums) or last value (gauges); ``count``
    the number of measurements; ``errors`` the measurements flagged as errors.
    """

    __slots__ = ("count", "errors", "hist", "last_t", "value")

    def __init__(self, hist: ExpHistogram | None = None) -> None:
        self.hist = hist
        self.value = 0.0
        self.count = 0
        self.errors = 0
        self.last_t = -math.inf

    def merge(self, other: Agg, kind: Kind) -> None:
        """Fold ``other`` into this aggregate (gauges keep the most recent value)."""
        if other.hist is not None:
            if self.hist is None:
                self.hist = ExpHistogram(other.hist.scale)
            self.hist.merge(other.hist)
        if kind is Kind.GAUGE:
            if other.last_t >= self.last_t:
                self.value = other.value
                self.last_t = other.last_t
        else:
            self.value += other.value
            self.last_t = max(self.last_t, other.last_t)
        self.count += other.count
        self.errors += other.errors


@dataclass(frozen=True, slots=True)
class Tier:
    """A ring of ``slots`` buckets each ``width_s`` seconds wide."""

    width_s: float
    slots: int


def default_tiers(retention_s: float, resolution_s: float = 10.0) -> tuple[Tier, ...]:
    """Finest tier ``resolution_s`` wide for up to 360 buckets (1 h at the default 10 s),
    1 min for up to 24 h, 1 h beyond; each capped at the retention."""
    fine_slots = max(1, min(360, math.ceil(min(retention_s, 3600.0) / resolution_s)))
    tiers = [Tier(resolution_s, fine_slots)]
    if retention_s > resolution_s * fine_slots:
        tiers.append(Tier(60.0, math.ceil(min(retention_s, 86400.0) / 60.0)))
    if retention_s > 86400.0:
        tiers.append(Tier(3600.0, math.ceil(retention_s / 3600.0)))
    return tuple(tiers)


class _Ring:
    """Buckets of one tier. The bucket being filled holds ``int64`` histogram counts; once a
    later bucket starts it is compacted (:meth:`ExpHistogram.compact`, ~8x smaller)."""

    __slots__ = ("newest", "slots", "tier")

    def __init__(self, tier: Tier) -> None:
        self.tier = tier
        self.slots: list[tuple[int, Agg] | None] = [None] * tier.slots
        self.newest: Agg | None = None  # the bucket being filled

    def add(self, t_s: float, agg: Agg, kind: Kind) -> None:
        index = math.floor(t_s / self.tier.width_s)
        position = index % self.tier.slots
        slot = self.slots[position]
        if slot is None or slot[0] != index:
            into = Agg()
            self.slots[position] = (index, into)
        else:
            into = slot[1]
        into.merge(agg, kind)
        if into is not self.newest:
            # a new bucket (the previous one is done) or a late add to a closed one
            if self.newest is not None and self.newest.hist is not None:
                self.newest.hist.compact()
            self.newest = into

    def fold(self, first: int, last: int, into: Agg, kind: Kind) -> None:
        """Merge the buckets with index in ``[first, last]`` into ``into``."""
        for _, agg in self.between(first, last):
            into.merge(agg, kind)

    def between(self, first: int, last: int) -> Iterator[tuple[int, Agg]]:
        """The buckets with index in ``[first, last]``; visits at most ``slots`` positions."""
        size = self.tier.slots
        if last - first + 1 >= size:
            for slot in self.slots:
                if slot is not None and first <= slot[0] <= last:
                    yield slot
            return
        slots = self.slots
        for index in range(max(first, last - size + 1), last + 1):
            slot = slots[index % size]
            if slot is not None and slot[0] == index:
                yield slot

    def drop_before(self, t_s: float) -> int:
        cutoff = math.floor(t_s / self.tier.width_s)
        removed = 0
        for position, slot in enumerate(self.slots):
            if slot is not None and slot[0] < cutoff:
                self.slots[position] = None
                removed += 1
        return removed

    def newest_index(self) -> int | None:
        indices = [slot[0] for slot in self.slots if slot is not None]
        return max(indices) if indices else None


class _Series:
    __slots__ = ("kind", "rings", "rollup", "total", "unit")

    def __init__(self, kind: Kind, unit: str, tiers: tuple[Tier, ...], rollup: Tier | None) -> None:
        self.kind = kind
        self.unit = unit
        self.rings = [_Ring(tier) for tier in tiers]
        # hourly sums of the finer tiers, to fold long windows quickly (the SQLite store also
        # writes them once an hour is over, for other workers)
        self.rollup = _Ring(rollup) if rollup is not None else None
        self.total = Agg()


class MetricStore:
    """Time-bucketed series, bounded by ``max_series`` per metric and by the retention."""

    def __init__(
        self, *, retention_s: float = 86400.0, max_series: int = 2000, resolution_s: float = 10.0
    ) -> None:
        self.retention_s = retention_s
        self.max_series = max_series
        self.tiers = default_tiers(retention_s, resolution_s)
        coarsest = self.tiers[-1].width_s
        self._rollup = (
            Tier(_ROLLUP_S, math.ceil(min(retention_s, 86400.0) / _ROLLUP_S) + 1)
            if coarsest < _ROLLUP_S and _ROLLUP_S % coarsest == 0
            else None
        )
        self._series: dict[SeriesKey, _Series] = {}
        self._cutoff_s = -math.inf  # the latest drop_before: older data may be partly gone
        self._per_metric: dict[str, int] = {}
        self._lock = threading.Lock()
        self.overflowed = 0
        self._versions: dict[str, float] = {}

    # -- ingestion -------------------------------------------------------------------------
    def add(self, key: SeriesKey, kind: Kind, unit: str, t_s: float, agg: Agg) -> None:
        """Add one interval's aggregate of a series at wall time ``t_s`` (seconds)."""
        agg.last_t = t_s
        with self._lock:
            series = self._series.get(key)
            if series is None:
                if self._per_metric.get(key.metric, 0) >= self.max_series:
                    self.overflowed += agg.count or 1
                    key = SeriesKey(key.metric, OVERFLOW_ATTRIBUTES)
                    series = self._series.get(key)
                if series is None:
                    series = _Series(kind, unit, self.tiers, self._rollup)
                    self._series[key] = series
                    self._per_metric[key.metric] = self._per_metric.get(key.metric, 0) + 1
            if series.kind is not kind:
                return
            for ring in series.rings:
                ring.add(t_s, agg, kind)
            if series.rollup is not None:
                series.rollup.add(t_s, agg, kind)
            series.total.merge(agg, kind)

    # -- queries ---------------------------------------------------------------------------
    def fold(
        self,
        metric: str,
        window_s: float | None,
        now_s: float,
        group: Callable[[SeriesKey], K | None],
    ) -> dict[K, Agg]:
        """Aggregate the series of ``metric`` over the last ``window_s`` seconds by ``group``.

        ``group`` maps a series key to a group (or ``None`` to skip it). ``window_s=None``
        means since start.
        """
        out: dict[K, Agg] = {}
        with self._lock:
            for bucket, series in self._grouped(metric, group):
                into = out.get(bucket)
                if into is None:
                    into = out[bucket] = Agg()
                if window_s is None:
                    into.merge(series.total, series.kind)
                else:
                    self._fold_window(series, now_s - window_s, now_s, into)
        return out

    def buckets(
        self,
        metric: str,
        window_s: float,
        now_s: float,
        group: Callable[[SeriesKey], K | None],
    ) -> tuple[float, dict[K, dict[int, Agg]]]:
        """Per-bucket aggregates over the last ``window_s`` seconds, for time series.

        Returns the bucket width (seconds, of the finest tier that covers the window) and,
        per group, ``{bucket index: Agg}``; bucket ``i`` starts at ``i * width``.
        """
        width = self.width_for(window_s)
        first = math.floor((now_s - window_s) / width) + 1
        last = math.floor(now_s / width)
        return width, self.bucket_range(metric, width, first, last, group)

    def width_for(self, window_s: float) -> float:
        """Bucket width (seconds) of the finest tier that covers ``window_s``."""
        for tier in self.tiers:
            if tier.width_s * tier.slots >= window_s:
                return tier.width_s
        return self.tiers[-1].width_s

    def bucket_range(
        self,
        metric: str,
        width: float,
        first: int,
        last: int,
        group: Callable[[SeriesKey], K | None],
    ) -> dict[K, dict[int, Agg]]:
        """Per group, the buckets of the tier ``width`` with index in ``[first, last]``."""
        out: dict[K, dict[int, Agg]] = {}
        with self._lock:
            for bucket, series in self._grouped(metric, group):
                ring = next(r for r in series.rings if r.tier.width_s == width)
                per_index = out.setdefault(bucket, {})
                for index, agg in ring.between(first, last):
                    into = per_index.get(index)
                    if into is None:
                        into = per_index[index] = Agg()
                    into.merge(agg, series.kind)
        return out

    def series(self, metric: str | None = None) -> list[tuple[SeriesKey, Kind, str]]:
        """The series held (optionally of one metric): key, kind and unit."""
        with self._lock:
            return [
                (key, series.kind, series.unit)
                for key, series in self._series.items()
                if metric is None or key.metric == metric
            ]

    def series_count(self, metric: str | None = None) -> int:
        """Number of series held (optionally of one metric)."""
        with self._lock:
            if metric is None:
                return len(self._series)
            return self._per_metric.get(metric, 0)

    def drop_before(self, t_s: float) -> int:
        """Remove buckets older than wall time ``t_s``; returns how many buckets went.

        Series left with no bucket in any tier are removed too (their since-start totals
        go with them), so a route that stopped receiving traffic does not stay forever.
        """
        removed = 0
        with self._lock:
            for key in list(self._series):
                series = self._series[key]
                removed += sum(ring.drop_before(t_s) for ring in series.rings)
                if series.rollup is not None:
                    series.rollup.drop_before(t_s)
                if all(ring.newest_index() is None for ring in series.rings):
                    del self._series[key]
                    self._per_metric[key.metric] -= 1
            self._cutoff_s = max(self._cutoff_s, t_s)
        return removed

    # -- deployed versions -----------------------------------------------------------------
    def note_version(self, version: str, now_s: float) -> None:
        """Record that ``service.version`` ``version`` runs from ``now_s`` (Unix seconds) on,
        unless it was seen before. The 100 most recent versions are kept."""
        with self._lock:
            self._versions.setdefault(version, now_s)
            while len(self._versions) > _MAX_VERSIONS:
                del self._versions[min(self._versions, key=self._versions.__getitem__)]

    def versions(self) -> list[tuple[float, str]]:
        """``(first seen, version)`` of the versions that wrote here, oldest first."""
        with self._lock:
            return sorted((t, v) for v, t in self._versions.items())

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._series.clear()
            self._per_metric.clear()

    def __iter__(self) -> Iterator[SeriesKey]:
        with self._lock:
            return iter(list(self._series))

    def _grouped(
        self, metric: str, group: Callable[[SeriesKey], K | None]
    ) -> Iterator[tuple[K, _Series]]:
        """The series of ``metric`` with their group (skipping ``None``); caller holds the lock."""
        for key, series in self._series.items():
            if key.metric == metric:
                bucket = group(key)
                if bucket is not None:
                    yield bucket, series

    def _fold_window(self, series: _Series, since_s: float, until_s: float, into: Agg) -> None:
        """Merge the buckets of the finest tier covering ``(since_s, until_s]`` into ``into``,
        reading whole coarser buckets (1 min, then the hourly rollup) wherever they lie wholly
        inside the window: the same sums with far fewer merges (a day: ~100 instead of 1,440
        per series). A coarser bucket that began before the last :meth:`drop_before` cutoff is
        read from the finer tier, which lost the dropped part of it."""
        ring = self._ring_for(series, until_s - since_s)
        width = ring.tier.width_s
        first = math.floor(since_s / width) + 1
        last = math.floor(until_s / width)
        if width * ring.tier.slots < until_s - since_s:  # beyond every tier: what is left
            ring.fold(first, last, into, series.kind)
            return
        levels = [r for r in series.rings if r.tier.width_s > width]
        if series.rollup is not None:
            levels.append(series.rollup)
        self._fold_levels(ring, levels, first, last, into, series.kind)

    def _fold_levels(
        self, ring: _Ring, coarser: list[_Ring], first: int, last: int, into: Agg, kind: Kind
    ) -> None:
        """Fold buckets ``[first, last]`` of ``ring``, the whole ones of the next coarser ring
        (whose width is a multiple of this one's) in their place, recursively."""
        width = ring.tier.width_s
        up = next((r for r in coarser if r.tier.width_s % width == 0), None)
        if up is not None:
            per = int(up.tier.width_s // width)
            # the coarse buckets wholly inside [first, last] and not before the cutoff
            start = -(-first // per)
            if self._cutoff_s > -math.inf:
                start = max(start, math.ceil(self._cutoff_s / up.tier.width_s))
            end = (last + 1) // per - 1
            if start <= end:
                ring.fold(first, start * per - 1, into, kind)
                rest = [r for r in coarser if r.tier.width_s > up.tier.width_s]
                self._fold_levels(up, rest, start, end, into, kind)
                ring.fold((end + 1) * per, last, into, kind)
                return
        ring.fold(first, last, into, kind)

    @staticmethod
    def _ring_for(series: _Series, window_s: float) -> _Ring:
        for ring in series.rings:
            if ring.tier.width_s * ring.tier.slots >= window_s:
                return ring
        return series.rings[-1]
