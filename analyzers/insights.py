"""Insights and recommendations that cite their evidence (numbers, routes, trace ids).

Inputs are plain frozen dataclasses (the monitoring layer adapts its live statistics into them);
every :class:`Insight` carries the numbers it rests on in ``evidence``. No rule fires without
enough data (``Thresholds.min_requests`` etc.), so silence means "nothing shown", not "fine".
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from analyzers.changepoint import find_change_points
from analyzers.errors import AnalysisError, InvalidInputError
from analyzers.forecast import ForecastStatus, forecast_crossing

__all__ = [
    "CacheSummary",
    "EndpointSummary",
    "Evidence",
    "Insight",
    "InsightKind",
    "LatencySeries",
    "QuerySummary",
    "Severity",
    "Thresholds",
    "insights",
    "recommend",
]


class Severity(enum.IntEnum):
    """How urgent an insight is; compares as a number (CRITICAL > WARNING > INFO)."""

    INFO = 1
    WARNING = 2
    CRITICAL = 3


class InsightKind(enum.Enum):
    SLOW_ENDPOINT = "slow_endpoint"
    ERROR_HOT_SPOT = "error_hot_spot"
    SLOW_QUERY = "slow_query"
    N_PLUS_ONE = "n_plus_one"
    LOW_CACHE_HIT_RATIO = "low_cache_hit_ratio"
    REGRESSION = "regression"
    SLO_TREND = "slo_trend"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One cited fact: a name, its value and unit (e.g. ``Evidence("p95", 1840.0, "ms")``)."""

    name: str
    value: float | int | str
    unit: str = ""


@dataclass(frozen=True, slots=True)
class EndpointSummary:
    """Per-endpoint statistics over a window. Latencies in milliseconds; ``error_rate`` in
    [0, 1] (5xx and exceptions over requests)."""

    route: str
    method: str
    requests: int
    errors: int
    error_rate: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    slowest_trace_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class QuerySummary:
    """A normalised DB statement: how often it ran and how long it took (milliseconds);
    ``n_plus_one_traces``: one trace id per request in which it repeated, ``""`` for a
    request whose trace was not sampled (such a request is counted, its id not cited)."""

    statement: str
    count: int
    avg_ms: float
    p95_ms: float
    max_ms: float
    n_plus_one_traces: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CacheSummary:
    """Hit and miss counts of one named cache."""

    cache: str
    hits: int
    misses: int


