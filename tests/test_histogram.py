import math

import numpy as np
import pytest

from otel_monitoring.histogram import ExpHistogram


def test_percentiles_within_one_percent_of_numpy() -> None:
    rng = np.random.default_rng(42)
    values = rng.lognormal(mean=-4.0, sigma=1.0, size=100_000)
    hist = ExpHistogram.from_values(values)
    for q in (0.50, 0.90, 0.99):
        exact = float(np.percentile(values, q * 100))
        assert hist.quantile(q) == pytest.approx(exact, rel=0.01), q
    assert hist.count == 100_000
    assert hist.sum == pytest.approx(float(values.sum()))
    assert hist.min == float(values.min()) and hist.max == float(values.max())


def test_record_matches_from_values_bucket_for_bucket() -> None:
    rng = np.random.default_rng(7)
    values = rng.lognormal(0, 2, 2000)
    one_by_one = ExpHistogram()
    for v in values:
        one_by_one.record(float(v))
    batch = ExpHistogram.from_values(values)
    assert one_by_one.offset == batch.offset
    assert np.array_equal(one_by_one.counts, batch.counts)


def test_powers_of_two_sit_in_upper_inclusive_bucket() -> None:
    hist = ExpHistogram(scale=0)
    hist.record(4.0)  # bucket 1 holds (2, 4]
    assert hist.offset == 1 and hist.counts.tolist() == [1]


def test_merge_is_exact_and_downscales() -> None:
    rng = np.random.default_rng(3)
    a_values, b_values = rng.lognormal(0, 1, 5000), rng.lognormal(1, 1, 5000)
    fine = ExpHistogram.from_values(a_values, scale=8)
    coarse = ExpHistogram.from_values(b_values, scale=6)
    fine.merge(coarse)
    assert fine.scale == 6
    both = ExpHistogram.from_values(np.concatenate([a_values, b_values]), scale=6)
    assert fine.count == both.count == 10_000
    assert np.array_equal(fine.counts, both.counts) and fine.offset == both.offset


def test_empty_and_bad_values() -> None:
    hist = ExpHistogram()
    assert math.isnan(hist.quantile(0.5)) and math.isnan(hist.mean)
    for bad in (-1.0, math.nan, math.inf):
        hist.record(bad)
    assert hist.count == 0
    hist.record(0.0)
    assert hist.quantile(0.99) == 0.0 and hist.zero_count == 1
