"""The project detector against two simple baselines on labelled operations metrics.

Scores the ops development set (``datasets/ops`` in the shared folder: half of Microsoft's
Cloud Monitoring Dataset and 4 machines of the Server Machine Dataset, both public, MIT; see
that folder's README for where each file comes from) with

* **ours** - ``otel-monitoring analyze anomalies`` (one worker), alarm at ``Sensitivity.MEDIUM``;
* **z-score** - the seed's rule, ``|z|`` against all earlier points, alarm at ``|z| >= 2``;
* **robust z** - rolling 1-day median/MAD z-score, alarm at ``>= 3``

(baselines: ``benchmarks/baselines.py``), then runs ``ops_score.py`` on each output folder
and prints, per source and overall: the threshold-free recall at 0.1 and 0.3 false-alarm
episodes per series-day (each source at its own best threshold, swept the same way for every
method), and recall and false-alarm episodes per series-day at the method's own alarm rule.

Usage (from the project root, the shared folder beside it)::

    python benchmarks/ops.py ../shared/datasets/ops --scorer ../shared/tools/ops_score.py

The data is not part of this project; pass its path.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.baselines import SCORERS, write_folder  # noqa: E402

Summary = dict[str, Any]


def run_cli(data: Path, out: Path) -> float:
    """``otel-monitoring analyze anomalies data -o out --jobs 1 -q``; returns seconds."""
    from otel_monitoring.cli.analyze import analyze_app

    start = time.perf_counter()
    try:
        analyze_app(
            ["anomalies", str(data), "-o", str(out), "-q", "--jobs", "1"], standalone_mode=False
        )
    except SystemExit as exc:
        if exc.code:
            sys.exit(f"error: the CLI failed with exit code {exc.code}")
    return time.perf_counter() - start


def ops_score(
    scorer: Path, ops: Path, results: Path, threshold: float, files: list[str] | None = None
) -> Summary:
    """Run ``ops_score.py`` on a results folder; returns its JSON summary."""
    with tempfile.TemporaryDirectory(prefix="ops-score-") as tmp:
        summary = Path(tmp) / "summary.json"
        cmd = [
            sys.executable, str(scorer), "--data", str(ops / "data"),
            "--labels", str(ops / "labels.json"), "--results", str(results),
            "--threshold", repr(threshold), "--json", str(summary),
        ]  # fmt: skip
        if files is not None:
            listing = Path(tmp) / "files.txt"
            listing.write_text("".join(f + "\n" for f in files))
            cmd += ["--files", str(listing)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"error: ops_score failed:\n{proc.stderr.strip()}")
        out: Summary = json.loads(summary.read_text())
    return out


def rows_of(summary: Summary) -> list[tuple[str, Summary]]:
    return [*sorted(summary["sources"].items()), ("all", summary["all"])]


def print_table(results: dict[str, Summary]) -> None:
    print(
        f"{'method':<10} {'source':<6} {'segs':>5} {'R@0.1FA':>8} {'R@0.3FA':>8}"
        f" {'rule recall':>11} {'rule FA/day':>11} {'delay':>6}"
    )
    for name, summary in results.items():
        for source, r in rows_of(summary):
            delay = r["median_delay"]
            print(
                f"{name:<10} {source:<6} {r['segments']:>5} {r['at_0.1']['recall']:>8.3f}"
                f" {r['at_0.3']['recall']:>8.3f} {r['recall']:>11.3f} {r['fa_per_day']:>11.3f}"
                f" {'-' if delay is None else f'{delay:g}':>6}"
            )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ops", nargs="?", default="../shared/datasets/ops", type=Path)
    ap.add_argument("--scorer", default="../shared/tools/ops_score.py", type=Path)
    ap.add_argument("--keep", type=Path, help="keep the result folders under this folder")
    args = ap.parse_args(argv)
    if not (args.ops / "data").is_dir() or not (args.ops / "labels.json").is_file():
        sys.exit(f"error: {args.ops} has no data/ and labels.json (pass the ops folder)")
    if not args.scorer.is_file():
        sys.exit(f"error: scorer {args.scorer} not found (pass --scorer)")
    from analyzers import Sensitivity

    medium = float(Sensitivity.MEDIUM.value)
    results: dict[str, Summary] = {}
    with tempfile.TemporaryDirectory(prefix="ops-bench-") as tmp:
        base = args.keep if args.keep else Path(tmp)
        secs = run_cli(args.ops / "data", base / "ours")
        results["ours"] = ops_score(args.scorer, args.ops, base / "ours", medium)
        for name, key in (("z-score", "zscore"), ("robust z", "robust")):
            write_folder(args.ops / "data", base / key, SCORERS[key])
            results[name] = ops_score(args.scorer, args.ops, base / key, 0.5)
    print(f"ops development set: {args.ops} (CLI scored it in {secs:.1f} s, one worker)")
    print(f"rule = MEDIUM ({medium}) for ours, |z| >= 2 for z-score, >= 3 for robust z")
    print_table(results)
    ours = results["ours"]
    verdicts = []
    for source in sorted(ours["sources"]):
        mine = ours["sources"][source]["at_0.3"]["recall"]
        best = max(
            results[m]["sources"][source]["at_0.3"]["recall"] for m in ("z-score", "robust z")
        )
        verdicts.append(
            f"{source} {mine:.3f} vs {best:.3f} ({'met' if mine >= best else 'NOT met'})"
        )
    print("target recall@0.3FA >= best baseline per source: " + "; ".join(verdicts))
    fa = ours["all"]["fa_per_day"]
    print(f"target MEDIUM FA/series-day <= 0.3: {fa:.3f} ({'met' if fa <= 0.3 else 'NOT met'})")
    print(
        f"OPS recall@0.3FA: {ours['all']['at_0.3']['recall']:.3f}, MEDIUM recall:"
        f" {ours['all']['recall']:.3f}, MEDIUM FA/day: {fa:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
