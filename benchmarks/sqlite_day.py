"""Folding long windows over a shared SQLite store: another process's day of buckets.

A writer process fills a file with ``--hours`` of 10-s intervals for ``--routes`` routes (20
log-normal request durations each), as a worker does; then a reader process (a second
worker, with no data of its own) folds windows of 1 h, 6 h and 24 h over all routes, twice
each, and, in the same process, the same windows by merging every row of the plan (how the
store read before whole hours were merged once and kept).

Usage::

    python benchmarks/sqlite_day.py [--routes 100 --hours 24]

Filling a day takes about 100 s on the development machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_700_000_000.0
METRIC = "http.server.request.duration"


def fill(path: str, routes: int, hours: float) -> None:
    """Write the intervals as one worker would (one flush per interval)."""
    import numpy as np

    from otel_monitoring.store.histogram import ExpHistogram
    from otel_monitoring.store.memory import Agg, Kind, SeriesKey
    from otel_monitoring.store.sqlite import SqliteStore

    rng = np.random.default_rng(1)
    pool = [ExpHistogram.from_values(rng.lognormal(-3.0, 0.8, 20)) for _ in range(64)]
    keys = [SeriesKey(METRIC, (("http.route", f"/r{r}"),)) for r in range(routes)]
    with SqliteStore(path) as store:
        for step in range(int(hours * 360)):
            for r, key in enumerate(keys):
                hist = pool[(step * 7 + r) % 64].copy()
                agg = Agg(hist)
                agg.count, agg.value = hist.count, hist.sum
                store.add(key, Kind.HISTOGRAM, "s", T0 + step * 10.0, agg)
        store.flush()


def read(path: str, hours: float) -> None:
    """Fold windows as another worker, through the kept hours and row by row."""
    from otel_monitoring.store.sqlite import SqliteStore
    from otel_monitoring.store.sqlite.codec import Merger

    now = T0 + hours * 3600.0 - 3.0
    with SqliteStore(path) as store:
        for window in (3600.0, 6 * 3600.0, 24 * 3600.0):
            if window > hours * 3600.0:
                continue
            times = []
            for _ in range(2):
                started = time.perf_counter()
                folded = store.fold(METRIC, window, now, lambda key: ("all",))
                times.append(time.perf_counter() - started)
            started = time.perf_counter()
            merger: Merger[tuple[str]] = Merger()
            plan = store._plan(window, now)
            for g, _, _, kind, row in store._remote_rows(
                METRIC, lambda k: ("all",), plan, merger.touch
            ):
                merger.add_row(g, kind, row)
            baseline = merger.results()
            row_by_row = time.perf_counter() - started
            assert baseline[("all",)].count == folded[("all",)].count
            print(
                f"{window / 3600:>4g} h window: {times[0]:.3f} s first, {times[1]:.3f} s again;"
                f" every row merged: {row_by_row:.3f} s ({folded[('all',)].count:,} requests)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", type=int, default=100)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--role", choices=("fill", "read"), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "fill":
        fill(args.path, args.routes, args.hours)
        return
    if args.role == "read":
        read(args.path, args.hours)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "monitoring.db")
        common = [sys.executable, __file__, "--routes", str(args.routes), "--hours"]
        started = time.perf_counter()
        subprocess.run([*common, str(args.hours), "--role", "fill", "--path", path], check=True)
        print(
            f"{args.routes} routes x {args.hours:g} h written by one worker in"
            f" {time.perf_counter() - started:.0f} s; read by another:"
        )
        subprocess.run([*common, str(args.hours), "--role", "read", "--path", path], check=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
