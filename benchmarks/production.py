"""Production-latency suite: false pages and incident detection on realistic service charts.

Synthetic but shaped like a real service (seeded, so every run prints the same figures). Each
route gets three charts, at two resolutions (10-s and 1-min buckets), over ``--days`` (21):

* **p95 latency** (ms): per bucket, the 95th percentile (linear interpolation, numpy's
  default) of that bucket's requests, each request's latency log-normal (sigma 0.5) around a
  route median; NaN for a bucket with no request;
* **request rate** (requests/s): the bucket's Poisson request count / bucket length;
* **error ratio**: the bucket's errors / requests (binomial, 1 % of requests; NaN if none).

The 10-s and 1-min charts come from the same requests. What shapes them:

* **routes**: ``--busy`` routes at 200-600 requests a minute at the daily peak (hundreds a
  minute), ``--quiet`` routes at 3-6 a minute at the peak (a 10-s bucket holds 0-1 requests);
  route medians 20-200 ms;
* **daily cycle**: traffic from 25 % of the peak at 04:00 UTC to 100 % at 16:00, latency
  median x (0.85 + 0.3 x traffic share), so latency follows load;
* **weekly cycle**: on Saturdays and Sundays traffic is 40 % of a weekday's (so latency lower);
* **nightly batch job**: every night 02:00-02:20 UTC every route's latency x1.6;
* **deploy**: once per route, at a random time of days 8-19, latency x1.1 for good;
* **traffic step**: once per route, days 8-19, traffic x1.5 or x0.67 for good;
* **incidents** (last 7 days only, 2 of each kind per route, at random times at least 3 h from
  each other, the batch window, the deploy and the traffic step): latency x2 for 10 min,
  x5 for 3 min, a ramp to +100 % over 2 h, traffic down to 20 % for 15 min, the error ratio
  from 1 % to 10 % for 15 min. Each is judged on its own chart (latency kinds on p95);
* **requests that move together** (off by default: requests are independent and traffic
  Poisson, as in the issue's suite): ``--jitter S`` gives all requests of a 10-s bucket one
  shared log-normal latency factor of spread S, ``--burst C`` multiplies each 10-s bucket's
  expected traffic by a gamma factor of mean 1 and coefficient of variation C (:class:`Noise`);
* **a clock that changes** (off by default: the service's day follows UTC): ``--timezone Z``
  puts the service in the IANA zone Z, whose clock its daily and weekly cycles and nightly job
  follow, and starts the suite 13 days before that clock's first change after 2026-03-01
  (:func:`start_in_zone`); ``--count-settings timezone=Z`` tells the count tests the zone.

Figures, for the project detector at ``Sensitivity.MEDIUM`` as the live charts run it (each
chart scored by its count test on the bucket's requests once the test has learnt the route -
``analyzers.ExceedanceDetector`` on p95 charts, ``ErrorCountDetector`` on error ratios,
``RateCountDetector`` on request rates - and by the point detector on its values before;
``--no-counts`` runs the point detector alone on every chart, and ``--method`` the baselines
of ``benchmarks/baselines.py`` at their usual rules):

* **false-alarm episodes per chart-day** over days 8-21 (the first week is learning; its
  figure is printed apart): alarms outside ``[start, end + 30 min]`` of every incident of the
  chart; an alarm within 10 min of the previous joins its episode, and an episode spans at
  most 30 min. Split by resolution, metric, busy/quiet, weekday/weekend, and how many fall in
  the batch window or within 2 h after a deploy or traffic step;
* **detection rate and median delay** per incident kind, busy vs quiet, weekday vs weekend:
  detected = an alarm on a bucket that overlaps ``[start, end + 5 min]``; delay = the end of
  the first such bucket (when its point is complete) - start;
* **a bound** for the quiet routes' x5 and x2 incidents: how many a CUSUM finds that knows
  each route's usual median at every moment, the spread and the incident's factor, at the
  same false-alarm budget per route-day (:func:`oracle_hits`). What it misses holds too
  little evidence for a detector at that budget.

One seed holds 2 incidents of each kind per route: a quiet route's x5 figure at one seed rests on
12 incidents (6 routes at 2 resolutions), so one incident moves it 8 points. ``--seeds`` pools
several seeds' routes into one report (each seed draws its own routes), the figure to judge a
change by.

Usage::

    python benchmarks/production.py [--busy 6] [--quiet 6] [--days 21] [--seed 11 | --seeds 14-23]
        [--method ours|zscore|robust] [--settings 'rate_ref_s=300,...']
        [--no-counts] [--count-settings 'day_weight=0.7,...'] [--rate-settings 'factors=0.1;5']
        [--jitter 0.1] [--burst 0.2] [--timezone Europe/Paris] [--sweep 0.34,0.3]
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from analyzers.count_tests import (  # noqa: E402
    ErrorCountDetector,
    ErrorCountSettings,
    ExceedanceDetector,
    ExceedanceSettings,
    RateCountDetector,
    RateSettings,
    SortedBucket,
)
from analyzers.errors import InvalidInputError  # noqa: E402
from analyzers.local_clock import LocalClock  # noqa: E402
from benchmarks.crossval import with_overrides  # noqa: E402

FloatArray = npt.NDArray[np.float64]

DAY = 86400.0
T0 = 1767571200.0  # 2026-01-05T00:00:00Z, a Monday
STEPS = (10.0, 60.0)
METRICS = ("p95", "rate", "errors")
KINDS = ("lat_x2_10m", "lat_x5_3m", "lat_ramp_2h", "traffic_20pct", "errors_10x")
KIND_METRIC = {
    "lat_x2_10m": "p95",
    "lat_x5_3m": "p95",
    "lat_ramp_2h": "p95",
    "traffic_20pct": "rate",
    "errors_10x": "errors",
}
KIND_LEN = {
    "lat_x2_10m": 600.0,
    "lat_x5_3m": 180.0,
    "lat_ramp_2h": 7200.0,
    "traffic_20pct": 900.0,
    "errors_10x": 900.0,
}
BATCH = (2 * 3600.0, 2 * 3600.0 + 1200.0)  # 02:00-02:20 UTC
DETECT_GRACE = 300.0
RECOVERY = 1800.0
MERGE_GAP = 600.0
MAX_EPISODE = 1800.0
SIGMA = 0.5
KEEP = 400  # highest counted scores kept per chart for the threshold-free figure
BUDGET = 0.1  # false-alarm episodes per chart-day
ERROR_RATE = 0.01


@dataclass
class Route:
    name: str
    busy: bool
    peak_rpm: float
    median_ms: float
    deploy_t: float
    step_t: float
    step_factor: float
    incidents: list[tuple[str, float]] = field(default_factory=list)  # (kind, start s)


#: When the service's local clock changes (``--timezone``: its daylight saving time starts),
#: as a UTC time (inf: never), and by how much (s). Everything that follows local time (the
#: daily and weekly cycles, the nightly job) happens that much earlier in UTC from then on.
CLOCK_CHANGE = (math.inf, 0.0)


def local(t: FloatArray | float) -> npt.NDArray[np.float64]:
    """Times ``t`` (UTC) on the service's local clock, less T0 (seconds)."""
    t = np.asarray(t, dtype=np.float64)
    at, by = CLOCK_CHANGE
    out: npt.NDArray[np.float64] = t - T0 + np.where(t >= at, by, 0.0)
    return out