@dataclass(frozen=True, slots=True)
class LatencySeries:
    """p95 latency of one endpoint over time (seconds, milliseconds), optionally with the
    ``service.version`` active at each point, for regression and SLO-trend insights."""

    route: str
    method: str
    timestamps_s: tuple[float, ...]
    p95_ms: tuple[float, ...]
    versions: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a rule fires. Defaults follow docs/configuration.md (1000 ms latency, 500 ms DB)."""

    slow_p95_ms: float = 1000.0
    min_requests: int = 20
    error_rate: float = 0.05
    min_errors: int = 5
    slow_query_ms: float = 500.0
    min_cache_lookups: int = 50
    cache_hit_ratio: float = 0.8
    regression_ratio: float = 0.2
    slo_p95_ms: float = 1000.0
    slo_horizon_s: float = 24 * 3600.0

    def __post_init__(self) -> None:
        if min(self.slow_p95_ms, self.slow_query_ms, self.slo_p95_ms, self.slo_horizon_s) <= 0:
            raise InvalidInputError("latency thresholds and horizon must be > 0")
        if not (0 < self.error_rate <= 1 and 0 < self.cache_hit_ratio <= 1):
            raise InvalidInputError("error_rate and cache_hit_ratio must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class Insight:
    """A finding with what to do about it and the evidence it rests on."""

    kind: InsightKind
    severity: Severity
    title: str
    message: str
    recommendation: str
    route: str | None = None
    trace_ids: tuple[str, ...] = ()
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)


def _endpoint(e: EndpointSummary, th: Thresholds, total_errors: int) -> list[Insight]:
    out: list[Insight] = []
    name = f"{e.method} {e.route}"
    if e.requests < th.min_requests:
        return out
    if e.p95_ms > th.slow_p95_ms:
        sev = Severity.CRITICAL if e.p95_ms > 2 * th.slow_p95_ms else Severity.WARNING
        out.append(
            Insight(
                InsightKind.SLOW_ENDPOINT,
                sev,
                f"Slow endpoint {name}",
                f"{name}: p95 {e.p95_ms:.0f} ms over {e.requests} requests (threshold "
                f"{th.slow_p95_ms:.0f} ms); p50 {e.p50_ms:.0f} ms, p99 {e.p99_ms:.0f} ms.",
                "Open the slowest traces to see which span dominates (DB, downstream call or "
                "CPU); add caching or pagination where the same work repeats.",
                e.route,
                e.slowest_trace_ids,
                (
                    Evidence("requests", e.requests),
                    Evidence("p50", e.p50_ms, "ms"),
                    Evidence("p95", e.p95_ms, "ms"),
                    Evidence("p99", e.p99_ms, "ms"),
                    Evidence("threshold", th.slow_p95_ms, "ms"),
                    *(Evidence("trace_id", t) for t in e.slowest_trace_ids),
                ),
            )
        )
    if e.errors >= th.min_errors and e.error_rate >= th.error_rate:
        sev = Severity.CRITICAL if e.error_rate >= 4 * th.error_rate else Severity.WARNING
        share = e.errors / total_errors if total_errors else 1.0
        out.append(
            Insight(
                InsightKind.ERROR_HOT_SPOT,
                sev,
                f"Errors on {name}",
                f"{name}: {e.errors} errors in {e.requests} requests ({100 * e.error_rate:.1f} %),"
                f" {100 * share:.0f} % of all errors.",
                "Look at the error samples' exception types; fix the most frequent one first.",
                e.route,
                e.slowest_trace_ids,
                (
                    Evidence("requests", e.requests),
                    Evidence("errors", e.errors),
                    Evidence("error_rate", e.error_rate),
                    Evidence("share_of_errors", share),
                ),
            )
        )
    return out


def _query(q: QuerySummary, th: Thresholds) -> list[Insight]:
    out: list[Insight] = []
    stmt = q.statement if len(q.statement) <= 80 else q.statement[:77] + "..."
    if q.count > 0 and q.p95_ms > th.slow_query_ms:
        out.append(
            Insight(
                InsightKind.SLOW_QUERY,
                Severity.WARNING,
                f"Slow query: {stmt}",
                f"{stmt!r} ran {q.count} times, p95 {q.p95_ms:.0f} ms (threshold "
                f"{th.slow_query_ms:.0f} ms), max {q.max_ms:.0f} ms.",
                "Check its plan (EXPLAIN); add an index on the filtered/joined columns or "
                "narrow the selected rows.",
                None,
                (),
                (
                    Evidence("count", q.count),
                    Evidence("avg", q.avg_ms, "ms"),
                    Evidence("p95", q.p95_ms, "ms"),
                    Evidence("max", q.max_ms, "ms"),
                ),
            )
        )
    if q.n_plus_one_traces:
        cited = tuple(t for t in q.n_plus_one_traces if t)
        requests = len(q.n_plus_one_traces)
        out.append(
            Insight(
                InsightKind.N_PLUS_ONE,
                Severity.WARNING,
                f"N+1 query pattern: {stmt}",
                f"{stmt!r} repeats within single requests in {requests} request(s).",
                "Load the related rows in one query (JOIN / IN list, or eager loading such as "
                "SQLAlchemy selectinload).",
                None,
                cited,
                (
                    Evidence("count", q.count),
                    Evidence("requests", requests),
                    *(Evidence("trace_id", t) for t in cited),
                ),
            )
        )
    return out


def _cache(c: CacheSummary, th: Thresholds) -> list[Insight]:
    lookups = c.hits + c.misses
    if lookups < th.min_cache_lookups:
        return []
    ratio = c.hits / lookups
    if ratio >= th.cache_hit_ratio:
        return []
    return [
        Insight(
            InsightKind.LOW_CACHE_HIT_RATIO,
            Severity.INFO,
            f"Low hit ratio of cache {c.cache}",
            f"Cache {c.cache!r}: {100 * ratio:.1f} % hits over {lookups} lookups (target "
            f"{100 * th.cache_hit_ratio:.0f} %).",
            "Check the key (too specific?), the TTL (too short?) and the size (evictions?).",
            None,
            (),
            (Evidence("hits", c.hits), Evidence("misses", c.misses), Evidence("hit_ratio", ratio)),
        )
    ]


def _series(s: LatencySeries, th: Thresholds) -> list[Insight]:
    out: list[Insight] = []
    name = f"{s.method} {s.route}"
    try:
        changes = find_change_points(s.timestamps_s, s.p95_ms, s.versions)
    except AnalysisError:
        changes = ()
    for c in changes:
        if c.relative_change is None or c.relative_change < th.regression_ratio:
            continue
        since = f" since version {c.version_after}" if c.version_after else ""
        out.append(
            Insight(
                InsightKind.REGRESSION,
                Severity.WARNING,
                f"Latency regression on {name}{since}",
                f"{name}: p95 rose from {c.before_level:.0f} ms to {c.after_level:.0f} ms "
                f"(+{100 * c.relative_change:.0f} %){since}, p = {c.p_value:.1g}.",
                "Compare the traces before and after the change; roll back if it is a deploy.",
                s.route,
                (),
                (
                    Evidence("before_p95", c.before_level, "ms"),
                    Evidence("after_p95", c.after_level, "ms"),
                    Evidence("relative_change", c.relative_change),
                    Evidence("p_value", c.p_value),
                    Evidence("at", c.timestamp_s, "s"),
                    *(
                        (
                            Evidence("version_before", c.version_before),
                            Evidence("version_after", c.version_after or ""),
                        )
                        if c.version_before
                        else ()
                    ),
                ),
            )
        )
    if len(s.p95_ms) >= 10:
        try:
            fc = forecast_crossing(s.timestamps_s, s.p95_ms, th.slo_p95_ms, th.slo_horizon_s)
        except AnalysisError:
            return out
        if fc.status is ForecastStatus.WILL_CROSS and fc.eta_s is not None:
            out.append(
                Insight(
                    InsightKind.SLO_TREND,
                    Severity.WARNING,
                    f"{name} trends toward its SLO",
                    f"{name}: p95 trend {fc.slope.slope_per_hour:+.1f} ms/h from "
                    f"{fc.current_level:.0f} ms reaches {th.slo_p95_ms:.0f} ms in about "
                    f"{fc.eta_s / 3600:.1f} h.",
                    "Find what grows with time (data volume, queue, memory) before it breaches.",
                    s.route,
                    (),
                    (
                        Evidence("current_p95", fc.current_level, "ms"),
                        Evidence("slope", fc.slope.slope_per_hour, "ms/h"),
                        Evidence("eta", fc.eta_s, "s"),
                        Evidence("slo_p95", th.slo_p95_ms, "ms"),
                    ),
                )
            )
    return out


def insights(
    endpoints: Sequence[EndpointSummary] = (),
    queries: Sequence[QuerySummary] = (),
    caches: Sequence[CacheSummary] = (),
    latency_series: Sequence[LatencySeries] = (),
    thresholds: Thresholds | None = None,
) -> tuple[Insight, ...]:
    """All findings, most severe first (ties: in input order). Each cites its evidence."""
    th = thresholds if thresholds is not None else Thresholds()
    total_errors = sum(e.errors for e in endpoints)
    found: list[Insight] = []
    for e in endpoints:
        found.extend(_endpoint(e, th, total_errors))
    for q in queries:
        found.extend(_query(q, th))
    for c in caches:
        found.extend(_cache(c, th))
    for s in latency_series:
        found.extend(_series(s, th))
    found.sort(key=lambda i: -i.severity)
    return tuple(found)


def recommend(
    endpoints: Sequence[EndpointSummary] = (),
    queries: Sequence[QuerySummary] = (),
    caches: Sequence[CacheSummary] = (),
    latency_series: Sequence[LatencySeries] = (),
    thresholds: Thresholds | None = None,
    min_severity: Severity = Severity.INFO,
) -> tuple[Insight, ...]:
    """The insights at or above ``min_severity``: each one's ``recommendation`` says what to do."""
    found = insights(endpoints, queries, caches, latency_series, thresholds)
    return tuple(i for i in found if i.severity >= min_severity)
