from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzers import ForecastStatus, InvalidInputError, forecast_crossing

HOUR = 3600.0


def test_linear_growth_crosses_at_the_exact_time() -> None:
    ts = np.arange(0, 10 * HOUR + 1, 600.0)
    x = 200.0 + 50.0 * ts / HOUR  # 700 ms after 10 h, +50 ms/h
    fc = forecast_crossing(ts, x, 1000.0, horizon_s=24 * HOUR)
    assert fc.status is ForecastStatus.WILL_CROSS
    assert fc.current_level == pytest.approx(700.0)
    assert fc.eta_s == pytest.approx(6 * HOUR)
    assert fc.crossing_timestamp_s == pytest.approx(ts[-1] + 6 * HOUR)
    assert fc.eta_low_s is not None and fc.eta_high_s is not None
    assert fc.eta_low_s <= fc.eta_s <= fc.eta_high_s


def test_noisy_growth_interval_brackets_truth() -> None:
    rng = np.random.default_rng(0)
    ts = np.arange(0, 10 * HOUR, 300.0)
    x = 200.0 + 50.0 * ts / HOUR + rng.normal(0, 20, len(ts))
    fc = forecast_crossing(ts, x, 1000.0, horizon_s=48 * HOUR)
    assert fc.status is ForecastStatus.WILL_CROSS
    truth = (1000.0 - (200 + 50 * ts[-1] / HOUR)) / 50 * HOUR
    assert fc.eta_low_s is not None and fc.eta_high_s is not None
    assert fc.eta_low_s <= truth <= fc.eta_high_s


def test_not_within_horizon_and_moving_away_and_already_crossed() -> None:
    ts = np.arange(0, 10 * HOUR, 600.0)
    slow = forecast_crossing(ts, 100 + ts / HOUR, 1000.0, horizon_s=HOUR)
    assert slow.status is ForecastStatus.NOT_WITHIN_HORIZON and slow.eta_s is None
    away = forecast_crossing(ts, 500 - ts / HOUR, 1000.0, horizon_s=1e9)
    assert away.status is ForecastStatus.NOT_WITHIN_HORIZON
    crossed = forecast_crossing(ts, np.full(len(ts), 1200.0), 1000.0, horizon_s=HOUR)
    assert crossed.status is ForecastStatus.ALREADY_CROSSED
    down = forecast_crossing(ts, 100 - 10 * ts / HOUR, 0.0, horizon_s=HOUR * 24, above=False)
    assert down.status is ForecastStatus.ALREADY_CROSSED or down.eta_s is not None


def test_bad_input() -> None:
    with pytest.raises(InvalidInputError):
        forecast_crossing([0.0, 1.0], [1.0, 2.0], float("nan"), 10.0)
    with pytest.raises(InvalidInputError):
        forecast_crossing([0.0, 1.0], [1.0, 2.0], 5.0, 0.0)
    with pytest.raises(ValueError):
        forecast_crossing([0.0], [1.0], 5.0, 10.0)


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=30),
    threshold=st.floats(-1e6, 1e6),
)
def test_hostile_input(values: list[float], threshold: float) -> None:
    try:
        fc = forecast_crossing(np.arange(len(values)) * 60.0, values, threshold, 3600.0)
    except ValueError:
        return
    assert isinstance(fc.status, ForecastStatus)
    if fc.eta_s is not None:
        assert 0.0 <= fc.eta_s <= 3600.0