def start_in_zone(timezone: str) -> tuple[float, tuple[float, float]]:
    """T0 and the clock change for a service in ``timezone`` (an IANA name): the first
    change of its offset after 2026-03-01 (spring), and the Monday 00:00 UTC 13 or more days
    before it, so that the change falls in the second week, before the incidents."""
    clock = LocalClock(timezone)
    t = 1772323200.0  # 2026-03-01T00:00:00Z
    before = clock.phase(t) - t
    for _ in range(366 * 96):
        t += 900.0
        offset = clock.phase(t) - t
        if offset != before:
            monday = 1767571200.0  # 2026-01-05T00:00:00Z, a Monday
            weeks = math.floor((t - 13 * DAY - monday) / (7 * DAY))
            return monday + weeks * 7 * DAY, (t, offset - before)
    sys.exit(f"error: {timezone} does not change its offset in the year from 2026-03-01")


def is_weekend(t: FloatArray | float) -> npt.NDArray[np.bool_] | bool:
    return (local(t) // DAY) % 7 >= 5  # type: ignore[no-any-return]


def make_routes(rng: np.random.Generator, busy: int, quiet: int, days: int) -> list[Route]:
    routes = []
    for i in range(busy + quiet):
        is_busy = i < busy
        r = Route(
            name=f"{'busy' if is_busy else 'quiet'}-{i}",
            busy=is_busy,
            peak_rpm=float(rng.uniform(200, 600) if is_busy else rng.uniform(3, 6)),
            median_ms=float(np.exp(rng.uniform(np.log(20), np.log(200)))),
            deploy_t=T0 + float(rng.uniform(7, days - 2)) * DAY,
            step_t=T0 + float(rng.uniform(7, days - 2)) * DAY,
            step_factor=float(rng.choice([1.5, 1 / 1.5])),
        )
        busy_times = [r.deploy_t, r.step_t]
        for kind in [k for k in KINDS for _ in range(2)]:
            while True:
                start = T0 + float(rng.uniform(days - 7, days)) * DAY - KIND_LEN[kind]
                tod = float(local(start)) % DAY
                end = start + KIND_LEN[kind]
                if end + RECOVERY > T0 + days * DAY:
                    continue
                near_batch = BATCH[0] - 3600 - KIND_LEN[kind] < tod < BATCH[1] + 3600
                if near_batch or any(abs(start - b) < 3 * 3600 for b in busy_times):
                    continue
                busy_times.append(start)
                r.incidents.append((kind, start))
                break
        routes.append(r)
    return routes


def _group_p95(log_lat: FloatArray, groups: npt.NDArray[np.int64], n_groups: int) -> FloatArray:
    """p95 (numpy's linear method) of ``exp(log_lat)`` per group; NaN for an empty group."""
    order = np.lexsort((log_lat, groups))
    s = log_lat[order]
    counts = np.bincount(groups, minlength=n_groups)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.full(n_groups, np.nan)
    has = counts > 0
    h = 0.95 * (counts[has] - 1)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, counts[has] - 1)
    a, b = np.exp(s[first[has] + lo]), np.exp(s[first[has] + hi])
    out[has] = a + (h - lo) * (b - a)
    return out


