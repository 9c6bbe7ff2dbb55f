import math

import numpy as np

from otel_monitoring.store.histogram import ExpHistogram
from otel_monitoring.store.memory import OVERFLOW_ATTRIBUTES, Agg, Kind, MetricStore, SeriesKey


def _hist_agg(*values: float) -> Agg:
    agg = Agg(ExpHistogram.from_values(values))
    agg.count = len(values)
    return agg


def _count(store: MetricStore, window_s: float | None, now_s: float) -> int:
    folded = store.fold("m", window_s, now_s, lambda key: ("all",))
    return folded[("all",)].count if folded else 0


def test_windows_select_recent_buckets() -> None:
    store = MetricStore(retention_s=86400)
    key = SeriesKey("m", (("a", "1"),))
    t0 = 1_700_000_000.0
    store.add(key, Kind.HISTOGRAM, "s", t0, _hist_agg(0.1, 0.2))
    store.add(key, Kind.HISTOGRAM, "s", t0 + 600, _hist_agg(0.3))
    now = t0 + 605
    assert _count(store, 60, now) == 1
    assert _count(store, 3600, now) == 3
    assert _count(store, None, now) == 3
    assert _count(store, 86400, now + 7200) == 3  # the 1-min tier still has both


def test_cardinality_cap_folds_into_one_overflow_series() -> None:
    store = MetricStore(retention_s=3600, max_series=10)
    for i in range(100):
        store.add(SeriesKey("m", (("path", str(i)),)), Kind.SUM, "1", 0.0, _sum(1))
    assert store.series_count("m") == 11
    overflow = store.fold(
        "m", None, 0.0, lambda k: ("o",) if k.attributes == OVERFLOW_ATTRIBUTES else None
    )
    assert overflow[("o",)].value == 90
    assert store.overflowed == 90


def _sum(value: float) -> Agg:
    agg = Agg()
    agg.value, agg.count = value, 1
    return agg


def test_drop_before_removes_old_buckets_and_empty_series() -> None:
    store = MetricStore(retention_s=3600)
    store.add(SeriesKey("m", (("a", "old"),)), Kind.SUM, "1", 100.0, _sum(1))
    store.add(SeriesKey("m", (("a", "new"),)), Kind.SUM, "1", 2000.0, _sum(1))
    removed = store.drop_before(1000.0)
    assert removed == 1
    assert [k.get("a") for k, _, _ in store.series("m")] == ["new"]


def test_memory_is_bounded_by_buckets_not_samples() -> None:
    store = MetricStore(retention_s=3600)
    key = SeriesKey("m", ())
    for i in range(5000):  # ~14 hours of 10 s intervals into a 1 h ring
        store.add(key, Kind.SUM, "1", i * 10.0, _sum(1))
    ring = store._series[key].rings[0]
    assert sum(slot is not None for slot in ring.slots) == 360
    assert _count(store, None, 50_000.0) == 5000


def test_gauges_keep_latest_value() -> None:
    store = MetricStore(retention_s=3600)
    key = SeriesKey("g", ())
    for t, v in ((10.0, 5.0), (20.0, 7.0), (30.0, 6.0)):
        agg = Agg()
        agg.value, agg.count = v, 1
        store.add(key, Kind.GAUGE, "1", t, agg)
    assert store.fold("g", None, 30.0, lambda k: ("x",))[("x",)].value == 6.0


def test_closed_buckets_are_compacted_and_read_the_same() -> None:
    """Once a later bucket starts, a bucket's histogram is held in one byte per bucket (for
    these counts) and every read gives what uncompacted histograms give."""
    rng = np.random.default_rng(5)
    key = SeriesKey("m", (("a", "1"),))
    store = MetricStore(retention_s=86400)
    values = [rng.lognormal(-3.0, 0.8, 100) for _ in range(200)]
    t0 = 1_700_000_000.0
    for i, batch in enumerate(values):
        store.add(key, Kind.HISTOGRAM, "s", t0 + 10 * i, _hist_agg(*batch))
    store.add(key, Kind.HISTOGRAM, "s", t0 + 10 * 5, _hist_agg(0.3))  # late, into a closed one
    minute = store._series[key].rings[1]
    closed = [agg for slot in minute.slots if slot for agg in [slot[1]] if agg is not minute.newest]
    assert closed and all(agg.hist and agg.hist.counts.dtype == np.uint8 for agg in closed)
    now = t0 + 10 * 200
    exact = ExpHistogram.from_values(np.concatenate([*values, [0.3]]))
    for window in (None, 3600.0, 86400.0):
        hist = store.fold("m", window, now, lambda k: ("x",))[("x",)].hist
        assert hist is not None and hist.count == exact.count
        assert np.array_equal(hist.counts, exact.counts) and hist.offset == exact.offset
    width, per_bucket = store.buckets("m", 3600.0, now, lambda k: ("x",))
    assert width == 10.0
    assert per_bucket[("x",)][math.floor((t0 + 50) / 10)].count == 101


def test_windows_read_through_coarser_buckets_equal_the_fine_buckets() -> None:
    """Whole 1-min and 1-h buckets stand in for runs of finer ones: every window, aligned or
    not, and after a cleanup inside it, reads exactly the intervals it covers."""
    rng = np.random.default_rng(9)
    store = MetricStore(retention_s=86400)
    key = SeriesKey("m", (("a", "1"),))
    t0 = 1_700_000_000.0 + 7.0
    intervals: list[tuple[float, np.ndarray]] = []
    for i in range(6 * 360):  # 6 h of 10-s intervals, some idle
        if rng.random() < 0.2:
            continue
        values = rng.lognormal(-3.0, 1.0, int(rng.integers(1, 20)))
        intervals.append((t0 + 10 * i, values))
        store.add(key, Kind.HISTOGRAM, "s", t0 + 10 * i, _hist_agg(*values))
    end = t0 + 6 * 3600

    def check(now: float, window: float, after: float = -math.inf) -> None:
        width = store.width_for(window)
        first = math.floor((now - window) / width) + 1
        # the finest tier's buckets [first, last], less what a cleanup removed
        cutoff = math.floor(after / width) if after > -math.inf else -(10**12)
        kept = [
            v
            for t, v in intervals
            if first <= math.floor(t / width) <= math.floor(now / width)
            and math.floor(t / width) >= cutoff
        ]
        got = store.fold("m", window, now, lambda k: ("x",)).get(("x",), Agg())
        assert got.count == sum(v.size for v in kept)
        if kept:
            exact = ExpHistogram.from_values(np.concatenate(kept))
            assert got.hist is not None and np.array_equal(got.hist.counts, exact.counts)

    # within the last hour, reading from 1-min buckets (windows over an hour)
    for now, window in [(end, 3 * 3600.0), (end - 1234.5, 7200.0), (end - 61.0, 3 * 3600.0)]:
        check(now, window)
    for _ in range(30):
        check(end - float(rng.uniform(0, 3600)), float(rng.uniform(3600, 6 * 3600)))
    # now, reading from 10-s buckets (the finest tier holds the last hour up to the newest)
    for _ in range(30):
        check(end - float(rng.uniform(0, 10)), float(rng.uniform(60, 3600)))
    cleanup = t0 + 2.5 * 3600 + 123.0  # inside an hour and inside a minute
    store.drop_before(cleanup)
    for _ in range(30):
        check(end - float(rng.uniform(0, 600)), float(rng.uniform(3 * 3600, 6 * 3600)), cleanup)
