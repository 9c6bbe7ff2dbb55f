"""Anomaly scoring speed: ``analyzers.score_series`` on one series, on one core.

Times ``score_series`` on ``--points`` points (default 100,000: ~11.6 days of 10-s points,
a daily cycle, lognormal noise, a few spikes, a level shift and 1 % NaN gaps), ``--repeat``
times after one warm-up run, and prints the median, minimum and maximum wall time, the
median CPU time of the process (steadier than wall time on a shared machine) and the median
throughput in points per second (wall time). The scores are checked to be the same bits on
every run.

Usage::

    python benchmarks/score_speed.py [--points 100000] [--repeat 7]
    python benchmarks/score_speed.py --against analyzers/anomaly.py [--repeat 9]
    python benchmarks/score_speed.py --against OLD/analyzers/anomaly.py [--repeat 15]

It says whether the imported detector is the mypyc-compiled one (``setup.py``) or Python;
``--against analyzers/anomaly.py`` then times the compiled module against its own source run
as Python.

With ``--against``, that other copy of ``analyzers/anomaly.py`` (e.g. from ``git show
REV:analyzers/anomaly.py``) is loaded too and the two are timed alternately, back to back in
one process, so a shared machine's changing load hits both alike; it prints each one's median
CPU time and the median of the paired ratios (this / other), and checks the scores are the
same bits.

Target (issue #11, target 5): 200,000 points/s on one core.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import math
import statistics
import sys
import time
from collections.abc import Callable

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


def load_other(path: str) -> Callable[..., npt.NDArray[np.float64]]:
    """``score_series`` of another copy of ``analyzers/anomaly.py``, loaded from ``path``."""
    spec = importlib.util.spec_from_file_location("other_anomaly", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    score: Callable[..., npt.NDArray[np.float64]] = module.score_series
    return score


def kind() -> str:
    """Whether the imported ``analyzers.anomaly`` is the mypyc-compiled module or Python."""
    from analyzers import anomaly

    return "Python" if str(anomaly.__file__).endswith(".py") else "compiled"


def compare(
    path: str, ts: npt.NDArray[np.float64], values: npt.NDArray[np.float64], repeat: int
) -> None:
    """Time this ``score_series`` and the one at ``path`` alternately; print the medians."""
    other = load_other(path)
    if other(ts, values).tobytes() != analyzers.score_series(ts, values).tobytes():
        raise SystemExit("the two copies give different scores")
    this_times: list[float] = []
    other_times: list[float] = []
    for _ in range(repeat):
        for score, times in ((analyzers.score_series, this_times), (other, other_times)):
            started = time.process_time()
            score(ts, values)
            times.append(time.process_time() - started)
    ratios = [this / that for this, that in zip(this_times, other_times, strict=True)]
    print(
        f"score_series, {len(ts):,} points x {repeat}, alternating, median CPU time:"
        f" this ({kind()}) {statistics.median(this_times) * 1000:.1f} ms"
        f" ({len(ts) / statistics.median(this_times):,.0f} points/s),"
        f" {path} (Python) {statistics.median(other_times) * 1000:.1f} ms"
        f" ({len(ts) / statistics.median(other_times):,.0f} points/s);"
        f" median ratio this/other {statistics.median(ratios):.3f}"
        f" (min {min(ratios):.3f}, max {max(ratios):.3f}); scores identical"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--against", help="another analyzers/anomaly.py to compare with")
    args = parser.parse_args()

    ts, values = make_series(args.points)
    if args.against:
        compare(args.against, ts, values, args.repeat)
        return
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
        f"score_series ({kind()}): {args.points:,} points x {args.repeat}:"
        f" median {median * 1000:.1f} ms"
        f" (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}; median CPU"
        f" {statistics.median(cpu_times) * 1000:.1f});"
        f" {args.points / median:,.0f} points/s (target 200,000); scores sha256 {digest}"
    )


if __name__ == "__main__":
    main()
