import math

import numpy as np
import pytest

from otel_monitoring.store.histogram import ExpHistogram


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


def test_compact_is_exact_and_widens_before_adding() -> None:
    rng = np.random.default_rng(11)
    values = rng.lognormal(-3, 0.8, 600)
    hist = ExpHistogram.from_values(values)
    reference = ExpHistogram.from_values(values)
    hist.compact()
    assert hist.counts.dtype == np.uint8 and hist.nbytes * 8 == reference.nbytes
    assert np.array_equal(hist.counts, reference.counts)
    for q in (0.5, 0.95, 0.99):
        assert hist.quantile(q) == reference.quantile(q)
    assert hist.count_above(0.05) == reference.count_above(0.05)
    # a bucket at 255 plus one more must reach 256, not wrap to 0
    full = ExpHistogram.from_values([0.1] * 255)
    full.compact()
    assert full.counts.dtype == np.uint8
    full.record(0.1)
    full.merge(ExpHistogram.from_values([0.1] * 300))
    assert full.counts.dtype == np.int64 and full.counts.max() == 556
    assert full.quantile(0.5) == pytest.approx(0.1, rel=0.006)
    # merging a compacted histogram into another is exact too
    merged = ExpHistogram()
    merged.merge(hist)
    assert np.array_equal(merged.counts, reference.counts) and merged.counts.dtype == np.int64
    big = ExpHistogram.from_values([0.2] * 70_000)
    big.compact()
    assert big.counts.dtype == np.uint32 and int(big.counts.max()) == 70_000