@dataclass
class Requests:
    """Every request latency of a chart (ms, float32), sorted within each bucket, buckets in
    time order, and the request and error counts of each bucket."""

    latencies: npt.NDArray[np.float32]
    counts: npt.NDArray[np.int64]
    errors: npt.NDArray[np.int64]

    def buckets(self) -> list[SortedBucket]:
        bounds = np.concatenate([[0], np.cumsum(self.counts)])
        pairs = itertools.pairwise(bounds.tolist())
        return [SortedBucket(self.latencies[a:b].tolist()) for a, b in pairs]


def _traffic_share(t: FloatArray) -> FloatArray:
    """A weekday's traffic at times ``t`` as a share of the daily peak (25 % at 04:00 UTC,
    100 % at 16:00)."""
    tod = local(t) % DAY
    share: FloatArray = 0.25 + 0.75 * (0.5 - 0.5 * np.cos(2 * np.pi * (tod / DAY - 4 / 24)))
    return share


def usual_traffic(r: Route, t: FloatArray) -> FloatArray:
    """The route's traffic at times ``t`` as a share of its peak, without its incidents: the
    daily and weekly cycles and the traffic step."""
    traffic = _traffic_share(t) * np.where(is_weekend(t), 0.4, 1.0)
    out: FloatArray = traffic * np.where(t >= r.step_t, r.step_factor, 1.0)
    return out


def usual_median(r: Route, t: FloatArray) -> FloatArray:
    """The route's latency median (ms) at times ``t`` without its incidents: the daily and
    weekly cycles, the nightly batch job and the deploy."""
    tod = local(t) % DAY
    median = r.median_ms * (0.85 + 0.3 * _traffic_share(t) * np.where(is_weekend(t), 0.4, 1.0))
    median = median * np.where((tod >= BATCH[0]) & (tod < BATCH[1]), 1.6, 1.0)
    out: FloatArray = median * np.where(t >= r.deploy_t, 1.1, 1.0)
    return out


@dataclass(frozen=True)
class Noise:
    """What makes a real service's requests less independent than the suite's defaults
    (all 0: independent requests, Poisson traffic). Drawn from their own generator, so the
    default charts are the same with or without.

    ``jitter``: every request of a 10-s bucket shares a log-normal latency factor of this
    spread (a moment of contention, a GC pause, a slow cache); ``burst``: a 10-s bucket's
    expected traffic is multiplied by a gamma factor of mean 1 and this coefficient of
    variation (clients that batch, retries, crawlers).
    """

    jitter: float = 0.0
    burst: float = 0.0
    rng: np.random.Generator | None = None


