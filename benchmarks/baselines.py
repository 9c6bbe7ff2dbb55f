"""Simple anomaly-score baselines, and a writer of CLI-format result folders for any scorer.

Two baselines the project detector must beat (issue 11), both causal (a point's score uses only
the points before it and the point itself):

* ``zscore`` - the seed's rule: ``|z|`` of the value against the mean and standard deviation of
  *all* earlier points of the series; its usual alarm rule is ``|z| >= 2``.
* ``robust`` - a rolling median/MAD z-score: ``|x - median| / (1.4826 MAD)`` over the earlier
  points of the last ``--window-s`` seconds (1 day); usual rule ``>= 3``. The median and MAD
  are recomputed every ``max(1, w // 100)`` points (``w`` the window in points; exact for hourly
  data, every 14 points for 1-min data), always from earlier points only.

Each writes ``anomaly_score = |z| / (|z| + rule)``, a monotone map into [0, 1) where the usual
rule is exactly ``score >= 0.5``: ``ops_score.py`` sweeps thresholds over the scores (the
threshold-free recall figures), and ``--threshold 0.5`` gives the usual rule.

Usage (from the project root, the shared data beside it; the data is public, see its README)::

    python benchmarks/baselines.py zscore ../shared/datasets/ops/data -o /tmp/zs
    python benchmarks/baselines.py robust ../shared/datasets/ops/data -o /tmp/rz
    python benchmarks/baselines.py detector ../shared/datasets/ops/data -o /tmp/ours

Output folders mirror ``otel-monitoring analyze anomalies DIR -o OUT``: every input CSV at the
same relative path, its rows plus an ``anomaly_score`` column.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from otel_monitoring.cli.analyze import read_series  # noqa: E402

FloatArray = npt.NDArray[np.float64]
Scorer = Callable[[FloatArray, FloatArray], FloatArray]

ZSCORE_RULE = 2.0
ROBUST_RULE = 3.0
MAD_TO_SIGMA = 1.4826


def _to_score(z: FloatArray, rule: float) -> FloatArray:
    z = np.nan_to_num(np.abs(z), nan=0.0, posinf=1e12)
    out: FloatArray = z / (z + rule)
    return out


def zscore_z(values: FloatArray) -> FloatArray:
    """``|x_i - mean(x_<i)| / std(x_<i)`` (0 for the first two points or a zero std)."""
    x = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(x)
    xs = np.where(ok, x - (x[ok][0] if ok.any() else 0.0), 0.0)  # shift: no cancellation
    n = np.cumsum(ok) - ok  # earlier finite points
    s1 = np.cumsum(xs) - xs
    s2 = np.cumsum(xs * xs) - xs * xs
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / n
        var = np.maximum(s2 / n - mean * mean, 0.0)
        z = np.abs(xs - mean) / np.sqrt(var)
    z[(n < 2) | ~ok | ~np.isfinite(z)] = 0.0
    out: FloatArray = z
    return out


def zscore_scores(timestamps_s: FloatArray, values: FloatArray) -> FloatArray:
    """The seed's rule as a score: ``|z| / (|z| + 2)``."""
    return _to_score(zscore_z(values), ZSCORE_RULE)


