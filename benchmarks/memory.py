"""Bounded state: many distinct unknown URLs must not grow series or memory.

Drives, in process through the ASGI app, ``--unknown`` requests spread over
``--distinct`` never-seen URLs (404s) interleaved with ``--normal`` requests to the known
routes, collecting every ``--collect-every`` requests as the reader would. Prints the number
of HTTP series held against the bound ``routes x methods x status classes + 2`` and the RSS
growth after a warm-up.

Usage::

    python benchmarks/memory.py [--unknown 200000 --distinct 5000 --normal 100000]

Target (issue 2): series within the bound; RSS grows by less than 10 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import overhead
from opentelemetry.sdk.trace import TracerProvider

import otel_monitoring
from otel_monitoring.capture.instruments import HTTP_DURATION_METRIC


def rss_mb() -> float:
    """Resident set size of this process, MB (Linux)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096 / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--unknown", type=int, default=200_000)
    parser.add_argument("--distinct", type=int, default=5_000)
    parser.add_argument("--normal", type=int, default=100_000)
    parser.add_argument("--collect-every", type=int, default=5_000)
    parser.add_argument("--warmup", type=int, default=20_000)
    args = parser.parse_args()

    app = overhead.make_app()
    monitor = otel_monitoring.instrument_app(
        app, tracer_provider=TracerProvider(), span_exporters=[], metric_exporters=[]
    )
    known = overhead._requests()
    unknown_scope = dict(known[0][0])

    def stream(i: int) -> tuple[dict[str, Any], bytes]:
        # two unknown requests for every normal one, as in the target mix
        if i % 3 == 2:
            return known[(i // 3) % len(known)]
        path = f"/unknown/{(i * 7919) % args.distinct}/page"
        return {**unknown_scope, "path": path, "raw_path": path.encode()}, b""

    def collect(i: int) -> None:
        if (i + 1) % args.collect_every == 0:
            monitor.flush()

    async def run(start: int, count: int) -> None:
        await overhead.drive(app, stream, start, count, collect)

    loop = asyncio.new_event_loop()
    total = args.unknown + args.normal
    loop.run_until_complete(run(0, args.warmup))
    gc.collect()
    before = rss_mb()
    loop.run_until_complete(run(args.warmup, total - args.warmup))
    monitor.flush()
    gc.collect()
    after = rss_mb()

    keys = [k for k in monitor.store if k.metric == HTTP_DURATION_METRIC]
    routes = {
        (k.get("http.route"), k.get("http.request.method"))
        for k in keys
        if k.get("http.route") != "<unmatched>"
    }
    classes = {k.get("status_class") for k in keys}
    bound = len(routes) * len(classes) + 2
    served = monitor.stats.service("all").requests
    print(f"requests served and counted:  {served} (sent {total})")
    print(f"HTTP duration series held:    {len(keys)} (bound: routes x classes + 2 = {bound})")
    print(f"RSS after warm-up:            {before:.1f} MB")
    print(f"RSS at end:                   {after:.1f} MB")
    print(f"RSS growth:                   {after - before:+.1f} MB (target < 10 MB)")
    monitor.shutdown()


if __name__ == "__main__":
    main()
