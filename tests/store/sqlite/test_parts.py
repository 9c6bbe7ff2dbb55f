"""The SQLite store is composed of parts sharing one StoreFile (issue #12, point 6)."""

from __future__ import annotations

from persist_helpers import T0, sum_agg

from otel_monitoring.store.memory import Kind, MetricStore, SeriesKey
from otel_monitoring.store.sqlite import SqliteStore


def test_the_store_is_a_metric_store_with_no_mixins() -> None:
    assert SqliteStore.__mro__ == (SqliteStore, MetricStore, object)


def test_a_forked_child_starts_as_a_new_process_with_no_data(open_store) -> None:
    store = open_store()
    other = open_store()
    other.add(SeriesKey("m", (("p", "other"),)), Kind.SUM, "1", T0, sum_agg(3))
    other.flush()
    store.add(SeriesKey("m", (("p", "parent"),)), Kind.SUM, "1", T0, sum_agg(1))
    parent_id = store.process_id
    assert store.persist_stats().backlog > 0
    store._file._pid = -1  # as if in a child forked from the process that opened the store
    # the child forgets its parent's memory and backlog, and reads the others' rows
    assert [k.get("p") for k, _, _ in store.series("m")] == ["other"]
    assert store.process_id != parent_id
    assert store.persist_stats().backlog == 0
    store.add(SeriesKey("m", (("p", "child"),)), Kind.SUM, "1", T0, sum_agg(5))
    assert store.flush()
    totals = other.fold("m", None, T0, lambda k: k.get("p"))
    assert {p: agg.value for p, agg in totals.items()} == {"other": 3, "child": 5}