def robust_z(timestamps_s: FloatArray, values: FloatArray, window_s: float = 86400.0) -> FloatArray:
    """Rolling median/MAD z of each point against the earlier points of the last ``window_s``.

    The window is ``w = window_s / median step`` points; median and MAD are refreshed every
    ``max(1, w // 100)`` points from the ``w`` points before the refresh point.
    """
    t = np.asarray(timestamps_s, dtype=np.float64)
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    z = np.zeros(n)
    if n < 3:
        return z
    step = float(np.median(np.diff(t))) or 1.0
    w = max(3, round(window_s / step))
    every = max(1, w // 100)
    starts = np.arange(3, n, every)  # refresh points; window = x[max(0, s - w):s]
    med = np.empty(len(starts))
    mad = np.empty(len(starts))
    chunk = max(1, 2_000_000 // w)
    pad = np.concatenate([np.full(w, np.nan), x])  # x[j] is pad[j + w]
    view = np.lib.stride_tricks.sliding_window_view(pad, w)  # view[s] = x[s - w:s]
    for i in range(0, len(starts), chunk):
        win = view[starts[i : i + chunk]]
        m = np.nanmedian(win, axis=1)
        dev = np.abs(win - m[:, None])
        med[i : i + chunk] = m
        mad[i : i + chunk] = np.nanmedian(dev, axis=1)
        # a MAD of 0 (a mostly constant window): fall back to the mean absolute deviation
        zero = mad[i : i + chunk] == 0.0
        if zero.any():
            mad[i : i + chunk][zero] = np.nanmean(dev[zero], axis=1) * 1.2533 / MAD_TO_SIGMA
    idx = np.searchsorted(starts, np.arange(n), side="right") - 1
    has = idx >= 0
    mi, si = med[idx[has]], MAD_TO_SIGMA * mad[idx[has]]
    with np.errstate(invalid="ignore", divide="ignore"):
        zz = np.abs(x[has] - mi) / np.maximum(si, 1e-12)
    zz[~np.isfinite(zz)] = 0.0
    z[has] = zz
    return z


def robust_scores(timestamps_s: FloatArray, values: FloatArray) -> FloatArray:
    """The rolling robust z as a score: ``|z| / (|z| + 3)``."""
    return _to_score(robust_z(timestamps_s, values), ROBUST_RULE)


def detector_scorer(settings: object | None = None) -> Scorer:
    """The project detector (``analyzers.score_series``) with ``settings`` (None: defaults)."""
    from analyzers import DetectorSettings, score_series

    st = settings if isinstance(settings, DetectorSettings) else None

    def run(timestamps_s: FloatArray, values: FloatArray) -> FloatArray:
        return score_series(timestamps_s, values, st)

    return run


def with_zscore(z_medium: float, window: int = 0, settings: object | None = None) -> Scorer:
    """The detector combined with the seed's rule (issue 11's "several detectors with a
    calibrated combination"): per point the larger of the detector's score and
    ``|z| / (|z| + c)``, with ``c`` such that ``|z| = z_medium`` scores ``Sensitivity.MEDIUM``.
    With ``window`` > 0 the z part scores only a point whose ``|z|`` exceeds that of each of
    the ``window`` points before it (the rise into an excursion, not its whole length)."""
    from scipy.ndimage import maximum_filter1d

    from analyzers import Sensitivity

    medium = float(Sensitivity.MEDIUM.value)
    half = z_medium * (1.0 - medium) / medium
    detector = detector_scorer(settings)

    def run(timestamps_s: FloatArray, values: FloatArray) -> FloatArray:
        z = zscore_z(values)
        if window > 0:
            before = np.concatenate([[0.0], z[:-1]])  # before[i] = z[i - 1]
            # the largest |z| of the window points before each point (a trailing maximum)
            recent = maximum_filter1d(before, window, mode="constant", origin=(window - 1) // 2)
            z = np.where(z > recent, z, 0.0)
        out: FloatArray = np.maximum(detector(timestamps_s, values), _to_score(z, half))
        return out

    return run


SCORERS: dict[str, Scorer] = {"zscore": zscore_scores, "robust": robust_scores}


def data_files(data: Path) -> list[Path]:
    """The ``<source>/<name>.csv`` files under ``data``, sorted (relative paths)."""
    return sorted(p.relative_to(data) for p in data.rglob("*.csv"))


def write_folder(data: Path, out: Path, scorer: Scorer, files: list[Path] | None = None) -> int:
    """Score every CSV under ``data`` (or the listed ones) into ``out``; returns rows written."""
    rows = 0
    for rel in files if files is not None else data_files(data):
        table = read_series(data / rel)
        scores = scorer(np.asarray(table.timestamps_s), np.asarray(table.values))
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow([*table.header, "anomaly_score"])
            w.writerows([*r, f"{s:.6g}"] for r, s in zip(table.rows, scores.tolist(), strict=True))
        rows += len(scores)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("method", choices=[*SCORERS, "detector"])
    ap.add_argument("data", type=Path, help="folder of <source>/<name>.csv files")
    ap.add_argument("-o", "--out", type=Path, required=True, help="results folder")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        sys.exit(f"error: {args.data} is not a folder")
    scorer = detector_scorer() if args.method == "detector" else SCORERS[args.method]
    rows = write_folder(args.data, args.out, scorer)
    print(f"{args.method}: {rows} rows scored -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
