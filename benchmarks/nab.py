"""Detection quality and speed of the anomaly detector on the Numenta Anomaly Benchmark (NAB).

Runs ``otel-monitoring analyze anomalies`` over a NAB data folder (``<category>/<name>.csv``),
scores the results with a NAB scorer for the standard, reward_low_FP_rate and
reward_low_FN_rate profiles, and reports in the same run:

* CLI throughput (rows per second, whole folder, including CSV reading and writing);
* streaming ``AnomalyDetector.update`` cost (microseconds per point, one process).

The NAB data is not part of this repository. Get it from NAB's public repository
(https://github.com/numenta/NAB, MIT license; the data has not changed since 2015)::

    git clone --depth 1 https://github.com/numenta/NAB /tmp/NAB
    python benchmarks/nab.py --data /tmp/NAB/data --scorer PATH/TO/nab_score.py

``--data`` is a folder of ``<category>/<name>.csv`` files; the labelled windows are read from
``--labels``, else from ``combined_windows*.json`` in that folder, else from NAB's
``labels/combined_windows.json`` beside it (as in a clone). ``--scorer`` is a NAB scorer with
the command line ``--data --labels --results --profile all --json SUMMARY`` (the project's
clean-room ``nab_score.py``, which is not in this repository either). The figures in
docs/benchmarks.md were measured on the 47-file development half of NAB with its
``combined_windows_dev.json``; the whole corpus gives other numbers.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_ROWS_PER_S = 100_000
TARGET_UPDATE_US = 20.0
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


def _labels_path(data: Path, given: str | None) -> Path:
    if given:
        return Path(given)
    candidates = [
        data / name
        for name in ("combined_windows_dev.json", "combined_windows.json", "labels.json")
    ]
    candidates.append(data.parent / "labels" / "combined_windows.json")  # a clone of NAB
    for path in candidates:
        if path.is_file():
            return path
    sys.exit(f"error: no labels JSON in {data} or {data.parent / 'labels'}; pass --labels")


def _run_cli(data: Path, out: Path, jobs: int) -> tuple[float, int]:
    sys.path.insert(0, str(ROOT))
    from otel_monitoring.cli.analyze import analyze_app

    args = ["anomalies", str(data), "-o", str(out), "-q"]
    if jobs:
        args += ["--jobs", str(jobs)]
    start = time.perf_counter()
    try:
        analyze_app(args, standalone_mode=False)
    except SystemExit as exc:  # typer.Exit on bad input
        if exc.code:
            sys.exit(f"error: the CLI failed with exit code {exc.code}")
    elapsed = time.perf_counter() - start
    rows = sum(sum(1 for _ in f.open()) - 1 for f in out.rglob("*.csv"))
    return elapsed, rows


def _update_cost_us(data: Path, files: list[str]) -> tuple[float, int]:
    from analyzers import AnomalyDetector

    series = []
    for rel in files:
        with (data / rel).open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        ts = [datetime.fromisoformat(r["timestamp"]).timestamp() for r in rows]
        series.append((ts, [float(r["value"]) for r in rows]))
    points = sum(len(ts) for ts, _ in series)
    start = time.perf_counter()
    for ts, vs in series:
        update = AnomalyDetector().update
        for t, v in zip(ts, vs, strict=True):
            update(t, v)
    return (time.perf_counter() - start) / points * 1e6, points


def _score(scorer: Path, data: Path, labels: Path, results: Path) -> dict[str, dict[str, float]]:
    summary = results / "_summary.json"
    cmd = [
        sys.executable, str(scorer), "--data", str(data), "--labels", str(labels),
        "--results", str(results), "--profile", "all", "--json", str(summary),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"error: scorer failed:\n{proc.stderr.strip()}")
    with summary.open() as fh:
        out: dict[str, dict[str, float]] = json.load(fh)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--data",
        required=True,
        help="NAB data folder, e.g. NAB/data of a clone of https://github.com/numenta/NAB",
    )
    ap.add_argument("--scorer", required=True, help="NAB scorer with nab_score.py's command line")
    ap.add_argument("--labels", help="windows JSON (default: the one in the data folder)")
    ap.add_argument("--out", help="results folder (default: a temporary folder)")
    ap.add_argument("--jobs", type=int, default=0, help="CLI worker processes (0 = per CPU)")
    args = ap.parse_args(argv)

    data, scorer = Path(args.data), Path(args.scorer)
    if not data.is_dir():
        sys.exit(
            f"error: {data} is not a folder (pass --data: the data folder of a clone of "
            "https://github.com/numenta/NAB)"
        )
    if not scorer.is_file():
        sys.exit(f"error: scorer {scorer} not found (pass --scorer)")
    labels = _labels_path(data, args.labels)
    with labels.open() as fh:
        files = sorted(json.load(fh))

    with tempfile.TemporaryDirectory(prefix="nab-results-") as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        cli_s, rows = _run_cli(data, out, args.jobs)
        scores = _score(scorer, data, labels, out)
    update_us, points = _update_cost_us(data, files)

    rate = rows / cli_s
    print(f"NAB corpus: {data} ({len(files)} labelled files, {rows} rows scored by the CLI)")
    print(f"{'profile':<20} {'threshold':>10} {'NAB score':>10}")
    for name in PROFILES:
        r = scores[name]
        thr = "none" if r["threshold"] is None else f"{r['threshold']:.4g}"
        print(f"{name:<20} {thr:>10} {r['score']:>10.2f}")
    print(
        f"CLI: {cli_s:.2f} s for {rows} rows = {rate:,.0f} rows/s "
        f"({rate / TARGET_ROWS_PER_S:.2f}x the {TARGET_ROWS_PER_S:,} rows/s target; "
        f"{os.cpu_count()} CPU(s))"
    )
    print(
        f"streaming update: {update_us:.2f} us/point over {points} points "
        f"({TARGET_UPDATE_US / update_us:.2f}x faster than the {TARGET_UPDATE_US:.0f} us target)"
    )
    print(f"NAB standard score: {scores['standard']['score']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
