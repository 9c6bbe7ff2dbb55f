"""Anomaly scoring speed: ``analyzers.score_series`` on one series, on one core.

Times ``score_series`` on ``--points`` points (default 100,000: ~11.6 days of 10-s points,
a daily cycle, lognormal noise, a few spikes, a level shift and 1 % NaN gaps), ``--repeat``
times after one warm-up run, and prints the median, minimum and maximum wall time, the
median CPU time of the process (steadier than wall time on a shared machine) and the median
throughput in points per second (wall time). The scores are checked to be the same bits on
every run.

Usage::

    python benchmarks/score_speed.py [--points 100000] [--repeat 7]

Target (issue #11, target 5): 200,000 points/s on one core.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import statistics
import time

import numpy as np
import numpy.typing as npt

import analyzers


def make_series(points: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Seeded 10-s series: timestamps (seconds) and p95-like values (ms)."""
    rng = np.random.default_rng(11)
    ts = 1_700_000_000.0 + 10.0 * np.arange(points, dtype=np.float64)
    base = 20.0 + 5.0 * np.sin(ts / 86400.0 * 2.0 * math.pi)
    values = np.asarray(rng.lognormal(np.log(base), 0.2), dtype=np.float64)
    values[rng.integers(0, points, points // 100)] = np.nan
    for at in rng.integers(points // 10, points, 10):
        values[at] *= 6.0
    values[points * 3 // 4 :] += 15.0
    return ts, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    ts, values = make_series(args.points)
    first = analyzers.score_series(ts, values)  # warm-up
    digest = hashlib.sha256(first.tobytes()).hexdigest()[:16]
    times = []
    cpu_times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        cpu_started = time.process_time()
        scores = analyzers.score_series(ts, values)
        cpu_times.append(time.process_time() - cpu_started)
        times.append(time.perf_counter() - started)
        if hashlib.sha256(scores.tobytes()).hexdigest()[:16] != digest:
            raise SystemExit("scores differ between runs")
    median = statistics.median(times)
    print(
        f"score_series: {args.points:,} points x {args.repeat}: median {median * 1000:.1f} ms"
        f" (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}; median CPU"
        f" {statistics.median(cpu_times) * 1000:.1f});"
        f" {args.points / median:,.0f} points/s (target 200,000); scores sha256 {digest}"
    )


if __name__ == "__main__":
    main()
