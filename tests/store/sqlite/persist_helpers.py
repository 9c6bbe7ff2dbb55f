"""Helpers for the SQLite store tests: seeded traffic and aggregate comparison."""

from __future__ import annotations

import math

import numpy as np
import pytest

from otel_monitoring.store.histogram import ExpHistogram
from otel_monitoring.store.memory import Agg, Kind, MetricStore, SeriesKey
from otel_monitoring.store.sqlite import SqliteStore

T0 = 1_700_000_000.0
METRIC = "http.server.request.duration"


def hist_agg(values: np.ndarray, errors: int = 0) -> Agg:
    """An interval's aggregate of request durations (seconds), as the Ingestor builds it."""
    agg = Agg(ExpHistogram.from_values(values))
    agg.count = len(values)
    agg.value = agg.hist.sum if agg.hist else 0.0
    agg.errors = errors
    return agg


def sum_agg(value: float) -> Agg:
    agg = Agg()
    agg.value, agg.count = value, 1
    return agg


def route_key(route: str, klass: str = "2xx") -> SeriesKey:
    return SeriesKey(
        METRIC,
        (("http.request.method", "GET"), ("http.route", route), ("status_class", klass)),
    )


def feed(
    stores: list[MetricStore], *, seed: int, series: int, intervals: int, start_s: float = T0
) -> int:
    """Add the same seeded traffic to every store; returns the number of requests."""
    rng = np.random.default_rng(seed)
    total = 0
    for step in range(intervals):
        t_s = start_s + step * 10.0
        for s in range(series):
            n = int(rng.integers(0, 30))
            if n == 0:
                continue
            values = rng.lognormal(-3.0, 1.0, n)
            errors = int(rng.integers(0, n + 1)) if s % 3 == 0 else 0
            total += n
            for store in stores:
                store.add(route_key(f"/r{s}"), Kind.HISTOGRAM, "s", t_s, hist_agg(values, errors))
                store.add(
                    SeriesKey("gauge", (("s", str(s)),)), Kind.GAUGE, "1", t_s, sum_agg(s + step)
                )
                store.add(SeriesKey("hits", ()), Kind.SUM, "1", t_s, sum_agg(float(n)))
        for store in stores:
            if isinstance(store, SqliteStore):
                store.flush()
    return total


def assert_agg_equal(got: Agg, want: Agg) -> None:
    """Integers and histogram buckets exactly; float sums to rounding."""
    assert (got.count, got.errors) == (want.count, want.errors)
    assert got.value == pytest.approx(want.value, rel=1e-9)
    assert got.last_t == want.last_t
    assert (got.hist is None) == (want.hist is None)
    if got.hist is not None and want.hist is not None:
        g, w = got.hist, want.hist
        assert (g.scale, g.zero_count, g.count, g.min, g.max) == (
            w.scale,
            w.zero_count,
            w.count,
            w.min,
            w.max,
        )
        assert g.sum == pytest.approx(w.sum, rel=1e-9)
        if w.count:
            assert g.offset == w.offset
            np.testing.assert_array_equal(g.counts, w.counts)
        for q in (0.5, 0.95, 0.99):
            assert g.quantile(q) == w.quantile(q) or (
                math.isnan(g.quantile(q)) and math.isnan(w.quantile(q))
            )


def worker_values(seed: int, intervals: int) -> list[np.ndarray]:
    """The request durations (seconds) a worker process records per interval."""
    rng = np.random.default_rng(seed)
    return [rng.lognormal(-3.0, 0.8, int(rng.integers(50, 150))) for _ in range(intervals)]


def run_worker(path: str, seed: int, intervals: int) -> None:
    """Body of a worker process: record its traffic into the shared file, one flush per interval."""
    from otel_monitoring.store.sqlite import SqliteStore

    store = SqliteStore(path)
    for step, values in enumerate(worker_values(seed, intervals)):
        t_s = T0 + step * 10.0
        store.add(route_key("/orders"), Kind.HISTOGRAM, "s", t_s, hist_agg(values, errors=1))
        assert store.flush()
    store.close()


def readonly_scenario(directory: str) -> dict[str, int]:
    """A file that turns read-only between runs, then writable again (run as a non-root user:
    root ignores file permissions). Returns the observed counts for the test to check."""
    import os

    from otel_monitoring.store.sqlite import SqliteStore

    path = os.path.join(directory, "monitoring.db")
    key = SeriesKey("hits", ())
    with SqliteStore(path) as first:
        first.add(key, Kind.SUM, "1", T0, sum_agg(3))
        assert first.flush()
    os.chmod(path, 0o444)
    store = SqliteStore(path)
    store.add(key, Kind.SUM, "1", T0 + 10, sum_agg(4))
    flushed_readonly = store.flush()
    errors = store.persist_stats().write_errors
    backlog = store.persist_stats().backlog
    during = store.fold("hits", None, T0 + 10, lambda k: ("x",))[("x",)].value
    for name in (path, path + "-wal", path + "-shm"):  # SQLite made those read-only too
        if os.path.exists(name):
            os.chmod(name, 0o644)
    flushed_after = store.flush()
    store.close()
    with SqliteStore(path) as reopened:
        after = reopened.fold("hits", None, T0 + 10, lambda k: ("x",))[("x",)].value
    return {
        "flushed_readonly": int(flushed_readonly),
        "write_errors": errors,
        "backlog": backlog,
        "during": int(during),
        "flushed_after": int(flushed_after),
        "after": int(after),
    }