def charts_for(
    rng: np.random.Generator,
    r: Route,
    days: int,
    requests: dict[float, Requests] | None = None,
    noise: Noise | None = None,
) -> dict[tuple[float, str], tuple[FloatArray, FloatArray]]:
    """The six charts of a route: {(step, metric): (timestamps, values)}; with ``requests``,
    also each resolution's request latencies (into ``requests[step]``)."""
    with_requests = requests is not None
    requests = {} if requests is None else requests
    n10 = int(days * DAY / 10)
    t = T0 + np.arange(n10) * 10.0
    traffic = usual_traffic(r, t)
    median = usual_median(r, t)
    err = np.full(n10, ERROR_RATE)
    for kind, start in r.incidents:
        inside = (t >= start) & (t < start + KIND_LEN[kind])
        if kind == "lat_x2_10m":
            median[inside] *= 2.0
        elif kind == "lat_x5_3m":
            median[inside] *= 5.0
        elif kind == "lat_ramp_2h":
            median[inside] *= 1.0 + (t[inside] - start) / KIND_LEN[kind]
        elif kind == "traffic_20pct":
            traffic[inside] *= 0.2
        else:
            err[inside] *= 10.0
    if noise is not None and noise.rng is not None and noise.burst > 0:
        shape = 1.0 / noise.burst**2
        traffic = traffic * noise.rng.gamma(shape, 1.0 / shape, n10)
    counts = rng.poisson(r.peak_rpm / 6.0 * traffic)
    errors = rng.binomial(counts, err)
    log_med = np.log(median)
    if noise is not None and noise.rng is not None and noise.jitter > 0:
        log_med = log_med + noise.jitter * noise.rng.standard_normal(n10)
    p95_10 = np.full(n10, np.nan)
    p95_60 = np.full(n10 // 6, np.nan)
    per_day = int(DAY / 10)
    sorted_10: list[FloatArray] = []
    sorted_60: list[FloatArray] = []
    for d in range(days):  # a day at a time: bounded memory on busy routes
        sl = slice(d * per_day, (d + 1) * per_day)
        c = counts[sl]
        g10 = np.repeat(np.arange(per_day, dtype=np.int64), c)
        lat = log_med[sl][g10] + SIGMA * rng.standard_normal(len(g10))
        p95_10[sl] = _group_p95(lat, g10, per_day)
        p95_60[d * per_day // 6 : (d + 1) * per_day // 6] = _group_p95(lat, g10 // 6, per_day // 6)
        if with_requests:  # each bucket's latencies, sorted (buckets in time order)
            sorted_10.append(np.exp(lat[np.lexsort((lat, g10))]).astype(np.float32))
            sorted_60.append(np.exp(lat[np.lexsort((lat, g10 // 6))]).astype(np.float32))
    c60 = counts.reshape(-1, 6).sum(axis=1)
    e60 = errors.reshape(-1, 6).sum(axis=1)
    t60 = t[::6]
    if with_requests:
        requests[10.0] = Requests(np.concatenate(sorted_10), counts, errors)
        requests[60.0] = Requests(np.concatenate(sorted_60), c60, e60)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            (10.0, "p95"): (t, p95_10),
            (10.0, "rate"): (t, counts / 10.0),
            (10.0, "errors"): (t, np.where(counts > 0, errors / counts, np.nan)),
            (60.0, "p95"): (t60, p95_60),
            (60.0, "rate"): (t60, c60 / 60.0),
            (60.0, "errors"): (t60, np.where(c60 > 0, e60 / c60, np.nan)),
        }


def method(
    name: str, settings: str = ""
) -> tuple[Callable[[FloatArray, FloatArray], FloatArray], float]:
    """Score function and alarm threshold of a method (``settings``: ``field=value,...``
    overrides of the detector's ``DetectorSettings``)."""
    if name == "ours":
        from analyzers import Sensitivity, score_series
        from benchmarks.crossval import parse_grid

        st = parse_grid([f"x:{settings}"])["x"] if settings else None
        return (lambda ts, vs: score_series(ts, vs, st)), float(Sensitivity.MEDIUM.value)
    from benchmarks.baselines import SCORERS

    return SCORERS[name], 0.5


def live_scores(
    metric: str,
    ts: FloatArray,
    req: Requests,
    step: float,
    args: argparse.Namespace,
    point: FloatArray,
) -> FloatArray:
    """A chart's scores as the live charts give them: its count test's (requests above the
    usual p95, failures, requests: :mod:`analyzers.count_tests`), on a p95 chart the point
    detector's (``point``) until the test has learnt the route. ``--count-settings``
    overrides the three tests' fields (each the ones it has), ``--rate-settings`` the rate
    test's alone."""
    common = args.count_settings
    test: ExceedanceDetector | ErrorCountDetector | RateCountDetector
    if metric == "p95":
        test = ExceedanceDetector(with_overrides(ExceedanceSettings(), common))
        buckets: Iterable[tuple[Any, ...]] = zip(req.buckets(), strict=True)
    elif metric == "errors":
        test = ErrorCountDetector(with_overrides(ErrorCountSettings(), common, ignore_unknown=True))
        buckets = zip(req.counts.tolist(), req.errors.tolist(), strict=True)
    else:
        overrides = f"{common},{args.rate_settings}"
        test = RateCountDetector(with_overrides(RateSettings(), overrides, ignore_unknown=True))
        buckets = zip(req.counts.tolist(), strict=True)
    update: Callable[..., float] = test.update
    out = np.empty(len(ts))
    for i, (t, bucket, p) in enumerate(zip(ts.tolist(), buckets, point.tolist(), strict=True)):
        counted = update(t, *bucket, step)
        out[i] = counted if test.ready or metric != "p95" else p
    return out


def episodes(times: FloatArray) -> FloatArray:
    """Start times of false-alarm episodes (merge within 10 min, at most 30 min each)."""
    starts: list[float] = []
    last = start = -np.inf
    for a in times.tolist():
        if a - last > MERGE_GAP or a - start >= MAX_EPISODE:
            starts.append(a)
            start = a
        last = a
    return np.asarray(starts)


# the incident kinds the bound covers, and the factor each multiplies its statistic by
ORACLE_FACTORS = {"lat_x5_3m": 5.0, "lat_x2_10m": 2.0, "traffic_20pct": 0.2, "errors_10x": 10.0}
ORACLE_KINDS = tuple(ORACLE_FACTORS)


def _oracle_cusum(
    steps: FloatArray,
    known: FloatArray,
    counted: npt.NDArray[np.bool_],
    restart: set[int],
    budget: float,
    incidents: list[float],
    length: float,
) -> list[bool]:
    """A CUSUM of ``steps`` (log-likelihood ratios, in the order they are ``known``), from 0
    again at each index of ``restart``; its threshold the lowest that keeps the ``counted``
    alarms within ``budget`` episodes; whether it reaches that threshold within each
    incident (start times, ``length`` s) or the grace after it."""
    cusum = np.empty(len(steps))
    level = 0.0
    for i, step in enumerate(steps.tolist()):
        level = max(0.0, (0.0 if i in restart else level) + step)
        cusum[i] = level
    lo, hi = 0.0, float(cusum.max(initial=0.0)) + 1.0  # bisection for the lowest threshold
    for _ in range(40):
        mid = (lo + hi) / 2
        if len(episodes(known[counted & (cusum >= mid)])) <= budget:
            hi = mid
        else:
            lo = mid
    return [
        bool((cusum[(known > start) & (known <= start + length + DETECT_GRACE)] >= hi).any())
        for start in incidents
    ]


def oracle_hits(r: Route, req10: Requests, days: int) -> list[tuple[str, bool, bool]]:
    """An upper bound for a quiet route's incidents but the ramps: ``(kind, weekend,
    detected)`` for each, where detected means a CUSUM that knows what no detector knows
    pages on it - the route's usual median and traffic at every moment (:func:`usual_median`,
    :func:`usual_traffic`), the spread (``SIGMA``), the usual error share, the incident's exact
    factor - with its threshold the lowest that keeps it within ``BUDGET`` false-alarm
    episodes per day on this route (alarms outside the route's incidents of that metric,
    days 8 on, the same episode rule as the charts). It sums, request by request (traffic:
    bucket by bucket), the log-likelihood ratio of the incident against the usual (the most
    powerful test of the two, Neyman-Pearson; CUSUM is the optimal detector of a known
    change, Lorden and Moustakides), with a threshold tuned per route and kind, which is
    generous: an incident it misses holds too little evidence for a detector at that
    false-alarm budget. It also knows when each incident of the metric starts and its
    recovery ends, and starts again from 0 there (a 2-h ramp's evidence would take hours to
    drain)."""
    t10 = T0 + np.arange(len(req10.counts)) * 10.0
    per_request = np.repeat(np.arange(len(req10.counts)), req10.counts)
    # each request's latency against the usual, in spreads (for both latency kinds)
    usual = np.log(usual_median(r, t10[per_request]))
    z = (np.log(req10.latencies.astype(np.float64)) - usual) / SIGMA
    out = []
    for kind in ORACLE_KINDS:
        metric = KIND_METRIC[kind]
        mine = [(k, start) for k, start in r.incidents if KIND_METRIC[k] == metric]
        if metric == "p95":  # request by request: "every latency x factor"
            d = math.log(ORACLE_FACTORS[kind]) / SIGMA
            known = t10[per_request] + 10.0  # a request is known at its bucket's end
            steps: FloatArray = d * z - d * d / 2
        elif metric == "errors":  # bucket by bucket: failures binomial, the share x factor
            known = t10 + 10.0
            p0, p1 = ERROR_RATE, ORACLE_FACTORS[kind] * ERROR_RATE
            k, n = req10.errors, req10.counts
            steps = k * math.log(p1 / p0) + (n - k) * math.log((1 - p1) / (1 - p0))
        else:  # bucket by bucket: requests Poisson, the rate x factor
            known = t10 + 10.0
            f = ORACLE_FACTORS[kind]
            expected = r.peak_rpm / 6.0 * usual_traffic(r, t10)
            steps = req10.counts * math.log(f) + expected * (1 - f)
        counted = known >= T0 + 7 * DAY
        for k, start in mine:
            counted &= ~((known > start) & (known <= start + KIND_LEN[k] + RECOVERY))
        budget = BUDGET * (days - 7 - sum(KIND_LEN[k] + RECOVERY for k, _ in mine) / DAY)
        edges = [x for k, start in mine for x in (start, start + KIND_LEN[k] + RECOVERY)]
        restart = set(np.searchsorted(known, edges, side="right").tolist())
        starts = [start for k, start in r.incidents if k == kind]
        hits = _oracle_cusum(steps, known, counted, restart, budget, starts, KIND_LEN[kind])
        out += [(kind, bool(is_weekend(s)), hit) for s, hit in zip(starts, hits, strict=True)]
    return out


@dataclass
class Tally:
    fa: dict[tuple[str, ...], float] = field(default_factory=dict)
    days: dict[tuple[str, ...], float] = field(default_factory=dict)
    hits: list[tuple[str, bool, bool, float, bool, float]] = field(default_factory=list)
    # (kind, busy, weekend, step, detected, delay s)
    tops: list[tuple[str, bool, float, bool, float]] = field(default_factory=list)
    # per incident and resolution: (kind, busy, step, weekend, top score)
    charts: list[tuple[FloatArray, FloatArray, bool]] = field(default_factory=list)
    # per chart: times and scores of its KEEP highest counted points, and whether they
    # were cut (more points above them exist); counted days in total
    counted_days: float = 0.0
    oracle: list[tuple[str, bool, bool]] = field(default_factory=list)
    # (kind, weekend, detected) per quiet incident, by the bound

    def merge(self, other: Tally) -> None:
        """Add another run's counts (another seed's routes) to these."""
        for k, n in other.fa.items():
            self.add_fa([k], n, other.days[k])
        self.hits += other.hits
        self.tops += other.tops
        self.charts += other.charts
        self.counted_days += other.counted_days
        self.oracle += other.oracle

    def add_fa(self, keys: list[tuple[str, ...]], n: float, days: float) -> None:
        for k in keys:
            self.fa[k] = self.fa.get(k, 0.0) + n
            self.days[k] = self.days.get(k, 0.0) + days


def evaluate(args: argparse.Namespace, seed: int) -> Tally:
    rng = np.random.default_rng(seed)
    routes = make_routes(rng, args.busy, args.quiet, args.days)
    score, thr = method(args.method, args.settings)
    tally = Tally()
    learn_end = T0 + 7 * DAY
    noise = Noise(args.jitter, args.burst, np.random.default_rng((seed, 1)))
    for r in routes:
        with_counts = args.counts and args.method == "ours"
        requests: dict[float, Requests] | None = {} if with_counts else None
        charts = charts_for(rng, r, args.days, requests, noise)
        if requests and not r.busy:
            tally.oracle += oracle_hits(r, requests[10.0], args.days)
        for (step, metric), (ts, vs) in charts.items():
            sc = score(ts, vs)
            if requests:
                sc = live_scores(metric, ts, requests[step], step, args, sc)
            alarms = ts[sc >= thr]
            mine = [(k, s) for k, s in r.incidents if KIND_METRIC[k] == metric]
            counted = ts >= learn_end
            for kind, start in mine:
                end = start + KIND_LEN[kind]
                counted &= ~((ts > start - step) & (ts <= end + RECOVERY))
                near = (ts > start - step) & (ts <= end + DETECT_GRACE)
                peak = float(np.nanmax(sc[near], initial=0.0))
                tally.tops.append((kind, r.busy, step, bool(is_weekend(start)), peak))
            cs, ct = sc[counted], ts[counted]
            top = np.argsort(-cs, kind="stable")[:KEEP]
            order = np.sort(top)
            tally.charts.append((ct[order], cs[order], len(cs) > KEEP))
            free = np.ones(len(alarms), dtype=bool)
            for kind, start in mine:
                end = start + KIND_LEN[kind]
                # a point stamped ts covers [ts, ts + step): it overlaps the incident when
                # ts > start - step, and is known at ts + step (the delay counts from there)
                free &= ~((alarms > start - step) & (alarms <= end + RECOVERY))
                hit = alarms[(alarms > start - step) & (alarms <= end + DETECT_GRACE)] + step
                tally.hits.append(
                    (
                        kind,
                        r.busy,
                        bool(is_weekend(start)),
                        step,
                        len(hit) > 0,
                        float(hit[0] - start) if len(hit) else np.nan,
                    )
                )
            eps = episodes(alarms[free])
            cls = "busy" if r.busy else "quiet"
            res = f"{step:g}s"
            # chart-days outside incident windows, week 1 apart
            excl = sum(KIND_LEN[k] + RECOVERY for k, _ in mine) / DAY
            counted_days = args.days - 7 - excl
            tally.counted_days += counted_days
            late = eps[eps >= learn_end]
            wkend = is_weekend(late)
            n_wkend_days = sum(1 for d in range(7, args.days) if d % 7 >= 5)
            tally.add_fa(
                [("all",), ("res", res), ("metric", metric), ("class", cls), (res, metric, cls)],
                len(late),
                counted_days,
            )
            first = eps[eps < learn_end]
            tally.add_fa([("week1",), ("week1", metric)], float(len(first)), 7.0)
            tally.add_fa([("week1", "days 1-2")], float(np.sum(first < T0 + 2 * DAY)), 2.0)
            tally.add_fa([("week1", "batch window")], float(_in_batch(first).sum()), 7.0)
            tally.add_fa([("day", "weekend")], float(np.sum(wkend)), n_wkend_days)
            tally.add_fa([("day", "weekday")], float(np.sum(~wkend)), counted_days - n_wkend_days)
            after = ((late >= r.deploy_t) & (late < r.deploy_t + 7200)) | (
                (late >= r.step_t) & (late < r.step_t + 7200)
            )
            tally.add_fa([("cause", "batch window")], float(_in_batch(late).sum()), counted_days)
            tally.add_fa([("cause", "2 h after deploy/step")], float(after.sum()), counted_days)
            if math.isfinite(CLOCK_CHANGE[0]):
                dst = (late >= CLOCK_CHANGE[0]) & (late < CLOCK_CHANGE[0] + 3 * DAY)
                tally.add_fa(
                    [("cause", "3 days after the clock change")], float(dst.sum()), counted_days
                )
        print(f"  {r.name}: done", file=sys.stderr, flush=True)
    return tally


def _in_batch(times: FloatArray) -> npt.NDArray[np.bool_]:
    """Whether each time falls in the nightly batch window or its recovery."""
    tod = local(times) % DAY
    out: npt.NDArray[np.bool_] = (tod >= BATCH[0]) & (tod < BATCH[1] + RECOVERY)
    return out


def _frac(rows: list[tuple[str, bool, float, bool, float]], thr: float) -> float:
    return sum(row[-1] >= thr for row in rows) / max(len(rows), 1)


def _alarms(t: Tally, thr: float) -> tuple[int, bool]:
    """False-alarm episodes over all charts at ``thr``, and whether that is a lower bound (a
    chart's kept points all reach ``thr``: more lie below them)."""
    total, cut = 0, False
    for times, scores, kept_cut in t.charts:
        above = scores >= thr
        cut |= kept_cut and bool(above.all())
        total += len(episodes(times[above]))
    return total, cut


def at_budget(t: Tally) -> tuple[float, float, float, float]:
    """Threshold-free figure: the lowest incident top score whose false-alarm episodes stay
    <= BUDGET per chart-day over all charts; returns (threshold, all, busy, quiet) detected
    fractions (threshold inf and 0s when none qualifies)."""
    for thr in sorted({row[-1] for row in t.tops if row[-1] > 0.0}):
        total, cut = _alarms(t, thr)
        if not cut and total / t.counted_days <= BUDGET:
            return (
                thr,
                _frac(t.tops, thr),
                _frac([x for x in t.tops if x[1]], thr),
                _frac([x for x in t.tops if not x[1]], thr),
            )
    return math.inf, 0.0, 0.0, 0.0


def sweep(t: Tally, thresholds: list[float]) -> None:
    """Print, at each threshold, the false-alarm episodes per chart-day (days 8-21) and the
    incidents whose top score reaches it, per kind, resolution and route class, then
    weekday and weekend (quiet routes): the operating points a sensitivity could choose."""
    print("threshold sweep: FA/chart-day; detected/incidents per kind and resolution")
    for thr in thresholds:
        alarms, cut = _alarms(t, thr)
        cells = [f"{thr:.4f}: FA {alarms / max(t.counted_days, 1e-9):.3f}{'+' if cut else ''}"]
        for busy in (True, False):
            for kind in KINDS:
                for step in STEPS:
                    found = [
                        top >= thr
                        for k, b, st, _, top in t.tops
                        if k == kind and st == step and b == busy
                    ]
                    if found:
                        cells.append(
                            f"{'busy' if busy else 'quiet'} {kind} {step:g}s"
                            f" {sum(found)}/{len(found)}"
                        )
        for weekend in (False, True):
            found = [top >= thr for _, b, _, w, top in t.tops if w == weekend and not b]
            if found:
                cells.append(
                    f"quiet {'weekend' if weekend else 'weekday'} {sum(found)}/{len(found)}"
                )
        print("  " + "; ".join(cells))


def report(t: Tally, args: argparse.Namespace, n_charts: int, secs: float) -> None:
    def rate(*k: str) -> float:
        return t.fa.get(k, 0.0) / max(t.days.get(k, 0.0), 1e-9)

    counts = args.counts and args.method == "ours"
    seeds = len(args.seeds)
    label = f"seed {args.seeds[0]}" if seeds == 1 else f"seeds {_seed_text(args.seeds)} pooled"
    print(
        f"production suite: {args.busy} busy + {args.quiet} quiet routes x 3 metrics x 2"
        f" resolutions = {n_charts} charts, {args.days} days, {label},"
        f" method {args.method} {args.settings}"
        f"{' + count test ' + args.count_settings if counts else ''} ({secs:.0f} s)"
    )
    print(f"false-alarm episodes per chart-day, days 8-{args.days}: {rate('all'):.3f}")
    print(
        f"  first week (learning, not counted): {rate('week1'):.3f} (days 1-2"
        f" {rate('week1', 'days 1-2'):.3f}; batch window {rate('week1', 'batch window'):.3f}; "
        + ", ".join(f"{m} {rate('week1', m):.3f}" for m in METRICS)
        + ")"
    )
    for group in ("res", "metric", "class", "day", "cause"):
        cells = [f"{k[1]} {rate(*k):.3f}" for k in sorted(t.fa) if k[0] == group]
        print(f"  by {group}: " + ", ".join(cells))
    for res in ("10s", "60s"):
        cells = [f"{m}/{c} {rate(res, m, c):.2f}" for m in METRICS for c in ("busy", "quiet")]
        print(f"  {res}: " + ", ".join(cells))
    per_day = t.fa.get(("all",), 0.0) / max(args.days - 7, 1) / seeds
    print(f"  = {per_day:.1f} false pages a day for the {n_charts} charts (per seed)")
    print("detection at the threshold (detected/incidents, median delay) per kind:")
    print(f"{'kind':<14} {'res':>4} {'busy':>18} {'quiet':>18} {'weekday':>18} {'weekend':>18}")

    def cell(rows: list[tuple[str, bool, bool, float, bool, float]]) -> str:
        if not rows:
            return "-"
        found = [x for x in rows if x[4]]
        delay = np.median([x[5] for x in found]) if found else np.nan
        d = "-" if np.isnan(delay) else f"{delay:.0f}s"
        return f"{len(found)}/{len(rows)} {d}"

    for kind in KINDS:
        for step in STEPS:
            rows = [h for h in t.hits if h[0] == kind and h[3] == step]
            print(
                f"{kind:<14} {step:>3g}s {cell([h for h in rows if h[1]]):>18}"
                f" {cell([h for h in rows if not h[1]]):>18}"
                f" {cell([h for h in rows if not h[2]]):>18}"
                f" {cell([h for h in rows if h[2]]):>18}"
            )
    busy = [h for h in t.hits if h[1]]
    busy_found = [h for h in busy if h[4]]
    quiet = [h for h in t.hits if not h[1]]
    q5 = [h for h in quiet if h[0] == "lat_x5_3m"]
    q2 = [h for h in quiet if h[0] == "lat_x2_10m"]
    busy_delay = np.median([h[5] for h in busy_found]) if busy_found else np.nan

    def pct(rows: list[tuple[str, bool, bool, float, bool, float]]) -> float:
        return 100.0 * sum(h[4] for h in rows) / max(len(rows), 1)

    wd, we = [h for h in t.hits if not h[2]], [h for h in t.hits if h[2]]
    thr, f_all, f_busy, f_quiet = at_budget(t)
    print(
        f"threshold-free: at <= {BUDGET} false-alarm episodes per chart-day (one threshold for"
        f" every chart, {thr:.4g}) incidents detected: all {100 * f_all:.0f} %,"
        f" busy {100 * f_busy:.0f} %, quiet {100 * f_quiet:.0f} %"
    )
    if t.oracle:
        labels = {
            "lat_x5_3m": "x5",
            "lat_x2_10m": "x2",
            "traffic_20pct": "traffic",
            "errors_10x": "errors",
        }
        cells = []
        for kind in ORACLE_KINDS:
            found = [hit for k, _, hit in t.oracle if k == kind]
            split = [[hit for k, w, hit in t.oracle if k == kind and w == we] for we in (0, 1)]
            cells.append(
                f"{labels[kind]} {sum(found)}/{len(found)} ({100 * sum(found) / len(found):.0f} %;"
                f" weekday {sum(split[0])}/{len(split[0])},"
                f" weekend {sum(split[1])}/{len(split[1])})"
            )
        print(
            f"bound: a CUSUM knowing each quiet route's usual latency, traffic and error share"
            f" and the incident's factor, at <= {BUDGET} false-alarm episodes per route-day,"
            f" detects quiet " + ", ".join(cells)
        )

        def share(rows: list[bool]) -> str:
            return f"{100 * sum(rows) / len(rows):.0f} % of {len(rows)}" if rows else "-"

        ours = [h for h in t.hits if not h[1] and h[0] in ORACLE_KINDS]
        print(
            "quiet routes' x5, x2, traffic and error incidents, weekday vs weekend: ours"
            f" {share([h[4] for h in ours if not h[2]])} vs"
            f" {share([h[4] for h in ours if h[2]])} (both resolutions), bound"
            f" {share([hit for _, we, hit in t.oracle if not we])} vs"
            f" {share([hit for _, we, hit in t.oracle if we])}"
        )
    print(
        f"targets: FA/chart-day {rate('all'):.3f} (<= 0.1); busy detected {pct(busy):.0f} %"
        f" (>= 95), median delay {busy_delay:.0f} s (<= 60); quiet x5 {pct(q5):.0f} % (>= 80),"
        f" x2 {pct(q2):.0f} % (>= 50); weekday {pct(wd):.0f} % vs weekend {pct(we):.0f} %"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--busy", type=int, default=6, help="busy routes")
    ap.add_argument("--quiet", type=int, default=6, help="quiet routes")
    ap.add_argument("--days", type=int, default=21, help="days per chart (>= 10)")
    seed = ap.add_mutually_exclusive_group()
    seed.add_argument("--seed", type=int, default=11)
    seed.add_argument(
        "--seeds",
        type=_seed_list,
        default=None,
        help="several seeds, pooled (each its own routes): '14-23' or '11,12,13'; the per-seed"
        " figures rest on a few incidents per kind (2 per route), their pool on many",
    )
    ap.add_argument("--method", choices=("ours", "zscore", "robust"), default="ours")
    ap.add_argument("--settings", default="", help="detector overrides: field=value,...")
    ap.add_argument(
        "--counts",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="charts scored by the count tests on their requests once these have learnt the"
        " route (as the live charts do; --no-counts: the point detector alone)",
    )
    ap.add_argument("--count-settings", default="", help="count-test overrides: field=value,...")
    ap.add_argument(
        "--rate-settings", default="", help="the rate count test's own overrides: field=value,..."
    )
    ap.add_argument(
        "--jitter", type=float, default=0.0, help="latency spread shared by a 10-s bucket"
    )
    ap.add_argument(
        "--burst", type=float, default=0.0, help="traffic's coefficient of variation per 10 s"
    )
    ap.add_argument(
        "--sweep",
        type=_threshold_list,
        default=[],
        help="thresholds (scores, comma-separated) to print false alarms and detection at",
    )
    ap.add_argument(
        "--timezone",
        default=None,
        help="the service's time zone (IANA name, e.g. Europe/London): its daily and weekly"
        " cycles and nightly job follow that local clock, and the suite starts 13 days before"
        " the clock's first change after 2026-03-01 (pass --count-settings timezone=... for"
        " the count tests to know the zone)",
    )
    args = ap.parse_args(argv)
    global T0, CLOCK_CHANGE
    if args.timezone is not None:
        try:
            T0, CLOCK_CHANGE = start_in_zone(args.timezone)
        except InvalidInputError as exc:
            sys.exit(f"error: --timezone: {exc}")
    if args.days < 10 or args.busy < 0 or args.quiet < 0 or args.busy + args.quiet == 0:
        sys.exit("error: --days >= 10 and at least one route")
    if not (0 <= args.jitter <= 2 and 0 <= args.burst <= 5):
        sys.exit("error: --jitter in [0, 2] and --burst in [0, 5]")
    args.seeds = args.seeds or [args.seed]
    start = time.perf_counter()
    tally = Tally()
    for seed in args.seeds:
        tally.merge(evaluate(args, seed))
    report(tally, args, (args.busy + args.quiet) * 6, time.perf_counter() - start)
    if args.sweep:
        sweep(tally, args.sweep)
    return 0


def _seed_list(text: str) -> list[int]:
    """``'14-23'`` or ``'11,12,13'`` (or both, comma-separated) as a list of seeds."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            seeds += range(int(first), int(last or first) + 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a seed list: {text!r} (e.g. 14-23 or 11,12)"
        ) from None
    if not seeds:
        raise argparse.ArgumentTypeError("no seed")
    return seeds


def _threshold_list(text: str) -> list[float]:
    """``'0.34,0.3'`` as a list of scores in (0, 1]."""
    try:
        out = [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a threshold list: {text!r} (e.g. 0.34,0.3)"
        ) from None
    if not all(0.0 < x <= 1.0 for x in out):
        raise argparse.ArgumentTypeError(f"thresholds must be in (0, 1]: {text!r}")
    return out


def _seed_text(seeds: list[int]) -> str:
    """The seeds as the user would write them: ``14-23`` when consecutive."""
    if seeds == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


if __name__ == "__main__":
    sys.exit(main())
