"""Change-points: level shifts in a series (e.g. p95 latency after a deploy), with their time,
size and significance, attributed to a version change when version labels are given.

Method: binary segmentation. In a segment, the split that maximises the standardised
difference of means (the CUSUM statistic ``sqrt(k(n-k)/n) * |mean_left - mean_right|``) is
the candidate; it is kept when both sides have at least ``min_segment`` points, the medians
differ by at least ``min_relative_change`` and a Mann-Whitney U test of the two sides gives
``p < alpha``. Because the split was chosen to look different, the test is optimistic; the
default ``alpha`` is strict (1e-4) for that reason. Levels are medians (robust to outliers).

When ``versions`` (one label per point) are given, a change found within ``min_segment``
points of a version change is moved to that version change and carries both labels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from analyzers._validation import as_float_array, check_same_length, check_timestamps
from analyzers.errors import InvalidInputError

__all__ = ["ChangePoint", "find_change_points"]


@dataclass(frozen=True, slots=True)
class ChangePoint:
    """A level shift starting at ``index`` (the first point of the new level).

    ``before_level``/``after_level`` are the medians of the adjacent segments;
    ``relative_change`` is ``(after - before) / |before|`` (``None`` when before is 0);
    ``p_value`` is the two-sided Mann-Whitney U test of the two segments. ``version_before``
    and ``version_after`` are set when the shift coincides with a version change.
    """

    index: int
    timestamp_s: float
    before_level: float
    after_level: float
    absolute_change: float
    relative_change: float | None
    p_value: float
    version_before: str | None = None
    version_after: str | None = None


def _best_split(x: npt.NDArray[np.float64], min_segment: int) -> int | None:
    n = len(x)
    if n < 2 * min_segment:
        return None
    # centre first: keeps the cumulative sums small and the statistic exact for huge offsets
    c = x - np.median(x)
    csum = np.cumsum(c)
    k = np.arange(min_segment, n - min_segment + 1)
    left = csum[k - 1] / k
    right = (csum[-1] - csum[k - 1]) / (n - k)
    stat = np.sqrt(k * (n - k) / n) * np.abs(left - right)
    if not np.isfinite(stat).all() or stat.max() == 0.0:
        return None
    return int(k[int(np.argmax(stat))])


def find_change_points(
    timestamps_s: Sequence[float] | npt.ArrayLike,
    values: Sequence[float] | npt.ArrayLike,
    versions: Sequence[str] | None = None,
    *,
    min_segment: int = 10,
    alpha: float = 1e-4,
    min_relative_change: float = 0.05,
    max_changes: int = 10,
) -> tuple[ChangePoint, ...]:
    """Level shifts of ``values`` in time order (see the module docstring for the method).

    ``timestamps_s`` are seconds, non-decreasing. Series shorter than ``2 * min_segment`` give
    no change-points. Cost: O(n log n) per accepted change.
    """
    ts = as_float_array(timestamps_s, "timestamps_s")
    x = as_float_array(values, "values")
    check_same_length(ts, x, "timestamps_s", "values")
    check_timestamps(ts, "timestamps_s")
    if versions is not None and len(versions) != len(x):
        raise InvalidInputError(f"versions has {len(versions)} labels for {len(x)} values")
    if min_segment < 2 or max_changes < 0 or not 0.0 < alpha < 1.0 or min_relative_change < 0:
        raise InvalidInputError(
            "need min_segment >= 2, max_changes >= 0, 0 < alpha < 1, min_relative_change >= 0"
        )
    version_changes: list[int] = []
    if versions is not None:
        version_changes = [i for i in range(1, len(versions)) if versions[i] != versions[i - 1]]
    cuts: list[int] = []
    pending = [(0, len(x))]
    while pending and len(cuts) < max_changes:
        a, b = pending.pop()
        k = _best_split(x[a:b], min_segment)
        if k is None:
            continue
        cut = a + k
        near = [v for v in version_changes if abs(v - cut) <= min_segment and a < v < b]
        if near:
            cut = min(near, key=lambda v: abs(v - cut))
        if _accept(x[a:cut], x[cut:b], min_segment, alpha, min_relative_change) is None:
            continue
        cuts.append(cut)
        pending.extend([(a, cut), (cut, b)])
    cuts.sort()
    out: list[ChangePoint] = []
    bounds = [0, *cuts, len(x)]
    for i, cut in enumerate(cuts):
        before, after = x[bounds[i] : cut], x[cut : bounds[i + 2]]
        p = _accept(before, after, 1, 1.0, 0.0)
        lo, hi = float(np.median(before)), float(np.median(after))
        rel = None if lo == 0.0 else (hi - lo) / abs(lo)
        vb = va = None
        if versions is not None and cut in version_changes:
            vb, va = str(versions[cut - 1]), str(versions[cut])
        out.append(
            ChangePoint(cut, float(ts[cut]), lo, hi, hi - lo, rel, 1.0 if p is None else p, vb, va)
        )
    return tuple(out)


def _accept(
    before: npt.NDArray[np.float64],
    after: npt.NDArray[np.float64],
    min_segment: int,
    alpha: float,
    min_relative_change: float,
) -> float | None:
    """Mann-Whitney p-value of the split, or None when the split fails a criterion."""
    if len(before) < min_segment or len(after) < min_segment:
        return None
    lo, hi = float(np.median(before)), float(np.median(after))
    scale = max(abs(lo), abs(hi))
    if hi == lo or (scale > 0 and abs(hi - lo) / scale < min_relative_change):
        return None
    p = float(stats.mannwhitneyu(before, after, alternative="two-sided").pvalue)
    if math.isnan(p) or p >= alpha:
        return None
    return p
