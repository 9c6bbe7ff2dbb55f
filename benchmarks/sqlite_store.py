"""Timing of SqliteStore (not a test): write per interval and fold latency, 100 series.

Run: ``python benchmarks/sqlite_store.py`` (prints milliseconds).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from otel_monitoring.store.histogram import ExpHistogram
from otel_monitoring.store.memory import Agg, Kind, MetricStore, SeriesKey
from otel_monitoring.store.sqlite import SqliteStore

SERIES = 100
INTERVALS = 360  # one hour of 10 s intervals
T0 = 1_700_000_000.0


def _agg(rng: np.random.Generator) -> Agg:
    values = rng.lognormal(-3.0, 1.0, 20)
    agg = Agg(ExpHistogram.from_values(values))
    agg.count, agg.value = 20, float(values.sum())
    return agg


def main() -> None:
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        writers = [SqliteStore(Path(tmp) / "m.db") for _ in range(2)]
        memory = MetricStore()
        flush_ms: list[float] = []
        for step in range(INTERVALS):
            t_s = T0 + step * 10.0
            for store in writers:
                for s in range(SERIES):
                    agg = _agg(rng)
                    store.add(SeriesKey("m", (("route", f"/r{s}"),)), Kind.HISTOGRAM, "s", t_s, agg)
                    if store is writers[0]:
                        memory.add(
                            SeriesKey("m", (("route", f"/r{s}"),)), Kind.HISTOGRAM, "s", t_s, agg
                        )
                started = time.perf_counter()
                store.flush()
                flush_ms.append((time.perf_counter() - started) * 1000)
        now = T0 + INTERVALS * 10.0 - 5.0
        size_mb = (Path(tmp) / "m.db").stat().st_size / 1e6
        print(f"file: {size_mb:.1f} MB for {2 * SERIES} series-processes x 1 h")
        print(
            f"flush per interval ({SERIES} series): median {statistics.median(flush_ms):.1f} ms,"
            f" max {max(flush_ms):.1f} ms"
        )
        for name, window in (("1 h", 3600.0), ("5 min", 300.0), ("since start", None)):
            for label, target in (("memory", memory), ("sqlite 2 procs", writers[0])):
                for grouping, group in (
                    ("per series", lambda k: k.attributes),
                    ("all", lambda k: "all"),
                ):
                    times = []
                    for _ in range(5):
                        started = time.perf_counter()
                        target.fold("m", window, now, group)
                        times.append((time.perf_counter() - started) * 1000)
                    print(
                        f"fold {name:11s} {grouping:10s} {label:15s}"
                        f" {statistics.median(times):7.1f} ms"
                    )
        for label, target in (("memory", memory), ("sqlite 2 procs", writers[0])):
            started = time.perf_counter()
            target.buckets("m", 3600.0, now, lambda k: "all")
            print(f"buckets 1 h all {label:15s} {(time.perf_counter() - started) * 1000:7.1f} ms")
        for store in writers:
            store.close()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
