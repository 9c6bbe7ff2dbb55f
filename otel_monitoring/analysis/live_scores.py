"""Streaming anomaly scores of the live charts, kept current after each collection.

Rescoring a day of points on every request would cost seconds for a hundred routes; instead
one streaming detector per chart (service and each route and method, for p95 latency, error
rate and throughput, at the finest and the 1-minute resolution) is fed each completed bucket
once, right after the collection that completed it. Its values and scores are kept in fixed
rings: as long as the store keeps the buckets, and for the finest resolution up to
``fine_history_s`` (``OTEL_MONITORING_FINE_HISTORY``), which may exceed the store's hour of
finest buckets so that a whole day of 10-s points can be analysed without rescoring. A request
then reads scores instead of computing them.

Each of these charts is scored by a count test on the bucket's requests rather than by a
point detector on its value (which pages about once a day on any noisy chart): a p95 latency
chart by :class:`analyzers.ExceedanceDetector` on the bucket's histogram (how many requests
exceeded the route's usual p95 and p99; it hears a quiet route's incident that its p95
hides), an error-rate chart by :class:`analyzers.ErrorCountDetector` (failures against the
route's usual share; a point detector on the ratio pages on one failure out of one request),
a throughput chart by :class:`analyzers.RateCountDetector` (requests against the route's
usual rate for that hour of the week, learnt in process and, after a restart, from the store's
hourly buckets when it keeps more than a day), fed every completed bucket, the empty ones
included, so that a route that goes silent is seen while it is silent. While its count test
learns the route (6 h) a p95 chart has its point detector's score; the others score nothing
for their tests' first hour. The point detector follows every chart all along:
``History.points_seen`` counts its points.

Per collection the work is one detector update per chart (a few microseconds each). Memory is
bounded by charts x slots x 16 bytes (a float64 value, a float32 score and an int32 count per
bucket), with charts capped at ``max_charts``: 303 charts (100 routes) hold 1.7 MB at the
default hour of 10-s points and 42 MB with a day of them.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from otel_monitoring.capture.instruments import HTTP_DURATION_METRIC
from otel_monitoring.stats.timeseries import Cached, TimeseriesMetric, value_of
from otel_monitoring.store.memory import Agg, Kind, MetricStore, SeriesKey

if TYPE_CHECKING:  # analyzers itself is imported where it is used
    from analyzers import ErrorCountDetector, ExceedanceDetector, RateCountDetector

    CountTest = ExceedanceDetector | ErrorCountDetector | RateCountDetector

__all__ = ["WATCHED_METRICS", "History", "LiveScores", "ScoredChart"]

WATCHED_METRICS = (
    TimeseriesMetric.LATENCY_P95,
    TimeseriesMetric.ERROR_RATE,
    TimeseriesMetric.THROUGHPUT,
)
ChartKey = tuple[TimeseriesMetric, str | None, str | None, float]
_HOUR_S = 3600.0
REPLAY_S = 7 * 3600.0  # stored history fed at start: the count tests' 6-h warm-up and an hour
PROFILE_S = 28 * 86400.0  # stored hours a request-rate chart's weekly profile learns at start
Subject = tuple[str | None, str | None]  # (route, method); (None, None): the service


def _by_route(key: SeriesKey) -> Subject:
    return key.get("http.route"), key.get("http.request.method")


@dataclass(frozen=True, slots=True)
class History:
    """The scored points of one chart, oldest first.

    ``times_s`` are bucket starts (Unix seconds), ``values`` the chart values and ``scores``
    the streaming anomaly scores in [0, 1], all of one length; ``points_seen`` counts every
    point the chart's detector has learned from (it is past warm-up from 150 on).
    """

    metric: TimeseriesMetric
    points_seen: int
    step_s: float
    times_s: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]
    scores: npt.NDArray[np.float32]

    @classmethod
    def empty(cls, metric: TimeseriesMetric, step_s: float) -> History:
        """No points (a chart with no data yet)."""
        none = np.zeros(0)
        return cls(metric, 0, step_s, none, none, none.astype(np.float32))


class ScoredChart:
    """A detector and the ring of its last ``slots`` buckets (slot = bucket index % slots).

    A slot holds NaN as value when its bucket had no data or no value (not fed to the
    detector), with its request count; buckets skipped between two fed ones are cleared.
    """

    __slots__ = (
        "count_test",
        "counts",
        "detector",
        "last_index",
        "scores",
        "start_index",
        "values",
    )

    def __init__(
        self, detector: Any, slots: int, start_index: int, count_test: CountTest | None = None
    ) -> None:
        self.detector = detector
        self.count_test = count_test  # p95 and error-rate charts: their count test
        self.values = np.full(slots, np.nan)
        self.scores = np.zeros(slots, dtype=np.float32)
        self.counts = np.zeros(slots, dtype=np.int32)
        self.start_index = start_index
        self.last_index: int | None = None

    @property
    def first_index(self) -> int:
        """Oldest bucket index the ring still describes (``last_index`` must be set)."""
        assert self.last_index is not None
        return max(self.start_index, self.last_index - len(self.values) + 1)

    def put(self, index: int, value: float | None, score: float, count: int) -> None:
        slots = len(self.values)
        last = self.last_index
        if last is not None and index - last > 1:
            gap = np.arange(last + 1, min(index, last + 1 + slots)) % slots
            self.values[gap] = np.nan
            self.scores[gap] = 0.0
            self.counts[gap] = 0
        position = index % slots
        self.values[position] = np.nan if value is None else value
        self.scores[position] = score
        self.counts[position] = min(count, 2**31 - 1)
        self.last_index = index

    def history(self, metric: TimeseriesMetric, step: float, first: int, last: int) -> History:
        """The scored points with bucket index in ``[first, last]``."""
        indices, positions = self.window(first, last)
        values = self.values[positions]
        scored = ~np.isnan(values)
        return History(
            metric=metric,
            points_seen=self.detector.points_seen,
            step_s=step,
            times_s=indices[scored].astype(np.float64) * step,
            values=values[scored],
            scores=self.scores[positions][scored],
        )

    def window(self, first: int, last: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
        """Bucket indices in ``[first, last]`` held by the ring, and their slot positions."""
        assert self.last_index is not None
        lo, hi = max(first, self.first_index), min(last, self.last_index)
        indices = np.arange(lo, hi + 1, dtype=np.int64)
        return indices, (indices % len(self.values)).astype(np.intp)


def _count_test(metric: TimeseriesMetric, timezone: str | None = None) -> CountTest | None:
    """The count test of a chart of ``metric``, or None (see the module docstring), its
    daily and weekly cycles on the local clock of ``timezone`` (None: UTC)."""
    import analyzers

    if metric is TimeseriesMetric.LATENCY_P95:
        return analyzers.ExceedanceDetector(analyzers.ExceedanceSettings(timezone=timezone))
    if metric is TimeseriesMetric.ERROR_RATE:
        return analyzers.ErrorCountDetector(analyzers.ErrorCountSettings(timezone=timezone))
    if metric is TimeseriesMetric.THROUGHPUT:
        return analyzers.RateCountDetector(analyzers.RateSettings(timezone=timezone))
    return None


class LiveScores:
    """Per-chart streaming detectors; see the module docstring. Thread-safe.

    ``settle_s``: how long after its end a bucket is complete (0 for this process alone; a
    little over the collection interval when other processes write to a shared store).
    ``timezone``: the service's (an IANA name; None: UTC), whose local clock its daily and
    weekly cycles follow (see :mod:`analyzers.local_clock`).
    """

    def __init__(
        self,
        store: MetricStore,
        *,
        max_charts: int = 3000,
        metrics: tuple[TimeseriesMetric, ...] = WATCHED_METRICS,
        fine_history_s: float = 0.0,
        settle_s: float = 0.0,
        timezone: str | None = None,
    ) -> None:
        self.store = store
        self.timezone = timezone
        self.settle_s = settle_s
        self.max_charts = max_charts
        self.metrics = tuple(dict.fromkeys((*WATCHED_METRICS, *metrics)))
        finest = store.tiers[0]
        self.fine_step_s = finest.width_s
        self._slots = {
            tier.width_s: tier.slots for tier in store.tiers[:2] if tier.width_s != finest.width_s
        }
        self._slots[finest.width_s] = max(
            finest.slots, math.ceil(fine_history_s / finest.width_s - 1e-9)
        )
        self._charts: dict[ChartKey, ScoredChart] = {}
        self._lock = threading.Lock()
        self._replayed = False  # the stored buckets were fed (at the first update)
        self._hours: dict[Subject, list[tuple[float, int]]] = {}  # see _stored_hours

    @property
    def fine_history_s(self) -> float:
        """How far back the finest-resolution charts reach (seconds)."""
        return self._slots[self.fine_step_s] * self.fine_step_s

    def footprint(self) -> tuple[int, int]:
        """``(charts, bytes)``: charts tracked and the bytes their rings hold."""
        with self._lock:
            rings = [(c.values, c.scores, c.counts) for c in self._charts.values()]
        return len(rings), sum(a.nbytes for ring in rings for a in ring)

    def update(self, now_s: float) -> None:
        """Feed every chart the buckets completed since the last call. The first call feeds
        what the store already holds of the last ``REPLAY_S`` (7 h): after a restart on a
        persistent store the detectors learn again from it, so the 1-minute charts' count
        tests have their 6 hours at once instead of 6 hours later (and the 10-s charts'
        point detectors the store's hour). A store that keeps more than a day also has
        hourly buckets: each request-rate chart learns its weekly profile from those of the
        4 weeks before (``_stored_hours``), so that a restart does not judge traffic against
        the last half hour alone for a week. That first call costs about 0.1 ms per stored
        bucket and chart subject (``benchmarks/analysis.py``), once, on the collector."""
        if not self._replayed:
            self._hours = self._stored_hours(now_s)
        for tier in self.store.tiers[:2]:
            step = tier.width_s
            replay = min(self._slots[step], math.ceil(REPLAY_S / step))
            lookback = 3 if self._replayed else replay
            # a bucket is fed once no process can still add to it (``settle_s``: other
            # processes sharing a SQLite store write once per collection interval)
            current = math.floor((now_s - self.settle_s) / step)
            grouped = self.store.bucket_range(
                HTTP_DURATION_METRIC, step, current - lookback, current, _by_route
            )
            service: dict[int, Agg] = {}
            for per_index in grouped.values():
                for index, agg in per_index.items():
                    service.setdefault(index, Agg()).merge(agg, Kind.HISTOGRAM)
            self._feed((None, None), service, step, current)
            for (route, method), per_index in grouped.items():
                self._feed((route, method), per_index, step, current)
            self._feed_silence(step, current)
        self._replayed = True
        self._hours = {}

    def _stored_hours(self, now_s: float) -> dict[Subject, list[tuple[float, int]]]:
        """The hourly request counts the store holds of the last ``PROFILE_S`` (4 weeks),
        per subject, oldest first, for the request-rate charts' weekly profiles: a restart
        keeps them (``RateCountDetector.learn_hours``). Only a store that keeps more than a
        day has hourly buckets. An hour in which the service had a request is one the
        store counted, and a route with none in it had 0."""
        if not any(tier.width_s == _HOUR_S for tier in self.store.tiers):
            return {}
        last = math.floor(now_s / _HOUR_S) - 1
        first = last - math.ceil(PROFILE_S / _HOUR_S) + 1
        grouped = self.store.bucket_range(HTTP_DURATION_METRIC, _HOUR_S, first, last, _by_route)
        counted = sorted({index for per_index in grouped.values() for index in per_index})
        service = dict.fromkeys(counted, 0)
        for per_index in grouped.values():
            for index, agg in per_index.items():
                service[index] += agg.count
        out = {
            subject: [(i * _HOUR_S, per_index[i].count if i in per_index else 0) for i in counted]
            for subject, per_index in grouped.items()
        }
        out[(None, None)] = [(i * _HOUR_S, service[i]) for i in counted]
        return out

    def _feed_silence(self, step: float, current: int) -> None:
        """Feed the request-rate charts the completed buckets no request came in (the store
        has none to give): a route that went silent is a traffic drop, seen as it happens.
        At most a ring's length of buckets per chart and call."""
        import analyzers

        with self._lock:
            for (metric, _, _, st), chart in self._charts.items():
                test = chart.count_test
                if (
                    st != step
                    or not isinstance(test, analyzers.RateCountDetector)
                    or chart.last_index is None
                ):
                    continue
                first = max(chart.last_index + 1, current - len(chart.values))
                for index in range(first, current):
                    score = test.update(index * step, 0, step)  # 0 while it learns
                    chart.put(index, value_of(metric, None, step), score, 0)

    def _feed(
        self,
        subject: tuple[str | None, str | None],
        per_index: dict[int, Agg],
        step: float,
        current: int,
    ) -> None:
        import analyzers

        route, method = subject
        completed = sorted(i for i in per_index if i < current)
        if not completed:
            return
        with self._lock:
            for metric in self.metrics:
                key = (metric, route, method, step)
                chart = self._charts.get(key)
                if chart is None:
                    if len(self._charts) >= self.max_charts:
                        continue
                    chart = self._charts[key] = ScoredChart(
                        analyzers.AnomalyDetector(),
                        self._slots[step],
                        completed[0],
                        _count_test(metric, self.timezone),
                    )
                    if isinstance(chart.count_test, analyzers.RateCountDetector):
                        # the stored hours before its first bucket (see _stored_hours)
                        cutoff = completed[0] * step - _HOUR_S
                        hours = self._hours.get(subject, [])
                        chart.count_test.learn_hours(h for h in hours if h[0] <= cutoff)
                for index in completed:
                    if chart.last_index is not None and index <= chart.last_index:
                        continue
                    agg = per_index[index]
                    value = value_of(metric, agg, step)
                    score = 0.0 if value is None else chart.detector.update(index * step, value)
                    test = chart.count_test
                    if test is not None:
                        counted = self._count(test, index * step, agg, step)
                        # the count test scores the chart once it has learnt the route; a
                        # p95 chart has its point detector until then (6 h), the others
                        # nothing (their tests learn within the hour, and a point detector
                        # on an error ratio or a rate pages on noise)
                        covered = isinstance(test, analyzers.ExceedanceDetector)
                        score = counted if test.ready or not covered else score
                    chart.put(index, value, score, agg.count)

    @staticmethod
    def _count(test: CountTest, t: float, agg: Agg, step: float) -> float:
        """The count test's score of one bucket: requests above the usual p95, failures
        against the usual share, or requests against the usual rate."""
        import analyzers

        if isinstance(test, analyzers.ErrorCountDetector):
            return test.update(t, agg.count, agg.errors, step)
        if isinstance(test, analyzers.RateCountDetector):
            return test.update(t, agg.count, step)
        return 0.0 if agg.hist is None else test.update(t, agg.hist, step)

    def histories(
        self, metric: TimeseriesMetric, route: str | None, method: str | None, step: float
    ) -> list[History]:
        """Every held point of each chart of ``metric`` at ``step`` for the service (``route``
        None) or for ``route`` with ``method`` (any method when ``method`` is None)."""
        with self._lock:
            return [
                chart.history(m, step, chart.first_index, chart.last_index)
                for (m, r, me, st), chart in self._charts.items()
                if m is metric
                and st == step
                and r == route
                and (method is None or me == method)
                and (route is not None or me is None)
                and chart.last_index is not None
            ]

    def methods(self, metric: TimeseriesMetric, route: str, step: float) -> list[str]:
        """Methods with a chart of ``metric`` for ``route`` at ``step``, sorted."""
        with self._lock:
            return sorted(
                str(me) for m, r, me, st in self._charts if (m, r, st) == (metric, route, step)
            )

    def history(
        self,
        metric: TimeseriesMetric,
        route: str | None,
        method: str | None,
        step: float,
        start_s: float = -math.inf,
        end_s: float = math.inf,
    ) -> History | None:
        """Scored points of one chart with bucket start in ``[start_s, end_s]``, or ``None``
        when the chart is not watched (or has seen no bucket yet)."""
        with self._lock:
            chart = self._charts.get((metric, route, method, step))
            if chart is None or chart.last_index is None:
                return None
            first = chart.first_index if start_s == -math.inf else math.ceil(start_s / step)
            last = chart.last_index if end_s == math.inf else math.floor(end_s / step)
            return chart.history(metric, step, first, last)

    def cached(
        self, metric: TimeseriesMetric, route: str | None, method: str | None, step: float
    ) -> Cached | None:
        """Chart values of closed buckets, for ``stats.timeseries.http_series``: complete
        from the returned first index to the last one held (absent = no data)."""
        with self._lock:
            chart = self._charts.get((metric, route, method, step))
            if chart is None or chart.last_index is None:
                return None
            first = chart.first_index
            indices, positions = chart.window(first, chart.last_index)
            values, counts = chart.values[positions], chart.counts[positions]
            held = np.flatnonzero(~np.isnan(values) | (counts > 0))
            entries: dict[int, tuple[float | None, int]] = {
                int(indices[i]): (
                    None if math.isnan(v := float(values[i])) else v,
                    int(counts[i]),
                )
                for i in held.tolist()
            }
            entries.setdefault(chart.last_index, (value_of(metric, None, step), 0))
            return first, entries
