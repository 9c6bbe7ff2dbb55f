"""Where the ops recall gap lies: labelled segments split by kind, per method (issue 11).

The ops target (recall at 0.3 false-alarm episodes per series-day at or above the simple
baselines) is not met; this script says which segments make the difference. Every scored
segment of the ops development set is put in one class:

* **daily** - the series shows the same excursion at the same time of day on each of the two
  days before (at least half its size, its start within an hour of the same time of day;
  found in the values, not the labels): a recurring event, which the detector expects after
  two days on purpose (``DetectorSettings.echo_days``; the production suite's nightly batch
  job must not page every night);
* **follows** - not daily, and it starts within ``refractory_points`` (120) points of an
  earlier labelled segment's start in the same file: the detector counts it as the same
  incident (one page per incident);
* **other** - the rest.

Each method is scored by ``ops_score.py`` (its per-source threshold at 0.3 false-alarm
episodes per series-day); the segments each one detects at that threshold (an alarm in
``[start, end + 5]``, the scorer's rule) are counted per class. Methods: ours (defaults), ours
with the recurring-event rule off (``echo_days=0``), the seed's z-score rule and the rolling
robust z (``benchmarks/baselines.py``).

Usage (from the project root; the data is not part of this project, its README says where
each file comes from)::

    python benchmarks/ops_split.py ../shared/datasets/ops --scorer ../shared/tools/ops_score.py
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from analyzers import DetectorSettings  # noqa: E402
from benchmarks.baselines import SCORERS, data_files, detector_scorer, write_folder  # noqa: E402
from benchmarks.ops import ops_score  # noqa: E402
from otel_monitoring.cli.analyze import read_series  # noqa: E402

FloatArray = npt.NDArray[np.float64]
DETECT_AFTER = 5  # ops_score.py: an alarm up to 5 points after a segment's end detects it
DAY_S = 86400.0
CLASSES = ("daily", "follows", "other")


@dataclasses.dataclass
class Segment:
    """One scored labelled segment: its file, rows (inclusive) and class."""

    rel: str
    start: int
    end: int
    kind: str = "other"


def excursion(t: FloatArray, v: FloatArray, a: int, b: int, scale: float) -> float:
    """Largest distance of rows ``a..b`` from the median of the 2 h before (ending 10 min
    before row ``a``), in units of ``scale``."""
    base = v[(t >= t[a] - 7200.0) & (t < t[a] - 600.0)]
    ref = float(np.median(base)) if len(base) else float(v[a])
    return float(np.max(np.abs(v[a : b + 1] - ref))) / scale


def is_daily(t: FloatArray, v: FloatArray, a: int, b: int) -> bool:
    """Whether rows ``a..b`` repeat an excursion of the two previous days (see the module
    docstring): both days hold one at least half as large within an hour of this time."""
    scale = 1.4826 * float(np.median(np.abs(np.diff(v)))) + 1e-6 * float(np.ptp(v)) + 1e-12
    size = excursion(t, v, a, b, scale)
    if size <= 3.0:
        return False
    for days in (1, 2):
        best = 0.0
        for shift_min in range(-60, 61, 5):
            target = t[a] - days * DAY_S + shift_min * 60.0
            i = int(np.searchsorted(t, target))
            j = i + (b - a)
            if i > 0 and j < len(t) and abs(t[i] - target) <= 3600.0:
                best = max(best, excursion(t, v, i, j, scale))
        if best < 0.5 * size:
            return False
    return True


def segments_of(ops: Path, refractory: int) -> list[Segment]:
    """The scored segments with their class."""
    labels = json.loads((ops / "labels.json").read_text())
    scored_path = ops / "scored_from.json"
    scored_from = json.loads(scored_path.read_text()) if scored_path.is_file() else {}
    out: list[Segment] = []
    for rel_path in data_files(ops / "data"):
        rel = rel_path.as_posix()
        table = read_series(ops / "data" / rel_path)
        t = np.asarray(table.timestamps_s, dtype=np.float64)
        v = np.asarray(table.values, dtype=np.float64)
        row = {r[table.header.index("timestamp")]: i for i, r in enumerate(table.rows)}
        first = row.get(scored_from.get(rel, ""), 0)
        starts: list[int] = []
        for start_text, end_text in labels.get(rel, []):
            a, b = max(row[start_text], first), row[end_text]
            if b < first:
                continue
            seg = Segment(rel, a, b)
            if is_daily(t, v, a, b):
                seg.kind = "daily"
            elif any(0 < a - s <= refractory for s in starts):
                seg.kind = "follows"
            starts.append(row[start_text])
            out.append(seg)
    return out


def tops(results: Path, segs: list[Segment]) -> FloatArray:
    """Each segment's highest score in ``[start, end + 5]`` from a results folder."""
    cache: dict[str, FloatArray] = {}
    top = np.empty(len(segs))
    for k, seg in enumerate(segs):
        if seg.rel not in cache:
            lines = (results / seg.rel).read_text().splitlines()[1:]
            cache[seg.rel] = np.array([float(x.rpartition(",")[2]) for x in lines])
        s = cache[seg.rel]
        top[k] = s[seg.start : min(seg.end + DETECT_AFTER, len(s) - 1) + 1].max()
    return top


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("ops", nargs="?", default="../shared/datasets/ops", type=Path)
    ap.add_argument("--scorer", default="../shared/tools/ops_score.py", type=Path)
    args = ap.parse_args(argv)
    if not (args.ops / "data").is_dir() or not (args.ops / "labels.json").is_file():
        sys.exit(f"error: {args.ops} has no data/ and labels.json (pass the ops folder)")
    if not args.scorer.is_file():
        sys.exit(f"error: scorer {args.scorer} not found (pass --scorer)")
    defaults = DetectorSettings()
    segs = segments_of(args.ops, defaults.refractory_points)
    methods: dict[str, Callable[[FloatArray, FloatArray], FloatArray]] = {
        "ours": detector_scorer(),
        "ours echo off": detector_scorer(dataclasses.replace(defaults, echo_days=0)),
        "z-score": SCORERS["zscore"],
        "robust z": SCORERS["robust"],
    }
    sources = sorted({s.rel.split("/")[0] for s in segs})
    hits: dict[str, npt.NDArray[np.bool_]] = {}
    with tempfile.TemporaryDirectory(prefix="ops-split-") as tmp:
        for name, scorer in methods.items():
            out = Path(tmp) / name.replace(" ", "_")
            write_folder(args.ops / "data", out, scorer)
            summary = ops_score(args.scorer, args.ops, out, 0.5)
            limit = {
                src: summary["sources"][src]["at_0.3"]["threshold"] for src in sources
            }  # None: no threshold stays within the budget
            top = tops(out, segs)
            hits[name] = np.array(
                [
                    lim is not None and tp >= float(lim)
                    for tp, lim in zip(top, (limit[s.rel.split("/")[0]] for s in segs), strict=True)
                ]
            )
    print(f"ops development set: {args.ops}; segments detected at each method's own threshold")
    print("for 0.3 false-alarm episodes per series-day (ops_score.py), per source and class")
    for source in sources:
        mine = np.array([s.rel.startswith(source + "/") for s in segs])
        kinds = np.array([s.kind for s in segs])
        sizes = {c: int((mine & (kinds == c)).sum()) for c in CLASSES}
        print(f"\n{source}: {int(mine.sum())} segments")
        head = "".join(f" {c + ' (' + str(sizes[c]) + ')':>14}" for c in CLASSES)
        print(f"{'method':<14} {'all':>10}{head}")
        for name, hit in hits.items():
            cells = "".join(f" {int((hit & mine & (kinds == c)).sum()):>14}" for c in CLASSES)
            found = int((hit & mine).sum())
            print(f"{name:<14} {found:>4} {found / max(int(mine.sum()), 1):.3f}{cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
