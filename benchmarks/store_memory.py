"""Memory of the in-memory store holding a day of latency histograms, with and without the
compaction of closed buckets, and the time to fold a window across all routes.

Fills a :class:`~otel_monitoring.store.memory.MetricStore` (default tiers: 10 s for 1 h, 1 min for
24 h) with ``--hours`` of 10-s intervals for ``--routes`` routes, each interval a histogram of
``--per-interval`` log-normal request durations (median 50 ms), as the reader adds them. Each
variant runs in its own child process so its RSS is its own; the baseline turns
:meth:`ExpHistogram.compact` into a no-op, i.e. every bucket keeps ``int64`` counts as before.

Prints, per variant and request rate: RSS growth over the fill (MB), bytes held by histogram
bucket arrays (MB), the time of one 24-h fold over all routes (what ``/endpoints?window=24h``
reads) and the cost of ``store.add``, with the ratio compacted / baseline. Then the fold
times of a 1-h and a 24-h window, as the store reads them (whole coarser buckets standing in
for runs of finer ones) against reading every bucket of the finest covering tier (as it did
before), in the same process.

Usage::

    python benchmarks/store_memory.py [--routes 100 --hours 24 --per-interval 1 100]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
T0 = 1_700_000_000.0
POOL = 64  # distinct interval histograms, reused (copied) so building them costs little


def rss_mb() -> float:
    """Resident set size of this process, MB (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 1e6


def fill(routes: int, hours: float, per_interval: int, compact: bool) -> dict[str, float]:
    """Fill a store in this process and measure it."""
    import gc

    import numpy as np

    from otel_monitoring.store.histogram import ExpHistogram
    from otel_monitoring.store.memory import Agg, Kind, MetricStore, SeriesKey

    if not compact:
        ExpHistogram.compact = lambda self: None  # type: ignore[method-assign]
    rng = np.random.default_rng(1)
    pool = [ExpHistogram.from_values(rng.lognormal(-3.0, 0.8, per_interval)) for _ in range(POOL)]
    keys = [SeriesKey("http", (("http.route", f"/r{r}"),)) for r in range(routes)]
    store = MetricStore(retention_s=86400.0)
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    steps = int(hours * 360)
    for step in range(steps):
        t_s = T0 + step * 10.0
        for r, key in enumerate(keys):
            hist = pool[(step * 7 + r) % POOL].copy()
            agg = Agg(hist)
            agg.count, agg.value = hist.count, hist.sum
            store.add(key, Kind.HISTOGRAM, "s", t_s, agg)
    fill_s = time.perf_counter() - started
    gc.collect()
    grown = rss_mb() - before
    held = sum(
        slot[1].hist.nbytes
        for series in store._series.values()
        for ring in series.rings
        for slot in ring.slots
        if slot is not None and slot[1].hist is not None
    )
    now_s = T0 + steps * 10.0 - 3.0
    started = time.perf_counter()
    store.fold("http", 86400.0, now_s, lambda key: key.attributes)
    fold_s = time.perf_counter() - started
    out = {
        "rss_mb": grown,
        "counts_mb": held / 1e6,
        "fold_s": fold_s,
        "add_us": fill_s / (steps * routes) * 1e6,
    }
    for window in (3600.0, 86400.0):
        started = time.perf_counter()
        store.fold("http", window, now_s, lambda key: key.attributes)
        out[f"fold_{window:.0f}"] = time.perf_counter() - started
        started = time.perf_counter()
        for series in store._series.values():  # every bucket of the finest covering tier
            ring = store._ring_for(series, window)
            width = ring.tier.width_s
            first, last = math.floor((now_s - window) / width) + 1, math.floor(now_s / width)
            ring.fold(first, last, Agg(), series.kind)
        out[f"single_{window:.0f}"] = time.perf_counter() - started
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", type=int, default=100)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--per-interval", type=int, nargs="+", default=[1, 100])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        per, compact = int(args.child[0]), args.child[1] == "on"
        print(json.dumps(fill(args.routes, args.hours, per, compact)))
        return
    print(f"{args.routes} routes x {args.hours:g} h of 10-s intervals")
    header = "requests/10 s  compaction  RSS growth  bucket arrays  24-h fold  store.add"
    print(header)
    for per in args.per_interval:
        results = {}
        for variant in ("off", "on"):
            out = subprocess.run(
                [sys.executable, __file__, "--routes", str(args.routes), "--hours",
                 str(args.hours), "--child", str(per), variant],
                check=True, capture_output=True, text=True, cwd=ROOT,
            ).stdout  # fmt: skip
            results[variant] = got = json.loads(out)
            print(
                f"{per:>13}  {variant:>10}  {got['rss_mb']:>7.1f} MB  {got['counts_mb']:>10.1f} MB"
                f"  {got['fold_s']:>7.3f} s  {got['add_us']:>6.1f} µs"
            )
        on, off = results["on"], results["off"]
        print(
            f"{'':>13}  {'ratio':>10}  {on['rss_mb'] / off['rss_mb']:>9.2f}x"
            f"  {on['counts_mb'] / off['counts_mb']:>11.2f}x  {on['fold_s'] / off['fold_s']:>7.2f}x"
            f"  {on['add_us'] / off['add_us']:>6.2f}x"
        )
        for window, name in (("3600", "1-h"), ("86400", "24-h")):
            new, old = on[f"fold_{window}"], on[f"single_{window}"]
            print(
                f"{'':>13}  {name} fold: {new:.3f} s through coarser buckets, {old:.3f} s"
                f" bucket by bucket ({new / old:.2f}x)"
            )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
