"""Cross-validated figures for a grid of detector settings (issue 11, target 1).

For every setting in the grid (``DetectorSettings`` overrides; the first is the defaults) the
detector scores the NAB development corpus and the ops development set once. Then:

* **NAB, leave one category out.** For each of the 7 categories, the setting *and* the alarm
  threshold are chosen on the other 6 (``nab_score.py`` optimising the standard profile's
  threshold on those files); the held-out category's scores are turned into alarms at that
  threshold. All 7 held-out parts are put together and scored once (``--threshold 0.5`` on
  the 0/1 alarms, which is exact: NAB counts only alarms). *In-sample* is the best setting on
  the whole corpus, its threshold optimised there too (what ``benchmarks/nab.py`` prints).
* **Ops, leave one source out.** For each source the setting is chosen on the other source(s):
  the highest threshold-free recall at 0.3 false-alarm episodes per series-day among settings
  whose MEDIUM false alarms there stay <= 0.3 per series-day (if none does, the fewest false
  alarms). The held-out source is then reported with that setting. *In-sample* picks per
  source the setting best on that source itself.

A setting that raises an in-sample figure but not the cross-validated one is not an
improvement. Usage (from the project root, the shared folder beside it; both datasets are
public, their READMEs say where they come from)::

    python benchmarks/crossval.py --nab ../shared/datasets/nab --ops ../shared/datasets/ops \\
        --grid 'slow:baseline_rate=0.005' --grid 'hold60:incident_hold_points=60'

Each ``--grid`` is ``name:field=value[,field=value...]``. ``--nab-only`` / ``--ops-only``
skip a corpus. ``--each`` also prints every setting's own NAB cross-validated score (the
setting fixed, only the threshold chosen on the other 6 categories): the figure a setting
would score if it alone were shipped. ``--with-zscore name:Z[:WINDOW]`` adds the defaults
combined with the seed's z-score rule (``benchmarks/baselines.py``, ``with_zscore``) to the
grid. Runs one process (one core); about 40 s per setting.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from analyzers import DetectorSettings, Sensitivity  # noqa: E402
from benchmarks.baselines import Scorer, detector_scorer, with_zscore, write_folder  # noqa: E402
from benchmarks.ops import ops_score  # noqa: E402

BUDGET_FA = 0.3
T = TypeVar("T")


def with_overrides(defaults: T, body: str, *, ignore_unknown: bool = False) -> T:
    """``defaults`` (a frozen dataclass) with ``field=value,...`` applied, each value read as
    its field's type (``true``/``1``/``yes`` for a bool, ``0.1;5`` for a tuple of floats, empty
    for none; ``none`` for None, an optional field off); an unknown field exits with a
    message, or is skipped with ``ignore_unknown``."""
    names = {f.name for f in dataclasses.fields(defaults)}  # type: ignore[arg-type]
    changes: dict[str, Any] = {}
    for item in filter(None, body.split(",")):
        key, _, text = item.partition("=")
        key = key.strip()
        if key not in names:
            if ignore_unknown:
                continue
            sys.exit(f"error: {body!r}: {type(defaults).__name__} has no field {key!r}")
        default = getattr(defaults, key)
        kind = type(default)
        if text.strip().lower() == "none":  # an optional field switched off
            changes[key] = None
        elif default is None:  # an optional field off by default (a time zone): its text
            changes[key] = text.strip()
        elif kind is tuple:  # a tuple of floats, ";"-separated
            changes[key] = tuple(float(x) for x in text.split(";") if x.strip())  # "": ()
        elif kind is bool:
            changes[key] = text.strip().lower() in ("1", "true", "yes")
        else:
            changes[key] = kind(text)
    return dataclasses.replace(defaults, **changes)  # type: ignore[type-var]


def parse_grid(specs: list[str]) -> dict[str, DetectorSettings]:
    """``name:field=value,...`` -> settings; the defaults come first as ``default``."""
    grid = {"default": DetectorSettings()}
    for spec in specs:
        name, _, body = spec.partition(":")
        if not name or not body:
            sys.exit(f"error: --grid {spec!r}: expected name:field=value[,field=value]")
        grid[name] = with_overrides(grid["default"], body)
    return grid


def nab_score(
    scorer: Path, nab: Path, labels: Path, results: Path, files: list[str], threshold: float | None
) -> tuple[float, float]:
    """Standard NAB score of ``files`` and its threshold (optimised when ``threshold`` is None)."""
    with tempfile.TemporaryDirectory(prefix="nab-cv-") as tmp:
        listing, summary = Path(tmp) / "files.txt", Path(tmp) / "s.json"
        listing.write_text("".join(f + "\n" for f in files))
        cmd = [
            sys.executable, str(scorer), "--data", str(nab), "--labels", str(labels),
            "--results", str(results), "--files", str(listing), "--profile", "standard",
            "--json", str(summary),
        ]  # fmt: skip
        if threshold is not None:
            cmd += ["--threshold", repr(threshold)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            sys.exit(f"error: nab_score failed:\n{proc.stderr.strip()}")
        r = json.loads(summary.read_text())["standard"]
    return float(r["score"]), float(r["threshold"] if r["threshold"] is not None else 0.5)


def binarise(src: Path, dst: Path, threshold: float) -> None:
    """Copy a result CSV with ``anomaly_score`` replaced by 1/0 at ``threshold``."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open() as fi, dst.open("w") as fo:
        fo.write(fi.readline())
        for line in fi:
            head, _, score = line.rstrip("\n").rpartition(",")
            fo.write(f"{head},{1 if float(score) >= threshold else 0}\n")


