from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analyzers import (
    InsufficientDataError,
    InvalidInputError,
    TrendDirection,
    analyze_trend,
    exponential_moving_average,
    mann_kendall,
    percent_change,
    simple_moving_average,
    theil_sen,
)


def _brute_s(x: np.ndarray) -> int:
    n = len(x)
    return int(sum(np.sign(x[j] - x[i]) for i in range(n) for j in range(i + 1, n)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mann_kendall_matches_brute_force_and_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(size=60) + 0.02 * np.arange(60), 1)  # rounding makes ties
    res = mann_kendall(x, continuity=False)
    assert res.s == _brute_s(x)
    ref = stats.kendalltau(np.arange(len(x)), x, method="asymptotic")
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)


def test_mann_kendall_tie_corrected_variance() -> None:
    x = np.array([1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0])
    n = 7
    expected = (n * (n - 1) * (2 * n + 5) - (2 * 1 * 9) - (3 * 2 * 11)) / 18
    assert mann_kendall(x).variance == pytest.approx(expected)


def test_strong_trend_is_detected_with_correct_direction() -> None:
    ts = np.arange(200) * 60.0
    rng = np.random.default_rng(3)
    up = analyze_trend(ts, 5.0 + 0.01 * np.arange(200) + rng.normal(0, 0.1, 200))
    down = analyze_trend(ts, -0.01 * np.arange(200) + rng.normal(0, 0.1, 200))
    assert up.direction is TrendDirection.INCREASING and up.significant
    assert down.direction is TrendDirection.DECREASING
    # 0.01 per minute = 0.6 per hour
    assert up.slope.slope_per_hour == pytest.approx(0.6, rel=0.05)
    assert up.slope.low_per_hour <= up.slope.slope_per_hour <= up.slope.high_per_hour


def test_white_noise_gives_no_trend_in_most_seeds() -> None:
    claims = 0
    for seed in range(100):
        x = np.random.default_rng(seed).normal(size=80)
        claims += analyze_trend(np.arange(80) * 10.0, x).significant
    assert claims <= 12  # alpha = 0.05 -> about 5 expected


def test_theil_sen_matches_scipy_in_hours() -> None:
    rng = np.random.default_rng(4)
    ts = np.sort(rng.uniform(0, 7200, 50))
    x = 3.0 * ts / 3600.0 + rng.normal(0, 0.2, 50)
    ref = stats.theilslopes(x, ts / 3600.0, alpha=0.9)
    got = theil_sen(ts - ts[0] + ts[0], x, confidence=0.9)
    assert got.slope_per_hour == pytest.approx(ref.slope)
    assert got.low_per_hour == pytest.approx(ref.low_slope)


def test_moving_averages_match_numpy() -> None:
    x = np.random.default_rng(5).normal(size=50)
    sma = simple_moving_average(x, 5)
    assert np.isnan(sma[:4]).all()
    np.testing.assert_allclose(sma[4:], np.convolve(x, np.ones(5) / 5, mode="valid"))
    ema = exponential_moving_average(x, 0.3)
    ref = [x[0]]
    for v in x[1:]:
        ref.append(0.3 * v + 0.7 * ref[-1])
    np.testing.assert_allclose(ema, ref)


def test_percent_change_halves_and_windows() -> None:
    res = percent_change([1.0, 1.0, 5.0, 2.0, 2.0])
    assert (res.before_mean, res.after_mean, res.percent) == (1.0, 2.0, 100.0)
    assert percent_change([0.0, 0.0, 1.0, 1.0]).percent is None
    assert percent_change([4.0, 1.0, 2.0], before=(0, 1), after=(1, 3)).percent == -62.5
    with pytest.raises(InvalidInputError):
        percent_change([1.0, 2.0], before=(1, 1), after=(0, 2))


def test_constant_series_has_no_trend() -> None:
    res = analyze_trend(np.arange(10.0), np.full(10, 3.0))
    assert res.direction is TrendDirection.NONE
    assert res.mann_kendall.p_value == 1.0
    assert res.slope.slope_per_hour == 0.0


def test_bad_input_is_rejected() -> None:
    with pytest.raises(InsufficientDataError):
        analyze_trend([0.0, 1.0], [1.0, 2.0])
    with pytest.raises(InvalidInputError):
        mann_kendall([1.0, np.nan, 2.0])
    with pytest.raises(InsufficientDataError):
        theil_sen([5.0, 5.0, 5.0], [1.0, 2.0, 3.0])
    with pytest.raises(InvalidInputError):
        simple_moving_average([1.0], 0)


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=30))
def test_hostile_input_defined_result_or_value_error(values: list[float]) -> None:
    try:
        res = analyze_trend(np.arange(len(values)) * 60.0, values)
    except ValueError:
        return
    assert 0.0 <= res.mann_kendall.p_value <= 1.0
    assert isinstance(res.direction, TrendDirection)
