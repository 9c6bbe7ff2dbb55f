from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analyzers import (
    InsufficientDataError,
    InvalidInputError,
    benjamini_hochberg,
    best_lag,
    correlate,
    correlate_many,
)


def test_correlate_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=100)
    y = 0.5 * x + rng.normal(size=100)
    res = correlate(x, y)
    pr, sr = stats.pearsonr(x, y), stats.spearmanr(x, y)
    assert res.pearson_r == pytest.approx(pr.statistic)
    assert res.pearson_p == pytest.approx(pr.pvalue)
    assert res.spearman_rho == pytest.approx(sr.statistic)
    assert res.spearman_p == pytest.approx(sr.pvalue)
    assert res.n == 100


def test_best_lag_finds_known_delay() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=300)
    y = np.roll(x, 7) + 0.1 * rng.normal(size=300)  # y[t] = x[t - 7]: x leads by 7
    res = best_lag(x, y, 20)
    assert res.lag == 7
    assert res.pearson_r > 0.9
    assert best_lag(y, x, 20).lag == -7


@pytest.mark.parametrize("seed", [2, 3])
def test_benjamini_hochberg_matches_scipy(seed: int) -> None:
    p = np.random.default_rng(seed).uniform(size=40) ** 2
    np.testing.assert_allclose(benjamini_hochberg(p), stats.false_discovery_control(p))
    assert benjamini_hochberg([]).shape == (0,)


def test_correlate_many_adjusts_and_flags_pairs() -> None:
    rng = np.random.default_rng(4)
    a = rng.normal(size=200)
    series = {
        "a": a,
        "b": a + 0.3 * rng.normal(size=200),
        "c": rng.normal(size=200),
        "flat": np.ones(200),
    }
    pairs = correlate_many(series)
    assert len(pairs) == 3  # the constant series is skipped
    top = pairs[0]
    assert {top.first, top.second} == {"a", "b"} and top.significant
    raw = [pc.correlation.pearson_p for pc in pairs]
    np.testing.assert_allclose(
        sorted(pc.adjusted_p for pc in pairs), sorted(stats.false_discovery_control(raw))
    )


def test_bad_input() -> None:
    with pytest.raises(InsufficientDataError):
        correlate([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])
    with pytest.raises(InsufficientDataError):
        correlate([1.0, 2.0], [1.0, 2.0])
    with pytest.raises(InvalidInputError):
        correlate([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(InvalidInputError):
        benjamini_hochberg([0.5, 1.5])
    with pytest.raises(InvalidInputError):
        best_lag([1.0, 2.0, 3.0], [3.0, 1.0, 2.0], -1)


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e300, 1e300)),
        max_size=25,
    )
)
def test_hostile_input(pairs: list[tuple[float, float]]) -> None:
    x = [p[0] for p in pairs]
    y = [p[1] for p in pairs]
    try:
        res = correlate(x, y)
    except ValueError:
        return
    assert -1.0 <= res.pearson_r <= 1.0 and 0.0 <= res.pearson_p <= 1.0
    assert -1.0 <= res.spearman_rho <= 1.0
