"""Forecast: when will a metric cross a threshold if its current trend continues?

The trend is the Theil-Sen line (robust to outliers) through the series; the crossing time is
where that line meets the threshold, and its interval comes from the slope's confidence bounds
(a steeper slope crosses sooner, a shallower one later or never). This is an extrapolation of
a straight line: it says nothing about seasonality or about changes the data cannot show.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy.typing as npt

from analyzers._validation import as_float_array, check_same_length, check_timestamps
from analyzers.errors import InvalidInputError
from analyzers.trend import TheilSenSlope, theil_sen

__all__ = ["ForecastStatus", "ThresholdForecast", "forecast_crossing"]

_HOUR_S = 3600.0


class ForecastStatus(enum.Enum):
    """Outcome of :func:`forecast_crossing`."""

    ALREADY_CROSSED = "already_crossed"
    WILL_CROSS = "will_cross"
    NOT_WITHIN_HORIZON = "not_within_horizon"


@dataclass(frozen=True, slots=True)
class ThresholdForecast:
    """Time until the trend line crosses ``threshold``, counted from the last timestamp.

    ``eta_s`` is the central estimate (seconds; ``None`` unless ``WILL_CROSS``);
    ``eta_low_s``/``eta_high_s`` bound it from the slope's confidence interval (``None`` when
    that bound does not cross within the horizon). ``current_level`` is the trend line's value
    at the last timestamp.
    """

    status: ForecastStatus
    threshold: float
    current_level: float
    eta_s: float | None
    eta_low_s: float | None
    eta_high_s: float | None
    crossing_timestamp_s: float | None
    horizon_s: float
    slope: TheilSenSlope


def _eta_s(gap: float, slope_per_hour: float, horizon_s: float) -> float | None:
    """Seconds until a line ``gap`` below the threshold (moving at the slope) reaches it."""
    if slope_per_hour <= 0.0:
        return None
    eta = gap / slope_per_hour * _HOUR_S
    return eta if eta <= horizon_s else None


def forecast_crossing(
    timestamps_s: Sequence[float] | npt.ArrayLike,
    values: Sequence[float] | npt.ArrayLike,
    threshold: float,
    horizon_s: float,
    *,
    above: bool = True,
    confidence: float = 0.95,
) -> ThresholdForecast:
    """When the metric's trend crosses ``threshold`` upward (``above=True``) or downward.

    ``timestamps_s`` are seconds (non-decreasing, spanning a positive time), ``horizon_s`` is
    how far ahead to look. Returns ``ALREADY_CROSSED`` when the trend line is already past the
    threshold at the last timestamp, ``NOT_WITHIN_HORIZON`` when the line does not reach it in
    time (or moves away from it).
    """
    ts = as_float_array(timestamps_s, "timestamps_s", min_len=2)
    x = as_float_array(values, "values", min_len=2)
    check_same_length(ts, x, "timestamps_s", "values")
    check_timestamps(ts, "timestamps_s")
    if not math.isfinite(threshold) or not (math.isfinite(horizon_s) and horizon_s > 0):
        raise InvalidInputError("threshold must be finite and horizon_s finite and > 0")
    slope = theil_sen(ts, x, confidence)
    hours = (ts[-1] - ts[0]) / _HOUR_S
    level = slope.intercept + slope.slope_per_hour * hours
    sign = 1.0 if above else -1.0
    gap = sign * (threshold - level)
    if gap <= 0.0:
        return ThresholdForecast(
            ForecastStatus.ALREADY_CROSSED,
            threshold,
            level,
            0.0,
            0.0,
            0.0,
            float(ts[-1]),
            horizon_s,
            slope,
        )
    central = _eta_s(gap, sign * slope.slope_per_hour, horizon_s)
    bounds = sorted((sign * slope.low_per_hour, sign * slope.high_per_hour))
    soonest = _eta_s(gap, bounds[1], horizon_s)  # steepest slope towards the threshold
    latest = _eta_s(gap, bounds[0], horizon_s)
    if central is None:
        return ThresholdForecast(
            ForecastStatus.NOT_WITHIN_HORIZON,
            threshold,
            level,
            None,
            soonest,
            None,
            None,
            horizon_s,
            slope,
        )
    return ThresholdForecast(
        ForecastStatus.WILL_CROSS,
        threshold,
        level,
        central,
        soonest,
        latest,
        float(ts[-1]) + central,
        horizon_s,
        slope,
    )
