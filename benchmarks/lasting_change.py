"""Pages after a lasting latency change: the first one is right, any later one is a false page.

A route's latency is multiplied by ``--factor`` for good (a deploy that slows it, a slower
dependency) after ``--days-before`` days; the latency count test
(:class:`analyzers.count_tests.ExceedanceDetector`, default settings) scores 1-min buckets of
Poisson requests with log-normal latencies (spread 0.5) for ``--days-after`` days more. The
change should page within its first hour and then be learnt: every alarm (score at
``Sensitivity.MEDIUM`` or above) later than ``--grace-min`` minutes after the change is
counted as a late page. Printed per request rate: streams with a late page, late pages, and
the hours after the change at which they came.

Usage (from the project root)::

    python benchmarks/lasting_change.py                 # seeds 1-8 and 24, 6 and 30 requests/min
    python benchmarks/lasting_change.py --factor 3 --rates 6,30,120
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from analyzers import Sensitivity  # noqa: E402
from analyzers.count_tests import ExceedanceDetector, SortedBucket  # noqa: E402

STEP_S = 60.0
DAY_S = 86400.0


def late_pages(
    seed: int, per_min: float, factor: float, days_before: float, days_after: float, grace_s: float
) -> list[float]:
    """Hours after the change of every alarm later than ``grace_s`` after it, for one stream."""
    rng = np.random.default_rng(seed)
    start = int(days_before * DAY_S / STEP_S)
    end = int((days_before + days_after) * DAY_S / STEP_S)
    det = ExceedanceDetector()
    medium = Sensitivity.MEDIUM.value
    out = []
    for i in range(end):
        n = int(rng.poisson(per_min))
        f = factor if i >= start else 1.0
        latencies = f * 50.0 * np.exp(0.5 * rng.standard_normal(n))
        score = det.update(i * STEP_S, SortedBucket(latencies.tolist()), STEP_S)
        after_s = (i - start) * STEP_S
        if score >= medium and after_s > grace_s:
            out.append(after_s / 3600.0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="1,2,3,4,5,6,7,8,24", help="comma-separated")
    ap.add_argument("--rates", default="6,30", help="requests per minute, comma-separated")
    ap.add_argument("--factor", type=float, default=2.0, help="latency multiplied by this")
    ap.add_argument("--days-before", type=float, default=6.0)
    ap.add_argument("--days-after", type=float, default=2.5)
    ap.add_argument("--grace-min", type=float, default=60.0, help="the change's own page")
    args = ap.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
        rates = [float(r) for r in args.rates.split(",")]
    except ValueError:
        sys.exit("error: --seeds and --rates are comma-separated numbers")
    if args.factor <= 0 or args.days_before < 5 or args.days_after <= 0:
        sys.exit("error: --factor > 0, --days-before >= 5 (the hours learnt), --days-after > 0")
    print(
        f"latency x{args.factor:g} for good after {args.days_before:g} days, "
        f"{args.days_after:g} days after it; late = an alarm after {args.grace_min:g} min"
    )
    for rate in rates:
        hours = [
            late_pages(s, rate, args.factor, args.days_before, args.days_after, args.grace_min * 60)
            for s in seeds
        ]
        found = [h for h in hours if h]
        when = ", ".join(f"{x:.1f}" for h in found for x in h)
        print(
            f"  {rate:g} requests/min: {len(found)} of {len(seeds)} streams paged late, "
            f"{sum(len(h) for h in hours)} late pages" + (f" (hours after: {when})" if when else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
