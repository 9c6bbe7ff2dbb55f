"""Several processes sharing one file: every process reads the exact combined numbers."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
from persist_helpers import METRIC, T0, run_worker, worker_values

from otel_monitoring.histogram import ExpHistogram
from otel_monitoring.persist import SqliteStore

INTERVALS = 30
SEEDS = (101, 202)


def test_two_processes_add_up_exactly(db_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=run_worker, args=(str(db_path), seed, INTERVALS)) for seed in SEEDS
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    every_value = np.concatenate([v for seed in SEEDS for v in worker_values(seed, INTERVALS)])
    merged = ExpHistogram()
    for seed in SEEDS:
        merged.merge(ExpHistogram.from_values(np.concatenate(worker_values(seed, INTERVALS))))
    with SqliteStore(db_path) as reader:
        now = T0 + INTERVALS * 10.0
        for window in (None, 3600.0):
            agg = reader.fold(METRIC, window, now, lambda key: ("all",))[("all",)]
            assert agg.count == every_value.size
            assert agg.errors == 2 * INTERVALS
            assert agg.hist is not None
            assert agg.hist.count == merged.count
            np.testing.assert_array_equal(agg.hist.counts, merged.counts)
            for q in (0.5, 0.95, 0.99):
                assert agg.hist.quantile(q) == merged.quantile(q)
            # and within the histogram's stated error of the exact percentile
            assert abs(agg.hist.quantile(0.95) / np.quantile(every_value, 0.95) - 1) < 0.02
        width, per_bucket = reader.buckets(METRIC, 600.0, now, lambda key: ("all",))
        assert width == 10.0
        last_minutes = sum(
            v.size for seed in SEEDS for v in worker_values(seed, INTERVALS)[-(600 // 10) :]
        )
        assert sum(a.count for a in per_bucket[("all",)].values()) == last_minutes
        assert len(reader.series(METRIC)) == 1
