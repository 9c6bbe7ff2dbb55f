"""Trend analysis: Mann-Kendall significance, Theil-Sen slope, moving averages, % change.

* Mann-Kendall (Mann 1945, Kendall 1975): a rank test for a monotonic trend, with the variance
  corrected for ties and the usual continuity correction. It claims a trend only when
  ``p_value < alpha``, so on white noise it is wrong in about ``alpha`` of the cases.
* Theil-Sen (``scipy.stats.theilslopes``): the median of pairwise slopes, robust to up to ~29 %
  outliers, with a confidence interval; reported in value units per hour.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from analyzers._validation import as_float_array, check_same_length, check_timestamps
from analyzers.errors import InsufficientDataError, InvalidInputError

__all__ = [
    "MannKendallResult",
    "PercentChange",
    "TheilSenSlope",
    "TrendDirection",
    "TrendResult",
    "analyze_trend",
    "exponential_moving_average",
    "mann_kendall",
    "percent_change",
    "simple_moving_average",
    "theil_sen",
]

_HOUR_S = 3600.0
_CHUNK = 2048  # rows of the pairwise sign matrix built at once (bounds memory to ~32 MB)


class TrendDirection(enum.Enum):
    """Direction of a trend that passed the significance test (else ``NONE``)."""

    INCREASING = "increasing"
    DECREASING = "decreasing"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class MannKendallResult:
    """Mann-Kendall test: statistic ``s`` (concordant minus discordant pairs), its tie-corrected
    variance, the normal score ``z``, two-sided ``p_value``, Kendall's ``tau`` (tau-a) and the
    ``direction`` at level ``alpha``."""

    s: int
    variance: float
    z: float
    p_value: float
    tau: float
    n: int
    alpha: float
    direction: TrendDirection


@dataclass(frozen=True, slots=True)
class TheilSenSlope:
    """Theil-Sen line ``value = intercept + slope_per_hour * hours_since_first_timestamp`` and
    the ``confidence`` interval of the slope (value units per hour)."""

    slope_per_hour: float
    intercept: float
    low_per_hour: float
    high_per_hour: float
    confidence: float


@dataclass(frozen=True, slots=True)
class PercentChange:
    """Mean of a "before" and an "after" window and the change between them in percent
    (``None`` when the before-mean is 0)."""

    before_mean: float
    after_mean: float
    absolute_change: float
    percent: float | None


@dataclass(frozen=True, slots=True)
class TrendResult:
    """Everything :func:`analyze_trend` found, with the evidence behind ``direction``."""

    direction: TrendDirection
    significant: bool
    mann_kendall: MannKendallResult
    slope: TheilSenSlope
    change: PercentChange
    n: int
    duration_s: float


def mann_kendall(
    values: Sequence[float] | npt.ArrayLike, alpha: float = 0.05, *, continuity: bool = True
) -> MannKendallResult:
    """Mann-Kendall trend test of ``values`` (in time order) at significance ``alpha``.

    O(n^2) time, O(n) memory beyond a bounded work matrix. Needs at least 3 finite values;
    constant input gives ``p_value == 1`` and no trend. With ``continuity=False`` the p-value
    equals ``scipy.stats.kendalltau(range(n), values, method="asymptotic")``.
    """
    x = as_float_array(values, "values", min_len=3)
    if not 0.0 < alpha < 1.0:
        raise InvalidInputError(f"alpha must be in (0, 1), got {alpha}")
    n = len(x)
    s = 0
    for start in range(0, n - 1, _CHUNK):
        block = x[start : start + _CHUNK]
        diff = np.sign(x[None, :] - block[:, None])
        # keep only pairs (i, j) with j > i
        rows = np.arange(start, start + len(block))[:, None]
        cols = np.arange(n)[None, :]
        s += int(diff[cols > rows].sum())
    _, counts = np.unique(x, return_counts=True)
    ties = counts[counts > 1].astype(np.float64)
    variance = (n * (n - 1) * (2 * n + 5) - float(np.sum(ties * (ties - 1) * (2 * ties + 5)))) / 18
    if variance <= 0.0:
        z = 0.0
    else:
        adj = (1 if s > 0 else -1 if s < 0 else 0) if continuity else 0
        z = (s - adj) / math.sqrt(variance)
    p = float(2.0 * stats.norm.sf(abs(z)))
    tau = s / (n * (n - 1) / 2)
    if p < alpha and s != 0:
        direction = TrendDirection.INCREASING if s > 0 else TrendDirection.DECREASING
    else:
        direction = TrendDirection.NONE
    return MannKendallResult(s, float(variance), float(z), p, float(tau), n, alpha, direction)


def theil_sen(
    timestamps_s: Sequence[float] | npt.ArrayLike,
    values: Sequence[float] | npt.ArrayLike,
    confidence: float = 0.95,
) -> TheilSenSlope:
    """Theil-Sen slope of ``values`` against time, in value units per hour.

    ``timestamps_s`` are seconds; they must be non-decreasing and span a positive time.
    """
    ts = as_float_array(timestamps_s, "timestamps_s", min_len=2)
    x = as_float_array(values, "values", min_len=2)
    check_same_length(ts, x, "timestamps_s", "values")
    check_timestamps(ts, "timestamps_s")
    if not 0.0 < confidence < 1.0:
        raise InvalidInputError(f"confidence must be in (0, 1), got {confidence}")
    if ts[-1] == ts[0]:
        raise InsufficientDataError("timestamps_s span no time; a slope needs two distinct times")
    hours = (ts - ts[0]) / _HOUR_S
    res = stats.theilslopes(x, hours, alpha=confidence)
    return TheilSenSlope(
        float(res.slope),
        float(res.intercept),
        float(res.low_slope),
        float(res.high_slope),
        confidence,
    )


def simple_moving_average(
    values: Sequence[float] | npt.ArrayLike, window: int
) -> npt.NDArray[np.float64]:
    """Trailing mean of the last ``window`` values (causal); the first ``window - 1`` are NaN."""
    x = as_float_array(values, "values")
    if window < 1:
        raise InvalidInputError(f"window must be >= 1, got {window}")
    out = np.full(len(x), np.nan)
    if len(x) >= window:
        csum = np.cumsum(np.concatenate(([0.0], x)))
        out[window - 1 :] = (csum[window:] - csum[:-window]) / window
    return out


def exponential_moving_average(
    values: Sequence[float] | npt.ArrayLike, alpha: float
) -> npt.NDArray[np.float64]:
    """``ema[i] = alpha * x[i] + (1 - alpha) * ema[i-1]``, starting at ``ema[0] = x[0]``."""
    x = as_float_array(values, "values")
    if not 0.0 < alpha <= 1.0:
        raise InvalidInputError(f"alpha must be in (0, 1], got {alpha}")
    if len(x) == 0:
        return x.copy()
    from scipy.signal import lfilter

    y, _ = lfilter([alpha], [1.0, alpha - 1.0], x[1:], zi=[(1.0 - alpha) * x[0]])
    return np.concatenate(([x[0]], np.asarray(y, dtype=np.float64)))


def percent_change(
    values: Sequence[float] | npt.ArrayLike,
    before: tuple[int, int] | None = None,
    after: tuple[int, int] | None = None,
) -> PercentChange:
    """Change of the mean from the ``before`` to the ``after`` window (index ranges, half open).

    Defaults: the first half against the second half (the middle point of an odd length goes
    to neither).
    """
    x = as_float_array(values, "values")
    n = len(x)
    if before is None and after is None:
        if n < 2:
            raise InsufficientDataError("percent change needs at least 2 values")
        before, after = (0, n // 2), (n - n // 2, n)
    if before is None or after is None:
        raise InvalidInputError("give both windows or neither")
    for name, (a, b) in (("before", before), ("after", after)):
        if not 0 <= a < b <= n:
            raise InvalidInputError(f"{name} window {(a, b)} is empty or outside 0..{n}")
    m0 = float(np.mean(x[before[0] : before[1]]))
    m1 = float(np.mean(x[after[0] : after[1]]))
    pct = None if m0 == 0.0 else 100.0 * (m1 - m0) / abs(m0)
    return PercentChange(m0, m1, m1 - m0, pct)


def _bin_means(
    ts: npt.NDArray[np.float64], x: npt.NDArray[np.float64], bins: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Means of ``bins`` consecutive, (nearly) equally sized groups of points."""
    edges = np.linspace(0, len(x), bins + 1).astype(np.int64)
    sums_t = np.add.reduceat(ts, edges[:-1])
    sums_x = np.add.reduceat(x, edges[:-1])
    sizes = np.diff(edges).astype(np.float64)
    return sums_t / sizes, sums_x / sizes


