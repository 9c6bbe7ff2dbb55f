"""False alarms of the anomaly detector on incident-free latency charts, per day and chart.

Synthetic p95 charts with no incident: per bucket, the p95 of ``--requests`` log-normal
latencies (sigma 0.2) around a daily cycle (20 ms +- 5 ms), at the two resolutions anomaly
rules can watch: 10-s points (8,640 a day) and 1-min points (1,440 a day). Each of
``--series`` charts runs ``--days`` days; the first day (learning) is not counted. Every
alarm here is a false one, so the figure is what an anomaly rule on a quiet chart would page
per day. Then, for scale, the alarms on 40,000 points of Gaussian white noise (seed 0) at
5-min and 10-s spacing. The live charts score p95 latency with the count test on the bucket's
requests (``analyzers.ExceedanceDetector``) instead of the point detector on the p95; the last
column is that figure, from the same requests.

Usage::

    python benchmarks/false_alarms.py [--series 20] [--days 3] [--requests 6]
"""

from __future__ import annotations

import argparse

import numpy as np

import analyzers


def chart(
    rng: np.random.Generator, step_s: float, days: int, requests: int
) -> tuple[np.ndarray, np.ndarray]:
    """p95 per bucket of ``requests`` log-normal latencies around a daily cycle (ms), and the
    latencies (one row per bucket)."""
    ts = np.arange(int(days * 86400 / step_s)) * step_s
    typical = 20.0 + 5.0 * np.sin(2 * np.pi * ts / 86400.0)
    samples = rng.lognormal(np.log(typical)[:, None], 0.2, (len(ts), requests))
    return np.quantile(samples, 0.95, axis=1), samples


def count_test_scores(step_s: float, samples: np.ndarray) -> np.ndarray:
    """The live chart's score: the count test's on the requests ``samples``."""
    test = analyzers.ExceedanceDetector()
    return np.array(
        [
            test.update(i * step_s, analyzers.SortedBucket(row), step_s)
            for i, row in enumerate(samples.tolist())
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--requests", type=int, default=6, help="requests per 10-s bucket")
    args = parser.parse_args()
    rng = np.random.default_rng(11)
    print(f"{args.series} incident-free p95 charts, {args.days - 1} days counted each")
    print(
        f"{'resolution':>10} {'sensitivity':>11} {'false alarms per chart-day':>27}"
        f" {'live (count test)':>20}"
    )
    for step_s, per_bucket in ((10.0, args.requests), (60.0, 6 * args.requests)):
        per_day = int(86400 / step_s)
        counts = {s: 0 for s in analyzers.Sensitivity}
        live = {s: 0 for s in analyzers.Sensitivity}
        for _ in range(args.series):
            values, samples = chart(rng, step_s, args.days, per_bucket)
            point = analyzers.score_series(np.arange(len(values)) * step_s, values)
            counted = count_test_scores(step_s, samples)
            for s in analyzers.Sensitivity:
                counts[s] += int((point[per_day:] >= s.value).sum())
                live[s] += int((counted[per_day:] >= s.value).sum())
        for s, n in counts.items():
            days = args.series * (args.days - 1)
            print(f"{step_s:>9g}s {s.name.lower():>11} {n / days:>27.2f} {live[s] / days:>20.2f}")
    noise = np.random.default_rng(0).normal(0.0, 1.0, 40_000)
    for step_s in (300.0, 10.0):
        scores = analyzers.score_series(np.arange(len(noise)) * step_s, noise)
        found = ", ".join(
            f"{s.name.lower()} {int((scores >= s.value).sum())}" for s in analyzers.Sensitivity
        )
        print(f"white noise, 40,000 points {step_s:g} s apart: {found} alarms")


if __name__ == "__main__":
    main()
