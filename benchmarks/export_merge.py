"""The cost of merging collections for export, against the collection itself.

With an export interval coarser than the finest buckets (``OTEL_METRIC_EXPORT_INTERVAL=60000``
against 10-s buckets) the reader collects every 10 s into the store and merges each
collection into the batch waiting for the next export
(:class:`otel_monitoring.collect.merge.ExportBuffer`). This times, on the reader's thread
(never a request's), for ``--routes`` routes with ``--requests`` requests each per
collection:

* ``collect``: one SDK collection (what the reader paid before any merge);
* ``merge``: merging that collection's batch into the waiting one;
* ``take``: building the merged batch, once per export.

Runs alternate, and the medians of ``--rounds`` rounds are printed, with the merge's cost as
a share of the collection's (these machines are shared and noisy).

Usage::

    python benchmarks/export_merge.py [--routes 100] [--requests 50] [--rounds 30]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricsData

from otel_monitoring.collect.merge import ExportBuffer
from otel_monitoring.collect.reader import HISTOGRAM_MAX_SIZE, MonitoringMetricReader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--routes", type=int, default=100)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--per-export", type=int, default=6, help="collections per export")
    args = parser.parse_args()

    batches: list[MetricsData] = []
    reader = MonitoringMetricReader(sink=batches.append)
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("bench")
    duration = meter.create_histogram("http.server.request.duration", unit="s")
    size = meter.create_histogram("http.server.response.body.size", unit="By")
    active = meter.create_up_down_counter("http.server.active_requests")
    rng = random.Random(1)
    buffer = ExportBuffer(max_buckets=HISTOGRAM_MAX_SIZE)
    collect_s: list[float] = []
    merge_s: list[float] = []
    take_s: list[float] = []
    for n in range(args.rounds * args.per_export):
        for route in range(args.routes):
            attrs = {"http.route": f"/r{route}", "http.request.method": "GET"}
            for _ in range(args.requests):
                duration.record(rng.lognormvariate(-3.0, 0.8), attrs)
                size.record(rng.randint(100, 100_000), attrs)
            active.add(0, attrs)
        start = time.perf_counter()
        reader.collect_now()
        collect_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        buffer.add(batches.pop())
        merge_s.append(time.perf_counter() - start)
        if (n + 1) % args.per_export == 0:
            start = time.perf_counter()
            buffer.take()
            take_s.append(time.perf_counter() - start)
    provider.shutdown()
    c, m, t = (statistics.median(x) * 1000 for x in (collect_s, merge_s, take_s))
    streams = 3 * args.routes
    print(
        f"{args.routes} routes ({streams} streams), {args.requests} requests per route and"
        f" collection, {args.per_export} collections per export, medians of"
        f" {len(collect_s)} collections"
    )
    print(f"collect {c:.2f} ms, merge {m:.2f} ms ({m / c:.0%} of a collection), take {t:.2f} ms")


if __name__ == "__main__":
    main()
