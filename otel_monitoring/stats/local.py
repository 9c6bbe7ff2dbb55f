"""Read statistics from the store and the trace findings as frozen dataclasses.

``monitor.stats`` is a :class:`Stats`. Every query first refreshes the store when its data is
older than one second (a collection, never an export), so numbers are current without
waiting for the next interval. Windows are the last 1 min, 5 min, 1 h, 24 h or since start.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from otel_monitoring.capture.instruments import (
    CACHE_METRIC,
    DB_DURATION_METRIC,
    HTTP_CLIENT_DURATION_METRIC,
    HTTP_DURATION_METRIC,
    HTTP_RESPONSE_SIZE_METRIC,
)
from otel_monitoring.capture.spans import TraceFindings
from otel_monitoring.clock import Clock
from otel_monitoring.self_telemetry import Guard
from otel_monitoring.stats.view import (
    EndpointSort,
    StatsView,
    health_status,
    pct,
    request_figures,
    slowest_first,
    sort_endpoints,
    window_minutes,
    worst_endpoints,
)
from otel_monitoring.store.histogram import ExpHistogram
from otel_monitoring.store.memory import Agg, MetricStore, SeriesKey
from otel_monitoring.types import (
    CacheStats,
    DbStatementStats,
    EndpointStats,
    ErrorSample,
    Exemplar,
    ExternalStats,
    HealthStatus,
    LatencyStats,
    MetricStats,
    NPlusOnePattern,
    SelfTelemetry,
    ServiceStats,
    StoreTelemetry,
    Window,
)

__all__ = ["EndpointSort", "Stats", "latency_of"]

_OWN_METRICS = frozenset(
    (
        HTTP_DURATION_METRIC,
        HTTP_RESPONSE_SIZE_METRIC,
        DB_DURATION_METRIC,
        HTTP_CLIENT_DURATION_METRIC,
        CACHE_METRIC,
    )
)


def _ms(value: float) -> float | None:
    return None if math.isnan(value) else round(value * 1000.0, 3)


def latency_of(hist: ExpHistogram | None) -> LatencyStats:
    """Latency summary (ms) of a histogram of seconds; ``None`` fields when empty."""
    if hist is None or hist.count == 0:
        return LatencyStats(None, None, None, None, None, None, None)
    return LatencyStats(
        min_ms=_ms(hist.min),
        avg_ms=_ms(hist.mean),
        max_ms=_ms(hist.max),
        p50_ms=_ms(hist.quantile(0.50)),
        p90_ms=_ms(hist.quantile(0.90)),
        p95_ms=_ms(hist.quantile(0.95)),
        p99_ms=_ms(hist.quantile(0.99)),
    )


class Stats:
    """Queries over the live statistics; see the module docstring."""

    def __init__(
        self,
        *,
        store: MetricStore,
        findings: TraceFindings,
        clock: Clock,
        guard: Guard,
        refresh: Callable[[], None],
        collections: Callable[[], int],
        db_examples: Mapping[str, str],
        latency_threshold_ms: float,
    ) -> None:
        self.store = store
        self.findings = findings
        self.clock = clock
        self.guard = guard
        self._refresh = refresh
        self._collections = collections
        self._db_examples = db_examples
        self.latency_threshold_ms = latency_threshold_ms
        self.started_mono_s = clock.monotonic_s()
        self._last_refresh_mono_s = -math.inf

    # -- helpers ---------------------------------------------------------------------------
    def refresh(self, max_age_s: float = 1.0) -> None:
        """Collect now if the last collection is older than ``max_age_s`` seconds."""
        now = self.clock.monotonic_s()
        if now - self._last_refresh_mono_s >= max_age_s:
            self._last_refresh_mono_s = now
            self._refresh()

    def mark_refreshed(self) -> None:
        """Note that a collection just happened (the reader's own interval)."""
        self._last_refresh_mono_s = self.clock.monotonic_s()

    @property
    def uptime_s(self) -> float:
        """Seconds since monitoring started."""
        return max(0.0, self.clock.monotonic_s() - self.started_mono_s)

    def _fold(
        self, metric: str, window: Window, group: Callable[[SeriesKey], tuple[str, ...] | None]
    ) -> dict[tuple[str, ...], Agg]:
        self.refresh()
        return self.store.fold(metric, window.seconds, self.clock.now_s(), group)

    def _minutes(self, window: Window) -> float:
        return window_minutes(window.seconds, self.uptime_s)

    # -- HTTP server -----------------------------------------------------------------------
    def endpoints(
        self,
        window: Window | str = Window.H1,
        *,
        sort: EndpointSort | str = EndpointSort.REQUESTS,
        limit: int | None = None,
        route: str | None = None,
        method: str | None = None,
    ) -> list[EndpointStats]:
        """Statistics per route template and method, busiest or worst first."""
        window, sort = Window(window), EndpointSort(sort)

        def by_route(key: SeriesKey) -> tuple[str, ...] | None:
            r, m = key.get("http.route"), key.get("http.request.method")
            if (route is not None and r != route) or (method is not None and m != method):
                return None
            return (r, m, key.get("status_class"))

        durations = self._fold(HTTP_DURATION_METRIC, window, by_route)

        def by_endpoint(key: SeriesKey) -> tuple[str, ...] | None:
            found = by_route(key)
            return None if found is None else found[:2]

        sizes = self.store.fold(
            HTTP_RESPONSE_SIZE_METRIC, window.seconds, self.clock.now_s(), by_endpoint
        )
        grouped: dict[tuple[str, str], list[tuple[str, Agg]]] = {}
        for (r, m, klass), agg in durations.items():
            grouped.setdefault((r, m), []).append((klass, agg))
        minutes = self._minutes(window)
        since_s = None if window.seconds is None else self.clock.now_s() - window.seconds
        result = []
        for (r, m), parts in grouped.items():
            total = Agg()
            for _, agg in parts:
                total.merge(agg, _HIST)
            if total.count == 0:
                continue
            client = sum(agg.count for klass, agg in parts if klass == "4xx")
            size = sizes.get((r, m))
            size_hist = size.hist if size is not None else None
            result.append(
                EndpointStats(
                    route=r,
                    method=m,
                    window=window,
                    **request_figures(
                        requests=total.count,
                        errors=total.errors,
                        client_errors=client,
                        latency=latency_of(total.hist),
                        minutes=minutes,
                    ),
                    response_size_avg_bytes=(
                        round(size_hist.mean, 1) if size_hist and size_hist.count else None
                    ),
                    response_size_max_bytes=(
                        size_hist.max if size_hist and size_hist.count else None
                    ),
                    status_classes=tuple(sorted((k, a.count) for k, a in parts)),
                    exemplars=tuple(
                        self.findings.exemplars(route=r, method=m, since_s=since_s, limit=5)
                    ),
                )
            )
        return sort_endpoints(result, sort, limit)

    def service(self, window: Window | str = Window.H1) -> ServiceStats:
        """Statistics over all routes."""
        window = Window(window)
        parts = self._fold(
            HTTP_DURATION_METRIC,
            window,
            lambda key: (
                key.get("status_class"),
                key.get("http.route"),
                key.get("http.request.method"),
            ),
        )
        total = Agg()
        client = 0
        routes = set()
        for (klass, r, m), agg in parts.items():
            if agg.count == 0:
                continue
            total.merge(agg, _HIST)
            routes.add((r, m))
            if klass == "4xx":
                client += agg.count
        return ServiceStats(
            window=window,
            **request_figures(
                requests=total.count,
                errors=total.errors,
                client_errors=client,
                latency=latency_of(total.hist),
                minutes=self._minutes(window),
            ),
            endpoints_count=len(routes),
        )

    def requests_over(
        self, window_s: float, *, route: str | None = None, method: str | None = None
    ) -> Agg:
        """Requests, errors and the latency histogram (seconds) over the last ``window_s``
        seconds, for the service or one route and method (for SLOs and custom windows)."""

        def pick(key: SeriesKey) -> tuple[str, ...] | None:
            if route is not None and key.get("http.route") != route:
                return None
            if method is not None and key.get("http.request.method") != method:
                return None
            return ("all",)

        self.refresh()
        folded = self.store.fold(HTTP_DURATION_METRIC, window_s, self.clock.now_s(), pick)
        return folded.get(("all",), Agg())

    def slo_counts(
        self,
        window_s: float,
        *,
        route: str | None = None,
        method: str | None = None,
        latency_threshold_ms: float | None = None,
    ) -> tuple[int, int]:
        """Requests over the last ``window_s`` seconds and how many were bad: errors, or
        (given ``latency_threshold_ms``) slower than the threshold, to the histogram's 0.54 %
        bucket resolution. For SLO rules."""
        agg = self.requests_over(window_s, route=route, method=method)
        if latency_threshold_ms is None:
            return agg.count, agg.errors
        slow = agg.hist.count_above(latency_threshold_ms / 1000.0) if agg.hist else 0
        return agg.count, slow

    # -- dependencies ----------------------------------------------------------------------
    def db_statements(self, window: Window | str = Window.H1) -> list[DbStatementStats]:
        """DB operations per statement summary, slowest (by p95) first."""
        window = Window(window)
        folded = self._fold(
            DB_DURATION_METRIC,
            window,
            lambda key: (key.get("db.query.summary"), key.get("db.system.name")),
        )
        result = []
        for (summary, system), agg in folded.items():
            if agg.count == 0:
                continue
            latency = latency_of(agg.hist)
            result.append(
                DbStatementStats(
                    summary=summary,
                    system=system,
                    count=agg.count,
                    errors=agg.errors,
                    avg_ms=latency.avg_ms,
                    p95_ms=latency.p95_ms,
                    max_ms=latency.max_ms,
                    example=self._db_examples.get(summary, summary),
                )
            )
        return slowest_first(result)

    def caches(self, window: Window | str = Window.H1) -> list[CacheStats]:
        """Hit ratio per named cache."""
        folded = self._fold(
            CACHE_METRIC,
            Window(window),
            lambda key: (key.get("cache.name"), key.get("cache.result")),
        )
        names = sorted({name for name, _ in folded})
        result = []
        for name in names:
            hits = int(folded[(name, "hit")].value) if (name, "hit") in folded else 0
            misses = int(folded[(name, "miss")].value) if (name, "miss") in folded else 0
            lookups = hits + misses
            result.append(
                CacheStats(
                    cache=name,
                    hits=hits,
                    misses=misses,
                    hit_ratio=pct(hits, lookups) if lookups else None,
                )
            )
        return result

    def external(self, window: Window | str = Window.H1) -> list[ExternalStats]:
        """Outbound HTTP calls per target host."""
        folded = self._fold(
            HTTP_CLIENT_DURATION_METRIC, Window(window), lambda key: (key.get("server.address"),)
        )
        result = []
        for (host,), agg in folded.items():
            if agg.count == 0:
                continue
            latency = latency_of(agg.hist)
            result.append(
                ExternalStats(
                    host=host,
                    count=agg.count,
                    errors=agg.errors,
                    avg_ms=latency.avg_ms,
                    p95_ms=latency.p95_ms,
                )
            )
        result.sort(key=lambda s: s.count, reverse=True)
        return result

    def metrics(self, window: Window | str = Window.H1) -> list[MetricStats]:
        """Every other OTel metric the app defines, per attribute set."""
        window = Window(window)
        self.refresh()
        result = []
        for key, kind, unit in self.store.series():
            if key.metric in _OWN_METRICS:
                continue
            folded = self.store.fold(
                key.metric,
                window.seconds,
                self.clock.now_s(),
                lambda k, target=key: ("x",) if k == target else None,  # type: ignore[misc]
            )
            agg = folded.get(("x",))
            if agg is None or agg.count == 0:
                continue
            if agg.hist is not None:
                value: float | None = agg.hist.mean
            elif kind.value == "histogram":
                value = agg.value / agg.count if agg.count else None
            else:
                value = agg.value
            result.append(
                MetricStats(
                    name=key.metric,
                    unit=unit,
                    kind=kind.value,
                    attributes=key.attributes,
                    value=value,
                    count=agg.count,
                )
            )
        result.sort(key=lambda m: (m.name, m.attributes))
        return result

    # -- traces ----------------------------------------------------------------------------
    def slow_traces(
        self,
        *,
        route: str | None = None,
        method: str | None = None,
        window: Window | str = Window.H1,
        limit: int = 10,
    ) -> list[Exemplar]:
        """The slowest traces with their ids, slowest first."""
        seconds = Window(window).seconds
        since = None if seconds is None else self.clock.now_s() - seconds
        return self.findings.exemplars(route=route, method=method, since_s=since, limit=limit)

    def errors(self, limit: int = 50) -> list[ErrorSample]:
        """Recent error samples (exception type, sanitized message), newest first."""
        return self.findings.errors(limit)

    def n_plus_one(self, limit: int = 50) -> list[NPlusOnePattern]:
        """Recent N+1 query patterns, newest first."""
        return self.findings.n_plus_one(limit)

    # -- health ----------------------------------------------------------------------------
    def self_telemetry(self, last_collection_age_s: float | None = None) -> SelfTelemetry:
        """Counters of the monitoring itself (and of the shared store, if any)."""
        persist_stats = getattr(self.store, "persist_stats", None)  # a SqliteStore
        store = None
        if persist_stats is not None:
            p = persist_stats()
            store = StoreTelemetry(
                failing=p.failing,
                writes=p.writes,
                write_errors=p.write_errors,
                read_errors=p.read_errors,
                backlog=p.backlog,
                dropped=p.dropped,
            )
        return SelfTelemetry(
            internal_errors=self.guard.internal_errors,
            dropped=self.guard.dropped,
            clock_steps=self.guard.clock_steps,
            series=self.store.series_count(),
            overflowed=self.store.overflowed,
            collections=self._collections(),
            last_collection_age_s=last_collection_age_s,
            store=store,
        )

    def health(self, active_alerts: int = 0) -> HealthStatus:
        """Overall health: unhealthy at >= 10 % errors over 5 min, degraded at >= 1 %,
        when a route's p95 exceeds the latency threshold, or with active alerts."""
        recent = self.service(Window.M5)
        total = self.service(Window.ALL)
        endpoints = self.endpoints(Window.M5)
        telemetry = self.self_telemetry()
        notes = []
        if telemetry.store is not None and telemetry.store.failing:
            # the monitoring's fault, not the service's: named, the state left as it is
            notes.append(
                f"monitoring store failing: {telemetry.store.write_errors} write error(s),"
                f" {telemetry.store.backlog} entries waiting to be written"
            )
        return health_status(
            recent=recent,
            total=total,
            endpoints=endpoints,
            latency_threshold_ms=self.latency_threshold_ms,
            active_alerts=active_alerts,
            uptime_s=self.uptime_s,
            self_telemetry=telemetry,
            notes=notes,
        )

    # -- derived from endpoints -------------------------------------------------------------
    def endpoint(
        self, route: str, method: str | None = None, window: Window | str = Window.H1
    ) -> list[EndpointStats]:
        """Statistics of one route template (every method, or just ``method``)."""
        return self.endpoints(window, route=route, method=method.upper() if method else None)

    def top_endpoints(
        self, window: Window | str = Window.H1, *, limit: int = 10
    ) -> list[EndpointStats]:
        """The worst endpoints: by error rate, then p95 latency."""
        return worst_endpoints(self.endpoints(window), limit)


from otel_monitoring.store.memory import Kind as _Kind  # noqa: E402

_HIST = _Kind.HISTOGRAM

_IS_A_VIEW: type[StatsView] = Stats  # mypy proves that Stats satisfies StatsView
