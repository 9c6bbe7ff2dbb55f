"""Windows of hours over a shared file: other processes' whole hours are merged once and
reused while their rows stay the same; every read equals the exact intervals it covers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from persist_helpers import METRIC, T0, hist_agg, route_key

from otel_monitoring.histogram import ExpHistogram
from otel_monitoring.persist import SqliteStore
from otel_monitoring.store import Kind

MINUTE = 60.0


def test_hour_windows_read_another_process_exactly_and_see_its_changes(db_path: Path) -> None:
    rng = np.random.default_rng(17)
    key = route_key("/orders")
    writer, reader = SqliteStore(db_path), SqliteStore(db_path)  # two processes' stores
    recorded: dict[float, list[np.ndarray]] = {}
    try:
        for i in range(4 * 60):  # 4 h, one interval a minute, not aligned to the hour
            t_s = T0 + MINUTE * i + 5.0
            values = rng.lognormal(-3.0, 0.8, int(rng.integers(1, 40)))
            recorded[t_s] = [values]
            writer.add(key, Kind.HISTOGRAM, "s", t_s, hist_agg(values))
            assert writer.flush()
        now = T0 + 4 * 3600.0

        def check(window_s: float, cutoff_s: float = -math.inf) -> None:
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

        windows = (3 * 3600.0, 3.5 * 3600.0 + 17.0, 4 * 3600.0)
        for window in windows:
            check(window)
            check(window)  # the second read reuses the merged hours
        assert reader._hours  # they were kept

        # a late write into an hour already merged changes its rows: that hour is read again
        late_t = T0 + MINUTE * 75 + 5.0
        extra = rng.lognormal(-1.0, 0.5, 25)
        recorded[late_t].append(extra)
        writer.add(key, Kind.HISTOGRAM, "s", late_t, hist_agg(extra))
        assert writer.flush()
        for window in windows:
            check(window)

        # the writer's cleanup deletes its old rows: the merged hours holding them go too
        cutoff = T0 + 2 * 3600.0 + 30.0
        writer.drop_before(cutoff)
        check(4 * 3600.0, cutoff)
    finally:
        writer.close()
        reader.close()
