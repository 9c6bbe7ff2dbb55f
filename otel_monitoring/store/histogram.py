"""A mergeable base-2 exponential histogram, as in the OpenTelemetry data model.

Bucket ``i`` at scale ``s`` holds values in ``(b**i, b**(i+1)]`` with ``b = 2 ** 2**-s``. At the
store's scale (6, 64 buckets per doubling) a quantile read at a bucket's geometric midpoint is
within ``sqrt(b) - 1 = 0.54 %`` relative error of a value in that bucket, so percentiles stay
within 1 % of exact ones. Histograms at different scales merge by down-scaling the finer one,
which is exact (two neighbour buckets join); memory is one ``int64`` per bucket in the occupied
index range, never per value recorded; :meth:`ExpHistogram.compact` narrows a histogram that
is done filling (a closed store bucket) to the smallest unsigned integer type that holds its
counts, usually one byte per bucket.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["STORE_SCALE", "ExpHistogram"]

#: Scale at which the store keeps histograms: 64 buckets per doubling, <= 0.54 % error.
STORE_SCALE = 6

_Counts = npt.NDArray[np.int64]


def _index(value: float, scale: int) -> int:
    """Bucket index of a positive value: the ``i`` with ``b**i < value <= b**(i+1)``."""
    mantissa, exponent = math.frexp(value)
    if mantissa == 0.5:  # exact power of two: upper-inclusive bucket boundary
        return ((exponent - 1) << scale) - 1
    return math.ceil(math.log2(value) * (1 << scale)) - 1


class ExpHistogram:
    """Counts, sum, min, max and exponential buckets of non-negative values (seconds, bytes...).

    Not thread-safe: the store serialises access. ``merge`` and ``add_buckets`` never lose a
    count; they may lower the scale (resolution) when the other side is coarser.
    """

    __slots__ = ("count", "counts", "max", "min", "offset", "scale", "sum", "zero_count")

    def __init__(self, scale: int = STORE_SCALE) -> None:
        self.scale = scale
        self.zero_count = 0
        self.offset = 0
        self.counts: _Counts = np.zeros(0, dtype=np.int64)
        self.count = 0
        self.sum = 0.0
        self.min = math.inf
        self.max = -math.inf

    @classmethod
    def from_values(cls, values: Iterable[float], scale: int = STORE_SCALE) -> ExpHistogram:
        """Build a histogram from raw values (negative values are ignored)."""
        hist = cls(scale)
        arr = np.asarray(list(values), dtype=np.float64)
        arr = arr[np.isfinite(arr) & (arr >= 0)]
        if arr.size == 0:
            return hist
        positive = arr[arr > 0]
        hist.zero_count = int(arr.size - positive.size)
        if positive.size:
            # upper-inclusive boundaries: log2 of an exact power of two is exact, so it
            # lands in the bucket below, as in _index()
            idx = np.ceil(np.log2(positive) * (1 << scale)).astype(np.int64) - 1
            lo = int(idx.min())
            hist.offset = lo
            hist.counts = np.bincount(idx - lo).astype(np.int64)
        hist.count = int(arr.size)
        hist.sum = float(arr.sum())
        hist.min = float(arr.min())
        hist.max = float(arr.max())
        return hist

    def record(self, value: float) -> None:
        """Add one value. Negative, NaN and infinite values are ignored (count them upstream)."""
        if not (value >= 0 and math.isfinite(value)):
            return
        self.count += 1
        self.sum += value
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        if value == 0:
            self.zero_count += 1
            return
        self._add_index_counts(_index(value, self.scale), np.ones(1, dtype=np.int64))

    def add_buckets(
        self,
        *,
        scale: int,
        zero_count: int,
        offset: int,
        bucket_counts: Sequence[int],
        count: int,
        total: float,
        minimum: float,
        maximum: float,
    ) -> None:
        """Merge an OTel exponential data point's positive range into this histogram."""
        if count <= 0:
            return
        self.add_bucket_counts(scale, offset, bucket_counts)
        self.count += count
        self.sum += total
        self.zero_count += zero_count
        self.min = min(self.min, minimum)
        self.max = max(self.max, maximum)

    def add_bucket_counts(
        self,
        scale: int,
        offset: int,
        bucket_counts: Sequence[int],
        max_buckets: int | None = None,
    ) -> None:
        """Add bucket counts given at ``scale`` (the coarser of the two scales is kept).

        With ``max_buckets``, the scale is first lowered until both ranges together fit in
        that many buckets (so far-apart ranges never allocate the buckets between them at a
        fine scale). Only the buckets change: count, sum, min and max are the caller's.
        """
        counts = np.asarray(bucket_counts, dtype=np.int64)
        if max_buckets is not None and counts.size:
            self.downscale_to(self._joint_scale(scale, offset, counts.size, max_buckets))
        if scale > self.scale:
            offset, counts = _downscale(offset, counts, scale - self.scale)
        elif scale < self.scale:
            self.downscale_to(scale)
        if counts.size:
            self._add_index_counts(offset, counts)

    def _joint_scale(self, scale: int, offset: int, size: int, max_buckets: int) -> int:
        """The finest scale, at most both, at which this range and another fit together."""
        common = min(scale, self.scale)
        lo, hi = offset >> (scale - common), (offset + size - 1) >> (scale - common)
        if self.counts.size:
            own = self.scale - common
            lo = min(lo, self.offset >> own)
            hi = max(hi, (self.offset + self.counts.size - 1) >> own)
        by = 0
        while (hi >> by) - (lo >> by) + 1 > max_buckets:
            by += 1
        return common - by

    def merge(self, other: ExpHistogram) -> None:
        """Add every count of ``other`` into this histogram (``other`` is unchanged)."""
        if other.count == 0:
            return
        self.add_buckets(
            scale=other.scale,
            zero_count=other.zero_count,
            offset=other.offset,
            bucket_counts=other.counts,  # type: ignore[arg-type]
            count=other.count,
            total=other.sum,
            minimum=other.min,
            maximum=other.max,
        )

    def copy(self) -> ExpHistogram:
        """An independent copy."""
        twin = ExpHistogram(self.scale)
        twin.merge(self)
        return twin

    @property
    def mean(self) -> float:
        """Arithmetic mean; NaN when empty."""
        return self.sum / self.count if self.count else math.nan

    def quantile(self, q: float) -> float:
        """The ``q``-quantile (0 <= q <= 1), by nearest rank, read at the bucket's midpoint.

        The result is clamped to ``[min, max]``; NaN when empty.
        """
        if self.count == 0:
            return math.nan
        if q <= 0:
            return self.min
        if q >= 1:
            return self.max
        rank = max(1, math.ceil(q * self.count))
        if rank <= self.zero_count:
            return max(self.min, 0.0)
        cumulative = np.cumsum(self.counts)
        position = int(np.searchsorted(cumulative, rank - self.zero_count))
        position = min(position, len(self.counts) - 1)
        index = self.offset + position
        base_log2 = 1.0 / (1 << self.scale)
        midpoint = float(2.0 ** ((index + 0.5) * base_log2))
        return min(max(midpoint, self.min), self.max)

    def count_above(self, value: float) -> int:
        """How many recorded values exceed ``value`` (to bucket resolution: a bucket counts
        when its lower bound is at or above ``value``; within 0.54 % at the store scale)."""
        if self.count == 0 or value >= self.max:
            return 0
        if value < 0:
            return self.count
        above_zero = self.count - self.zero_count
        if value == 0 or self.counts.size == 0:
            return above_zero
        first = _index(value, self.scale) + 1 - self.offset  # buckets entirely above value
        if first <= 0:
            return int(self.counts.sum())
        return int(self.counts[first:].sum())

    def compact(self) -> None:
        """Hold the counts in the narrowest unsigned type that fits the largest (``uint8``
        below 256), for a histogram that is done filling. Exact; reads are unchanged, and a
        later ``record``/``merge`` into it widens the counts back to ``int64`` first."""
        if self.counts.size and self.counts.dtype == np.int64:
            self.counts = self.counts.astype(np.min_scalar_type(int(self.counts.max())))

    @property
    def nbytes(self) -> int:
        """Approximate memory held by the bucket array, bytes."""
        return int(self.counts.nbytes)

    def downscale_to(self, scale: int) -> None:
        """Lower the resolution to ``scale`` (exact: neighbour buckets join); never raises it."""
        if scale >= self.scale:
            return
        if self.counts.size:
            self.offset, self.counts = _downscale(self.offset, self.counts, self.scale - scale)
        self.scale = scale

    def _add_index_counts(self, offset: int, counts: _Counts) -> None:
        if self.counts.dtype != np.int64:  # compacted: widen before adding (no overflow)
            self.counts = self.counts.astype(np.int64)
        if self.counts.size == 0:
            self.offset = offset
            self.counts = counts.copy()
            return
        lo = min(self.offset, offset)
        hi = max(self.offset + self.counts.size, offset + counts.size)
        if lo != self.offset or hi != self.offset + self.counts.size:
            grown = np.zeros(hi - lo, dtype=np.int64)
            grown[self.offset - lo : self.offset - lo + self.counts.size] = self.counts
            self.counts = grown
            self.offset = lo
        start = offset - self.offset
        self.counts[start : start + counts.size] += counts


def _downscale(offset: int, counts: _Counts, by: int) -> tuple[int, _Counts]:
    """Join buckets ``2**by`` at a time: returns the new offset and counts (exact)."""
    indices = (offset + np.arange(counts.size, dtype=np.int64)) >> by
    lo = int(indices[0])
    return lo, np.bincount(indices - lo, weights=counts).astype(np.int64)
