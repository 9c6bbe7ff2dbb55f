from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzers import InvalidInputError, find_change_points


def _step(seed: int, n: int = 200, at: int = 120, before: float = 100.0, after: float = 150.0):
    rng = np.random.default_rng(seed)
    ts = 1_700_000_000.0 + 60.0 * np.arange(n)
    x = np.where(np.arange(n) < at, before, after) + rng.normal(0, 5.0, n)
    return ts, x


def test_single_level_shift_found_with_time_and_size() -> None:
    ts, x = _step(0)
    (cp,) = find_change_points(ts, x)
    assert abs(cp.index - 120) <= 2
    assert cp.timestamp_s == ts[cp.index]
    assert cp.before_level == pytest.approx(100.0, abs=2.0)
    assert cp.after_level == pytest.approx(150.0, abs=2.0)
    assert cp.relative_change == pytest.approx(0.5, abs=0.03)
    assert cp.p_value < 1e-10


def test_shift_is_attributed_to_a_version_change() -> None:
    ts, x = _step(1)
    versions = ["1.4.0"] * 121 + ["1.5.0"] * 79  # deploy one point after the true shift
    (cp,) = find_change_points(ts, x, versions)
    assert cp.index == 121
    assert (cp.version_before, cp.version_after) == ("1.4.0", "1.5.0")


def test_two_shifts() -> None:
    rng = np.random.default_rng(2)
    x = np.concatenate([np.full(100, 10.0), np.full(100, 20.0), np.full(100, 12.0)])
    x += rng.normal(0, 1.0, 300)
    cps = find_change_points(np.arange(300.0), x)
    assert [round(c.index, -1) for c in cps] == [100, 200]


def test_white_noise_has_no_change_points_in_most_seeds() -> None:
    found = sum(
        len(find_change_points(np.arange(200.0), np.random.default_rng(s).normal(50, 5, 200)))
        for s in range(50)
    )
    assert found <= 3


def test_short_or_constant_series() -> None:
    assert find_change_points(np.arange(5.0), np.arange(5.0)) == ()
    assert find_change_points(np.arange(50.0), np.full(50, 3.0)) == ()
    assert find_change_points([], []) == ()


def test_bad_input() -> None:
    with pytest.raises(InvalidInputError):
        find_change_points([0.0, 1.0], [1.0, 2.0], ["a"])
    with pytest.raises(InvalidInputError):
        find_change_points([1.0, 0.0], [1.0, 2.0])
    with pytest.raises(InvalidInputError):
        find_change_points([0.0, 1.0], [1.0, np.inf])


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=60))
def test_hostile_input(values: list[float]) -> None:
    try:
        cps = find_change_points(np.arange(len(values), dtype=float), values, min_segment=3)
    except ValueError:
        return
    for cp in cps:
        assert 0 < cp.index < len(values)
        assert 0.0 <= cp.p_value <= 1.0