def nab_cv(args: argparse.Namespace, grid: dict[str, Scorer], work: Path) -> None:
    nab: Path = args.nab
    labels = nab / "combined_windows_dev.json"
    files = sorted(json.loads(labels.read_text()))
    cats = sorted({f.split("/")[0] for f in files})
    medium = float(Sensitivity.MEDIUM.value)
    full: dict[str, tuple[float, float]] = {}
    at_medium: dict[str, float] = {}
    train: dict[tuple[str, str], tuple[float, float]] = {}
    for name, scorer in grid.items():
        out = work / "nab" / name
        write_folder(nab, out, scorer, [Path(f) for f in files])
        full[name] = nab_score(args.nab_scorer, nab, labels, out, files, None)
        at_medium[name] = nab_score(args.nab_scorer, nab, labels, out, files, medium)[0]
        for cat in cats:
            rest = [f for f in files if not f.startswith(cat + "/")]
            train[(name, cat)] = nab_score(args.nab_scorer, nab, labels, out, rest, None)
        print(
            f"  NAB {name:<16} standard {full[name][0]:6.2f} (threshold {full[name][1]:.4g}),"
            f" at MEDIUM {at_medium[name]:6.2f}",
            flush=True,
        )
    combined = work / "nab-cv"
    picks = []
    for cat in cats:
        best = max(grid, key=lambda n: train[(n, cat)][0])
        thr = train[(best, cat)][1]
        picks.append(f"{cat}={best}@{thr:.4g}")
        for f in files:
            if f.startswith(cat + "/"):
                binarise(work / "nab" / best / f, combined / f, thr)
    cv = nab_score(args.nab_scorer, nab, labels, combined, files, 0.5)[0]
    best_in = max(grid, key=lambda n: full[n][0])
    print(f"NAB in-sample: {full[best_in][0]:.2f} ({best_in}); default {full['default'][0]:.2f}")
    print(f"NAB cross-validated (leave one category out): {cv:.2f} [{', '.join(picks)}]")
    if args.each:
        for name in grid:
            alone = work / "nab-cv-each" / name
            for cat in cats:
                for f in files:
                    if f.startswith(cat + "/"):
                        binarise(work / "nab" / name / f, alone / f, train[(name, cat)][1])
            each = nab_score(args.nab_scorer, nab, labels, alone, files, 0.5)[0]
            shutil.rmtree(alone)
            print(
                f"  NAB {name:<16} alone: in-sample {full[name][0]:6.2f},"
                f" cross-validated {each:6.2f}"
            )


