"""The original description's operations, as methods of :class:`~otel_monitoring.Monitor`.

A team that knew the ``MetricsCollector`` / ``AnalyticsEngine`` design finds each operation
here under its old name. Recording goes through the same OTel instruments as automatic
capture, so manual and automatic data share one aggregation; reading returns the same frozen
dataclasses as ``monitor.stats``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from otel_monitoring.types import EndpointStats, HealthStatus, Window

if TYPE_CHECKING:
    import analyzers
    from otel_monitoring.alerts import Alert, AlertEngine
    from otel_monitoring.analysis import Insights
    from otel_monitoring.audit import AuditLog
    from otel_monitoring.clock import Clock
    from otel_monitoring.config import Settings
    from otel_monitoring.fleet.stats import FleetStats
    from otel_monitoring.guard import Guard
    from otel_monitoring.instruments import Instruments
    from otel_monitoring.live_scores import History, LiveScores
    from otel_monitoring.processor import TraceFindings
    from otel_monitoring.stats import Stats
    from otel_monitoring.store import MetricStore
    from otel_monitoring.timeseries import Series, TimeseriesMetric

__all__ = ["MAX_CLEANUP_AGE_S", "CleanupResult", "SeedOperations"]

#: The largest ``max_age`` a cleanup takes, in seconds (31 years: cutoffs stay datable).
MAX_CLEANUP_AGE_S = 1e9

#: Routes (the busiest) whose last hour of p95 is checked for regressions and trends.
_CHARTED_ROUTES = 10


@dataclass(frozen=True, slots=True)
class CleanupResult:
    """What a cleanup removed; ``cutoff_s`` is the wall time before which data went."""

    cutoff_s: float
    buckets_removed: int
    findings_removed: int
    alerts_removed: int


class SeedOperations:
    """Mixin of :class:`~otel_monitoring.monitor.Monitor`; see the module docstring."""

    settings: Settings
    clock: Clock
    guard: Guard
    store: MetricStore
    findings: TraceFindings
    stats: Stats
    alerts: AlertEngine
    audit: AuditLog
    instruments: Instruments
    live_scores: LiveScores
    fleet: FleetStats | None

    def record_cache(self, hit: bool, cache: str = "default") -> None:
        raise NotImplementedError  # provided by Monitor

    # -- recording ---------------------------------------------------------------------------
    def record_request(
        self,
        method: str,
        route: str,
        status_code: int,
        duration_ms: float,
        response_size_bytes: int | None = None,
    ) -> None:
        """Record one request by hand (for work the middleware does not see). Never raises."""
        try:
            attributes: dict[str, Any] = {
                "http.request.method": method.upper(),
                "http.route": route,
                "http.response.status_code": status_code,
            }
            if status_code >= 500:
                attributes["error.type"] = str(status_code)
            self.instruments.http_duration.record(max(0.0, duration_ms) / 1000.0, attributes)
            if response_size_bytes is not None:
                self.instruments.http_response_size.record(response_size_bytes, attributes)
        except Exception as exc:  # instrumentation boundary
            self.guard.error("record_request", exc)

    def record_cache_hit(self, cache: str = "default", hit: bool = True) -> None:
        """Count a cache look-up (the original name of :meth:`record_cache`)."""
        self.record_cache(hit, cache)

    def record_database_query(
        self, statement: str, duration_ms: float, *, system: str = "other", error: str | None = None
    ) -> None:
        """Record one DB operation by hand (engines given to ``instrument_app`` are automatic)."""
        from otel_monitoring.sql import summarize_statement

        try:
            summary, operation = summarize_statement(statement)
            attributes = {
                "db.system.name": system,
                "db.query.summary": summary,
                "db.operation.name": operation,
            }
            if error is not None:
                attributes["error.type"] = error
            self.instruments.db_duration.record(max(0.0, duration_ms) / 1000.0, attributes)
        except Exception as exc:  # instrumentation boundary
            self.guard.error("record_database_query", exc)

    # -- reading -----------------------------------------------------------------------------
    def get_endpoint_stats(
        self, route: str, method: str | None = None, window: Window | str = Window.H1
    ) -> list[EndpointStats]:
        """Statistics of one route template (per method)."""
        return self.stats.endpoint(route, method, window)

    def get_health_status(self) -> HealthStatus:
        """Overall health, with the active alerts counted."""
        return self.stats.health(active_alerts=len(self.alerts.active()))

    def get_top_endpoints(
        self, limit: int = 10, window: Window | str = Window.H1
    ) -> list[EndpointStats]:
        """The worst endpoints (error rate, then p95)."""
        return self.stats.top_endpoints(window, limit=limit)

    def get_alerts(self, state: str = "active") -> list[Alert]:
        """Alerts: ``active`` (pending and firing), ``resolved`` or ``all``."""
        self.stats.refresh()
        active = self.alerts.active()
        if state == "active":
            return active
        if state == "resolved":
            return self.alerts.resolved()
        if state == "all":
            return [*active, *self.alerts.resolved()]
        raise ValueError(f"unknown state {state!r}: use active, resolved or all")

    def cleanup_old_metrics(
        self, max_age_s: float | None = None, *, who: str = "python", reason: str = "maintenance"
    ) -> CleanupResult:
        """Remove data older than ``max_age_s`` (default: the retention); audited.

        Raises:
            ValueError: ``max_age_s`` is not between 0 and :data:`MAX_CLEANUP_AGE_S` (checked
                before anything is removed).
        """
        age = self.settings.retention_s if max_age_s is None else max_age_s
        if not 0 <= age <= MAX_CLEANUP_AGE_S:  # also refuses NaN
            raise ValueError(f"max_age_s must be between 0 and {MAX_CLEANUP_AGE_S:.0f} (31 years)")
        cutoff = self.clock.now_s() - age
        result = CleanupResult(
            cutoff_s=cutoff,
            buckets_removed=self.store.drop_before(cutoff),
            findings_removed=self.findings.clear_before(cutoff),
            alerts_removed=self.alerts.clear_resolved_before(cutoff),
        )
        self.audit.append(
            who=who,
            action="cleanup",
            target=f"data older than {age:.0f} s",
            reason=reason,
            result=f"{result.buckets_removed} buckets, {result.findings_removed} findings,"
            f" {result.alerts_removed} alerts removed",
        )
        return result

    # -- analysis ----------------------------------------------------------------------------
    def chart(
        self,
        metric: TimeseriesMetric | str,
        route: str | None = None,
        method: str | None = None,
        window: Window | str = Window.H1,
    ) -> Series:
        """Chart points of a statistic over ``window`` (``all`` = the last 24 h), for the
        service or one route (and method), fresh from the store; in fleet mode, the fleet's
        from Prometheus (``PrometheusError`` when it cannot answer)."""
        from otel_monitoring.timeseries import TimeseriesMetric

        chart = TimeseriesMetric(metric)
        verb = method.upper() if method else None
        window_s = Window(window).seconds or 86400.0
        if self.fleet is not None:
            return self.fleet.timeseries(chart, window_s=window_s, route=route, method=verb)
        return self._local_chart(chart, route, verb, window_s)

    def _local_chart(
        self, chart: TimeseriesMetric, route: str | None, verb: str | None, window_s: float
    ) -> Series:
        """This process's chart (fleet mode or not), from the store and the live scores."""
        from otel_monitoring.timeseries import http_series

        self.stats.refresh()
        return http_series(
            self.store,
            chart,
            window_s=window_s,
            now_s=self.clock.now_s(),
            route=route,
            method=verb,
            cached=lambda step: self.live_scores.cached(chart, route, verb, step),
        )

    @property
    def chart_scores(self) -> LiveScores | None:
        """The live scores that belong to :meth:`chart`'s series: this process's, or none in
        fleet mode (the fleet's charts are scored afresh, not with one instance's scores)."""
        return self.live_scores if self.fleet is None else None

    def finest(
        self,
        metric: TimeseriesMetric | str,
        route: str | None = None,
        method: str | None = None,
        window: Window | str = Window.H1,
    ) -> History:
        """The finest points (one per collection) of a live chart over ``window`` with the
        anomaly scores they got as they arrived, without rescoring; a day of them when
        ``OTEL_MONITORING_FINE_HISTORY=24h``. Empty when the chart has no data yet.

        Raises:
            ValueError: ``metric`` is not one the live charts watch, ``window`` reaches
                beyond the finest history, a route with several methods and no method, or
                fleet mode (the finest points are one instance's).
        """
        from otel_monitoring.live_scores import History
        from otel_monitoring.timeseries import TimeseriesMetric

        chart = TimeseriesMetric(metric)
        live = self.live_scores
        if self.fleet is not None:
            raise ValueError(
                "in fleet mode the charts come from Prometheus, in steps of its scrape interval"
                " or more; the finest points are one instance's: use the chart resolution"
            )
        if chart not in live.metrics:
            watched = ", ".join(m.value for m in live.metrics)
            raise ValueError(
                f"the finest points are kept for {watched}; use the chart resolution for"
                f" {chart.value}"
            )
        window_s = Window(window).seconds or 86400.0
        if window_s > live.fine_history_s + 1e-6:
            raise ValueError(
                f"the finest points ({live.fine_step_s:g} s) are kept for the last"
                f" {live.fine_history_s:g} s; ask for a shorter window or raise"
                " OTEL_MONITORING_FINE_HISTORY (up to 24h)"
            )
        self.stats.refresh()
        now = self.clock.now_s()
        verb = method.upper() if method else None
        if route is not None and verb is None:
            methods = live.methods(chart, route, live.fine_step_s)
            if len(methods) > 1:
                raise ValueError(f"route {route!r} has methods {', '.join(methods)}: give one")
            verb = methods[0] if methods else None
        found = live.history(chart, route, verb, live.fine_step_s, now - window_s, now)
        return found if found is not None else History.empty(chart, live.fine_step_s)

    def detect_latency_anomalies(
        self,
        route: str | None = None,
        method: str | None = None,
        window: Window | str = Window.H1,
        sensitivity: str = "medium",
        resolution: str = "chart",
    ) -> list[Any]:
        """Anomalies of p95 latency (service or one route): points with score and value.

        ``resolution="finest"`` reads the live chart's finest points (see :meth:`finest`).
        """
        from otel_monitoring.analysis import detect, detect_history

        if resolution == "finest":
            return detect_history(self.finest("latency_p95", route, method, window), sensitivity)[1]
        series = self.chart("latency_p95", route, method, window)
        return detect(series, sensitivity, live=self.chart_scores)[1]

    def calculate_trend(
        self,
        metric: TimeseriesMetric | str = "latency_p95",
        route: str | None = None,
        method: str | None = None,
        window: Window | str = Window.H1,
        resolution: str = "chart",
    ) -> analyzers.TrendResult:
        """Trend of a statistic: Mann-Kendall direction, Theil-Sen slope per hour, % change.

        ``resolution="finest"`` reads the live chart's finest points (see :meth:`finest`).
        """
        import analyzers
        from otel_monitoring.analysis import trend

        if resolution == "finest":
            history = self.finest(metric, route, method, window)
            return analyzers.analyze_trend(history.times_s, history.values)
        return trend(self.chart(metric, route, method, window))

    def detect_correlation(self, window: Window | str = Window.H1) -> tuple[Any, ...]:
        """Correlations between throughput, error rate and routes' p95 (BH-corrected)."""
        from otel_monitoring.analysis import correlations

        self.stats.refresh()
        return correlations(
            self.stats, window_s=Window(window).seconds or 86400.0, now_s=self.clock.now_s()
        )

    def insights(self, window: Window | str = Window.H1) -> Insights:
        """Insights and recommendations on the live statistics of ``window``."""
        from otel_monitoring.analysis import insights
        from otel_monitoring.timeseries import TimeseriesMetric

        busiest = self.stats.endpoints(window, limit=_CHARTED_ROUTES)
        return insights(
            self.stats,
            window=Window(window),
            latency_threshold_ms=self.settings.latency_threshold_ms,
            db_threshold_ms=self.settings.db_threshold_ms,
            # this process's charts, as ``self.stats`` (traces and findings are per instance)
            latency_series=[
                self._local_chart(TimeseriesMetric.LATENCY_P95, e.route, e.method, 3600.0)
                for e in busiest
            ],
            versions=self.store.versions(),
        )

    def get_performance_insights(self, window: Window | str = Window.H1) -> tuple[Any, ...]:
        """Every finding on the live statistics, with its evidence."""
        return self.insights(window).insights

    def get_recommendations(self, window: Window | str = Window.H1) -> tuple[Any, ...]:
        """Findings of warning severity and above; each says what to do."""
        return self.insights(window).recommendations
