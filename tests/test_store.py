import math

import numpy as np

from otel_monitoring.histogram import ExpHistogram
from otel_monitoring.store import OVERFLOW_ATTRIBUTES, Agg, Kind, MetricStore, SeriesKey


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
