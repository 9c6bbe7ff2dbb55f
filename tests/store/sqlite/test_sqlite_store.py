"""SqliteStore as a drop-in MetricStore: same answers on the same input, survives restarts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from persist_helpers import METRIC, T0, assert_agg_equal, feed, hist_agg, route_key, sum_agg

from otel_monitoring.store.memory import Agg, Kind, MetricStore, SeriesKey
from otel_monitoring.store.sqlite import SqliteStore, parse_store_url

GROUPS: dict[str, Callable[[SeriesKey], tuple[str, ...] | None]] = {
    "per-series": lambda key: key.attributes and tuple(v for _, v in key.attributes),
    "all": lambda key: ("all",),
    "some": lambda key: ("odd",) if key.get("http.route", "/r0")[-1] in "13579" else None,
}


def _assert_folds_equal(got: dict[object, Agg], want: dict[object, Agg]) -> None:
    assert set(got) == set(want)
    for group in want:
        assert_agg_equal(got[group], want[group])


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MetricStore, SqliteStore]]:
    """The same 8 hours of seeded traffic in a memory store and a SQLite store."""
    memory = MetricStore(retention_s=86400)
    store = SqliteStore(tmp_path_factory.mktemp("fed") / "m.db", retention_s=86400)
    feed([memory, store], seed=7, series=6, intervals=8 * 360 // 6)
    yield memory, store
    store.close()


@pytest.mark.parametrize("group_name", list(GROUPS))
@pytest.mark.parametrize(
    "window_s", [60.0, 300.0, 3600.0, 6 * 3600.0, None], ids=["1m", "5m", "1h", "6h", "total"]
)
def test_fold_equals_memory_store(
    fed: tuple[MetricStore, SqliteStore], window_s: float | None, group_name: str
) -> None:
    memory, store = fed
    group = GROUPS[group_name]
    for now in (T0 + 4 * 3600 + 7.0, T0 + 4 * 3600 + 60.0, T0 + 8 * 3600.0):
        for metric in (METRIC, "gauge", "hits"):
            _assert_folds_equal(
                store.fold(metric, window_s, now, group), memory.fold(metric, window_s, now, group)
            )


def test_buckets_and_series_equal_memory_store(open_store) -> None:
    memory = MetricStore(retention_s=86400)
    store = open_store(retention_s=86400)
    feed([memory, store], seed=3, series=5, intervals=400)
    now = T0 + 3990.0
    for window in (600.0, 3600.0, 7200.0):
        width, got = store.buckets(METRIC, window, now, lambda k: (k.get("http.route"),))
        want_width, want = memory.buckets(METRIC, window, now, lambda k: (k.get("http.route"),))
        assert width == want_width
        assert set(got) == set(want)
        for group in want:
            assert set(got[group]) == set(want[group])
            for index in want[group]:
                assert_agg_equal(got[group][index], want[group][index])
    assert sorted(map(repr, store.series())) == sorted(map(repr, memory.series()))
    assert store.series_count(METRIC) == memory.series_count(METRIC) == 5
    assert sorted(map(repr, store)) == sorted(map(repr, memory))


def test_restart_keeps_metrics(db_path: Path) -> None:
    memory = MetricStore()
    with SqliteStore(db_path) as first:
        requests = feed([memory, first], seed=11, series=4, intervals=30)
    with SqliteStore(db_path) as second:
        folded = second.fold(METRIC, None, T0 + 300, lambda k: ("all",))
        assert folded[("all",)].count == requests
        _assert_folds_equal(
            second.fold(METRIC, 3600.0, T0 + 300, lambda k: (k.get("http.route"),)),
            memory.fold(METRIC, 3600.0, T0 + 300, lambda k: (k.get("http.route"),)),
        )
        # new data of the second run adds to the first run's
        second.add(route_key("/r0"), Kind.HISTOGRAM, "s", T0 + 310, _one_request())
        assert second.fold(METRIC, None, T0 + 320, lambda k: ("all",))[("all",)].count == (
            requests + 1
        )


def _one_request() -> Agg:

    return hist_agg(np.array([0.1]))


def test_drop_before_removes_every_processes_old_rows(open_store) -> None:
    store = open_store(retention_s=3600)
    other = open_store(retention_s=3600)
    for s in (store, other):
        s.add(SeriesKey("m", (("a", "old"),)), Kind.SUM, "1", 100.0, sum_agg(1))
        s.add(SeriesKey("m", (("a", "new"),)), Kind.SUM, "1", 2000.0, sum_agg(1))
        s.flush()
    assert store.fold("m", None, 2000.0, lambda k: (k.get("a"),))[("old",)].value == 2
    removed = store.drop_before(1000.0)
    assert removed == 2  # one 10 s bucket of "old" per process
    assert [k.get("a") for k, _, _ in store.series("m")] == ["new"]
    assert set(store.fold("m", None, 2000.0, lambda k: (k.get("a"),))) == {("new",)}


def test_clear_forgets_every_process(open_store) -> None:
    store, other = open_store(), open_store()
    for s in (store, other):
        s.add(SeriesKey("m", ()), Kind.SUM, "1", T0, sum_agg(1))
        s.flush()
    store.clear()
    assert store.fold("m", None, T0, lambda k: ("x",)) == {}
    other.add(SeriesKey("m", ()), Kind.SUM, "1", T0 + 10, sum_agg(5))
    other.flush()  # notices the clear: its old data is not written back
    assert store.fold("m", None, T0 + 10, lambda k: ("x",)) == {}
    other.add(SeriesKey("m", ()), Kind.SUM, "1", T0 + 20, sum_agg(7))
    other.flush()
    assert store.fold("m", None, T0 + 20, lambda k: ("x",))[("x",)].value == 7


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///monitoring.db", "monitoring.db"),
        ("sqlite:////var/lib/app/m.db", "/var/lib/app/m.db"),
        (" sqlite:///data/m.db ", "data/m.db"),
    ],
)
def test_parse_store_url(url: str, path: str) -> None:
    assert parse_store_url(url) == Path(path)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "monitoring.db",
        "postgres://x/y",
        "sqlite://",
        "sqlite:///",
        "sqlite:///:memory:",
        "sqlite:///m.db?mode=ro",
        "sqlite:///dir/",
    ],
)
def test_parse_store_url_rejects(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite:///"):
        parse_store_url(url)


def test_missing_directory_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        SqliteStore(tmp_path / "nope" / "m.db")