def analyze_trend(
    timestamps_s: Sequence[float] | npt.ArrayLike,
    values: Sequence[float] | npt.ArrayLike,
    alpha: float = 0.05,
    *,
    max_points: int | None = 256,
) -> TrendResult:
    """Mann-Kendall direction, Theil-Sen slope (per hour) and first-half/second-half % change.

    Needs at least 3 points spanning a positive time; no trend is claimed unless the
    Mann-Kendall p-value is below ``alpha``. Both tests are O(n^2): a series longer than
    ``max_points`` is first averaged into ``max_points`` consecutive groups (the trend of
    the group means; ``n`` reports the points tested), which keeps a day of 10-s points
    (8,640) to a few milliseconds. ``max_points=None`` tests every point.
    """
    ts = as_float_array(timestamps_s, "timestamps_s", min_len=3)
    x = as_float_array(values, "values", min_len=3)
    check_same_length(ts, x, "timestamps_s", "values")
    change = percent_change(x)
    if max_points is not None:
        if max_points < 3:
            raise InvalidInputError(f"max_points must be >= 3, got {max_points}")
        if len(x) > max_points:
            ts, x = _bin_means(ts, x, max_points)
    mk = mann_kendall(x, alpha)
    slope = theil_sen(ts, x, 1.0 - alpha)
    return TrendResult(
        mk.direction,
        mk.direction is not TrendDirection.NONE,
        mk,
        slope,
        change,
        len(x),
        float(ts[-1] - ts[0]),
    )
