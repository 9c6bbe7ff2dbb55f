"""Windows of hours over a shared file: other processes' whole hours come from their hourly
rows (or their 1-min rows where those do not match), are merged once and reused while their
rows stay the same; every read equals the exact intervals it covers."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
from persist_helpers import METRIC, T0, hist_agg, route_key

from otel_monitoring.store.histogram import ExpHistogram
from otel_monitoring.store.memory import Kind
from otel_monitoring.store.sqlite import SqliteStore

MINUTE = 60.0
Recorded = dict[float, list[np.ndarray]]


def _fill(writer: SqliteStore, hours: int, seed: int) -> Recorded:
    """One interval a minute, 5 s past it (not aligned to the hour), flushed each time."""
    rng = np.random.default_rng(seed)
    recorded: Recorded = {}
    for i in range(hours * 60):
        t_s = T0 + MINUTE * i + 5.0
        values = rng.lognormal(-3.0, 0.8, int(rng.integers(1, 40)))
        recorded[t_s] = [values]
        writer.add(route_key("/orders"), Kind.HISTOGRAM, "s", t_s, hist_agg(values))
        assert writer.flush()
    return recorded


def _check(
    reader: SqliteStore,
    recorded: Recorded,
    now: float,
    window_s: float,
    cutoff_s: float = -math.inf,
) -> int:
    """Assert the reader's fold of the window equals the recorded intervals it covers (from
    the cutoff on); returns the fold's error count."""
    first = math.floor((now - window_s) / MINUTE) + 1
    last = math.floor(now / MINUTE)
    lowest = math.floor(cutoff_s / MINUTE) if cutoff_s > -math.inf else first
    kept = [
        v
        for t_s, parts in recorded.items()
        for v in parts
        if max(first, lowest) <= math.floor(t_s / MINUTE) <= last
    ]
    agg = reader.fold(METRIC, window_s, now, lambda k: ("all",))[("all",)]
    exact = ExpHistogram.from_values(np.concatenate(kept))
    assert agg.count == exact.count
    assert agg.hist is not None and agg.hist.offset == exact.offset
    np.testing.assert_array_equal(agg.hist.counts, exact.counts)
    return agg.errors


def test_hour_windows_read_another_process_exactly_and_see_its_changes(db_path: Path) -> None:
    rng = np.random.default_rng(18)
    key = route_key("/orders")
    writer, reader = SqliteStore(db_path), SqliteStore(db_path)  # two processes' stores
    try:
        recorded = _fill(writer, 4, seed=17)
        now = T0 + 4 * 3600.0
        windows = (3 * 3600.0, 3.5 * 3600.0 + 17.0, 4 * 3600.0)
        for window in windows:
            _check(reader, recorded, now, window)
            _check(reader, recorded, now, window)  # the second read reuses the merged hours
        assert reader._buckets._hours  # they were kept

        # a late write into an hour already merged changes its rows: that hour is read again
        late_t = T0 + MINUTE * 75 + 5.0
        extra = rng.lognormal(-1.0, 0.5, 25)
        recorded[late_t].append(extra)
        writer.add(key, Kind.HISTOGRAM, "s", late_t, hist_agg(extra))
        assert writer.flush()
        for window in windows:
            _check(reader, recorded, now, window)

        # the writer's cleanup deletes its old rows: the merged hours holding them go too
        cutoff = T0 + 2 * 3600.0 + 30.0
        writer.drop_before(cutoff)
        _check(reader, recorded, now, 4 * 3600.0, cutoff)
        with sqlite3.connect(db_path) as conn:  # the hour cut in two lost its hourly row
            hours = {i for (i,) in conn.execute("SELECT idx FROM buckets WHERE width = 3600")}
        assert min(hours) == math.ceil(cutoff / 3600.0)
    finally:
        writer.close()
        reader.close()


def test_whole_hours_are_read_from_hourly_rows_and_files_without_them_add_up(
    db_path: Path,
) -> None:
    writer = SqliteStore(db_path)
    try:
        recorded = _fill(writer, 3, seed=5)
    finally:
        writer.close()
    now, window = T0 + 3 * 3600.0, 3 * 3600.0
    whole = [math.floor(T0 / 3600.0) + 1, math.floor(T0 / 3600.0) + 2]  # the window's whole hours

    def errors_read() -> int:
        with SqliteStore(db_path) as reader:  # a new process: nothing merged yet
            return _check(reader, recorded, now, window)

    with sqlite3.connect(db_path) as conn:
        (hourly,) = conn.execute("SELECT count(*) FROM buckets WHERE width = 3600").fetchone()
        assert hourly == 4  # the hours 3 h touched (T0 is 800 s past an hour)
        # mark the hourly rows (their request counts and latest times stay): a reader that
        # reads them shows the mark once per whole hour of the window, and still adds up
        conn.execute("UPDATE buckets SET errors = errors + 1000 WHERE width = 3600")
    assert errors_read() == 1000 * len(whole)

    # an hourly row whose request count is not its 1-min rows' is not used: they answer
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "UPDATE buckets SET count = count + 1 WHERE width = 3600 AND idx = ?", (whole[0],)
        )
    assert errors_read() == 1000 * (len(whole) - 1)

    # a file written before hourly rows: the 1-min rows answer alone
    with sqlite3.connect(db_path) as conn:
        conn.execute("DELETE FROM buckets WHERE width = 3600")
    assert errors_read() == 0