def ops_cv(args: argparse.Namespace, grid: dict[str, Scorer], work: Path) -> None:
    ops: Path = args.ops
    medium = float(Sensitivity.MEDIUM.value)
    per: dict[str, dict[str, Any]] = {}
    for name, scorer in grid.items():
        out = work / "ops" / name
        write_folder(ops / "data", out, scorer)
        per[name] = ops_score(args.ops_scorer, ops, out, medium)
        shutil.rmtree(out)
        cells = "; ".join(
            f"{s} R@0.3 {r['at_0.3']['recall']:.3f} FA/day {r['fa_per_day']:.3f}"
            for s, r in sorted(per[name]["sources"].items())
        )
        a = per[name]["all"]
        print(
            f"  ops {name:<16} {cells}; all R@0.3 {a['at_0.3']['recall']:.3f}"
            f" FA/day {a['fa_per_day']:.3f}",
            flush=True,
        )
    sources = sorted(per["default"]["sources"])

    def pick(on: list[str]) -> str:
        def fa(n: str) -> float:
            src = per[n]["sources"]
            days = float(sum(src[s]["series_days"] for s in on))
            return float(sum(src[s]["false_alarms"] for s in on)) / days

        def recall(n: str) -> float:
            src = per[n]["sources"]
            found = float(sum(src[s]["at_0.3"]["detected"] for s in on))
            return found / float(sum(src[s]["segments"] for s in on))

        ok = [n for n in grid if fa(n) <= BUDGET_FA]
        if not ok:
            return min(grid, key=fa)
        return max(ok, key=lambda n: (recall(n), -fa(n)))

    rows = []
    det_cv = det_in = segs = 0
    for s in sources:
        cvn = pick([o for o in sources if o != s]) if len(sources) > 1 else pick([s])
        inn = pick([s])
        rc, ri = per[cvn]["sources"][s], per[inn]["sources"][s]
        det_cv += rc["at_0.3"]["detected"]
        det_in += ri["at_0.3"]["detected"]
        segs += rc["segments"]
        rows.append(
            f"{s}: in-sample R@0.3 {ri['at_0.3']['recall']:.3f} FA/day {ri['fa_per_day']:.3f}"
            f" ({inn}), cross-validated R@0.3 {rc['at_0.3']['recall']:.3f}"
            f" FA/day {rc['fa_per_day']:.3f} ({cvn})"
        )
    print("ops leave one source out: " + "; ".join(rows))
    print(f"ops all: in-sample R@0.3 {det_in / segs:.3f}, cross-validated {det_cv / segs:.3f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nab", type=Path, default=Path("../shared/datasets/nab"))
    ap.add_argument("--ops", type=Path, default=Path("../shared/datasets/ops"))
    ap.add_argument("--nab-scorer", type=Path, default=Path("../shared/tools/nab_score.py"))
    ap.add_argument("--ops-scorer", type=Path, default=Path("../shared/tools/ops_score.py"))
    ap.add_argument("--grid", action="append", default=[], help="name:field=value[,...]")
    ap.add_argument("--nab-only", action="store_true")
    ap.add_argument("--ops-only", action="store_true")
    ap.add_argument(
        "--each",
        action="store_true",
        help="also cross-validate every setting alone (NAB: only its threshold chosen per fold)",
    )
    ap.add_argument(
        "--with-zscore",
        action="append",
        default=[],
        metavar="NAME:Z[:WINDOW]",
        help="also the defaults combined with the z-score rule (|z| = Z scores MEDIUM; "
        "benchmarks/baselines.py with_zscore)",
    )
    args = ap.parse_args(argv)
    grid = {name: detector_scorer(s) for name, s in parse_grid(args.grid).items()}
    for spec in args.with_zscore:
        name, *rest = spec.split(":")
        try:
            grid[name] = with_zscore(float(rest[0]), int(rest[1]) if len(rest) > 1 else 0)
        except (IndexError, ValueError):
            sys.exit(f"error: --with-zscore {spec!r}: expected name:z[:window]")
    for flag, path in (("--nab-scorer", args.nab_scorer), ("--ops-scorer", args.ops_scorer)):
        if not path.is_file():
            sys.exit(f"error: {flag} {path} not found")
    print(f"grid: {', '.join(grid)}")
    with tempfile.TemporaryDirectory(prefix="crossval-") as tmp:
        if not args.ops_only:
            nab_cv(args, grid, Path(tmp))
        if not args.nab_only:
            ops_cv(args, grid, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
