"""Journal modes of the SQLite store side by side (not a test): the previous design (WAL, file
mapped) against the rollback journals, with processes writing and reading one file at once.

Per mode: once an earlier process has written ``--prefill`` intervals, ``--writers`` processes
each write ``--series`` series for ``--intervals``
collection intervals (one flush each, back to back: far busier than one flush per 10 s), while
a reader process folds the last 5 minutes and the last hour over and over until they finish.
Prints milliseconds and the ratio to WAL measured in the same run, and the errors counted
(a read or write that waited past ``busy_timeout``).

Run: ``python benchmarks/sqlite_journal.py`` (about a minute).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import numpy as np

T0 = 1_700_000_000.0
MODES = ("WAL", "TRUNCATE", "DELETE", "PERSIST")


def _use(mode: str) -> None:
    from otel_monitoring.store.sqlite import schema

    schema.JOURNAL_MODE = mode
    # the previous design also mapped the database file (256 MiB)
    schema._MMAP_BYTES = 256 * 1024 * 1024 if mode == "WAL" else 0


def _writer(path: str, mode: str, seed: int, series: int, steps: tuple[int, int], out: Any) -> None:
    from otel_monitoring.store.histogram import ExpHistogram
    from otel_monitoring.store.memory import Agg, Kind, SeriesKey
    from otel_monitoring.store.sqlite import SqliteStore

    _use(mode)
    rng = np.random.default_rng(seed)
    store = SqliteStore(path)
    flush_ms = []
    for step in range(*steps):
        t_s = T0 + step * 10.0
        for s in range(series):
            values = rng.lognormal(-3.0, 1.0, 20)
            agg = Agg(ExpHistogram.from_values(values))
            agg.count, agg.value = 20, float(values.sum())
            store.add(SeriesKey("m", (("route", f"/r{s}"),)), Kind.HISTOGRAM, "s", t_s, agg)
        started = time.perf_counter()
        store.flush()
        flush_ms.append((time.perf_counter() - started) * 1000)
    errors = store.persist_stats().write_errors
    store.close()
    out.put(("write", flush_ms, errors))


def _reader(path: str, mode: str, end: int, done: Event, out: Any) -> None:
    from otel_monitoring.store.sqlite import SqliteStore

    _use(mode)
    store = SqliteStore(path)
    store.prepare()
    now = T0 + end * 10.0
    fold_ms: dict[str, list[float]] = {"5 min": [], "1 h": []}
    while not done.is_set():
        for name, window in (("5 min", 300.0), ("1 h", 3600.0)):
            started = time.perf_counter()
            store.fold("m", window, now, lambda key: ("all",))
            fold_ms[name].append((time.perf_counter() - started) * 1000)
    errors = store.persist_stats().read_errors
    store.close()
    out.put(("read", fold_ms, errors))


def run(mode: str, writers: int, series: int, intervals: int, prefill: int) -> dict[str, Any]:
    """One mode: the writers' flush times and the reader's fold times (ms), errors counted.

    An earlier process first writes ``prefill`` intervals, so that the reads find rows."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    done = ctx.Event()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "m.db")
        earlier = ctx.Process(target=_writer, args=(path, mode, 99, series, (0, prefill), out))
        earlier.start()
        out.get(timeout=600)
        earlier.join(timeout=60)
        end = prefill + intervals
        reader = ctx.Process(target=_reader, args=(path, mode, end, done, out))
        reader.start()
        procs = [
            ctx.Process(target=_writer, args=(path, mode, seed, series, (prefill, end), out))
            for seed in range(writers)
        ]
        for proc in procs:
            proc.start()
        results = [out.get(timeout=600) for _ in procs]
        done.set()
        results.append(out.get(timeout=600))
        for proc in (*procs, reader):
            proc.join(timeout=60)
    flush = [ms for kind, values, _ in results if kind == "write" for ms in values]
    folds = next(values for kind, values, _ in results if kind == "read")
    return {
        "flush": flush,
        "folds": folds,
        "write_errors": sum(e for kind, _, e in results if kind == "write"),
        "read_errors": sum(e for kind, _, e in results if kind == "read"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--intervals", type=int, default=120)
    parser.add_argument("--prefill", type=int, default=180, help="intervals written before")
    args = parser.parse_args()
    print(
        f"{args.writers} writer processes x {args.series} series x {args.intervals} intervals,"
        " one reader process folding meanwhile; median / p95 / max in ms (ratio of medians to WAL)"
    )
    base: dict[str, float] = {}
    for mode in MODES:
        result = run(mode, args.writers, args.series, args.intervals, args.prefill)
        rows = [("flush per interval", result["flush"])]
        rows += [(f"fold {name}", values) for name, values in result["folds"].items()]
        print(
            f"{mode}{' (previous design)' if mode == 'WAL' else ''}:"
            f" write errors {result['write_errors']}, read errors {result['read_errors']}"
        )
        for name, values in rows:
            median = statistics.median(values)
            p95 = float(np.percentile(values, 95))
            base.setdefault(name, median)
            print(
                f"  {name:<20} {median:7.1f} / {p95:7.1f} / {max(values):7.1f}"
                f"  (x{median / base[name]:.2f}, {len(values)} samples)"
            )


if __name__ == "__main__":
    main()
