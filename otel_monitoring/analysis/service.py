"""One analysis service behind both the Monitor's methods and the HTTP API.

:class:`Analysis` is built once by the Monitor with its collaborators (the local statistics,
the view the API reads, the store, the findings, the alert engine, the audit log, the live
scores and the clock) and holds no reference back to the Monitor. The Monitor's documented
methods (``get_alerts``, ``detect_latency_anomalies``, ``calculate_trend``, ...) are one-line
delegations to it, and the router only parses, calls it and renders, so every answer is
computed in one place.

Units: times are Unix seconds, windows and ages seconds, latencies milliseconds (as in
:mod:`otel_monitoring.types`). Methods that read statistics may collect first (they take the
store lock): the API calls them off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from otel_monitoring.analysis.live_scores import History, LiveScores
from otel_monitoring.stats.timeseries import Series, TimeseriesMetric
from otel_monitoring.types import EndpointStats, HealthStatus, Window

if TYPE_CHECKING:
    import analyzers
    from otel_monitoring.alerting.engine import AlertEngine
    from otel_monitoring.alerting.model import Alert
    from otel_monitoring.analysis.bridge import AnomalyPoint, Insights
    from otel_monitoring.audit import AuditLog, AuditRecord
    from otel_monitoring.capture.spans import TraceFindings
    from otel_monitoring.clock import Clock
    from otel_monitoring.fleet.stats import FleetStats
    from otel_monitoring.stats.local import EndpointSort, Stats
    from otel_monitoring.stats.view import StatsView
    from otel_monitoring.store.memory import MetricStore

__all__ = [
    "ALERT_STATES",
    "MAX_CLEANUP_AGE_S",
    "AlertAlreadyResolvedError",
    "AlertNotFoundError",
    "Analysis",
    "CleanupResult",
    "Dashboard",
    "Detection",
    "TrendReport",
]

#: The largest ``max_age`` a cleanup takes, in seconds (31 years: cutoffs stay datable).
MAX_CLEANUP_AGE_S = 1e9

#: The alert states :meth:`Analysis.alerts` accepts (``active`` = pending and firing).
ALERT_STATES = ("active", "pending", "firing", "resolved", "all")

#: Routes (the busiest) whose last hour of p95 is checked for regressions and trends.
_CHARTED_ROUTES = 10

#: Endpoints on the dashboard's worst-endpoints table.
_DASHBOARD_TOP = 10

_NO_DATA = "no data for this series in the window"


def _seconds(window: Window | str) -> float:
    """The look-back of ``window`` in seconds; ``all`` reads the last 24 h of charts."""
    return Window(window).seconds or 86400.0


@dataclass(frozen=True, slots=True)
class CleanupResult:
    """What a cleanup removed; ``cutoff_s`` is the wall time (Unix s) before which data went."""

    cutoff_s: float
    buckets_removed: int
    findings_removed: int
    alerts_removed: int


@dataclass(frozen=True, slots=True)
class Dashboard:
    """The executive dashboard: health, the worst endpoints, active alerts, the findings that
    are not recommendations (``insights``) and the recommendations."""

    health: HealthStatus
    top_endpoints: list[EndpointStats]
    active_alerts: list[Alert]
    insights: tuple[analyzers.Insight, ...]
    recommendations: tuple[analyzers.Insight, ...]


@dataclass(frozen=True, slots=True)
class Detection:
    """Anomaly detection on one series: ``points`` with data, their step (s), the score
    threshold in [0, 1], the alarms, and why there are none when ``points`` is 0."""

    step_s: float
    points: int
    threshold: float
    anomalies: list[AnomalyPoint]
    reason: str | None


@dataclass(frozen=True, slots=True)
class TrendReport:
    """A trend over a chart's or a live chart's finest points: ``points`` with data, their
    step (s), the trend (``None`` with a ``reason`` when there is none) and the moving
    average (5 points wide) of the last 20 points, finite values only."""

    metric: TimeseriesMetric
    step_s: float
    points: int
    result: analyzers.TrendResult | None
    reason: str | None
    moving_average: list[float]


class AlertNotFoundError(LookupError):
    """No alert with this id (the message is the API's 404 detail)."""


class AlertAlreadyResolvedError(LookupError):
    """The alert exists but is already resolved (the message is the API's 409 detail)."""


class Analysis:
    """Reads, analyses and maintains the monitoring data; see the module docstring.

    Thread-safe as its collaborators are; never holds a lock of its own.
    """

    def __init__(
        self,
        *,
        stats: Stats,
        fleet: FleetStats | None,
        store: MetricStore,
        findings: TraceFindings,
        alerts: AlertEngine,
        audit: AuditLog,
        live_scores: LiveScores,
        clock: Clock,
        retention_s: float,
        latency_threshold_ms: float,
        db_threshold_ms: float,
    ) -> None:
        """``stats``: this process's statistics; ``fleet``: the fleet's, when the API reads
        route statistics from Prometheus; ``retention_s``: the default cleanup age (s);
        thresholds in milliseconds for the insights."""
        #: This process's statistics (traces, findings, caches, ... are per instance).
        self.stats = stats
        #: Route statistics for the API: the fleet (Prometheus) or this process.
        self.view: StatsView = fleet if fleet is not None else stats
        self._fleet = fleet
        self._store = store
        self._findings = findings
        self._alerts = alerts
        self._audit = audit
        self._live = live_scores
        self._clock = clock
        self._retention_s = retention_s
        self._latency_threshold_ms = latency_threshold_ms
        self._db_threshold_ms = db_threshold_ms

    # -- health and dashboard -----------------------------------------------------------------
    def health(self) -> HealthStatus:
        """Health of the view (fleet or process), with this process's active alerts counted."""
        return self.view.health(active_alerts=len(self._alerts.active()))

    def local_health(self) -> HealthStatus:
        """Health of this process's statistics, with the active alerts counted."""
        return self.stats.health(active_alerts=len(self._alerts.active()))

    def dashboard(self, window: Window | str = Window.H1) -> Dashboard:
        """Health, the 10 worst endpoints, active alerts and insights over ``window``."""
        found = self.insights(window)
        active = self._alerts.active()
        return Dashboard(
            health=self.view.health(active_alerts=len(active)),
            top_endpoints=self.view.top_endpoints(window, limit=_DASHBOARD_TOP),
            active_alerts=active,
            insights=tuple(i for i in found.insights if i not in found.recommendations),
            recommendations=found.recommendations,
        )

    # -- endpoints ----------------------------------------------------------------------------
    def endpoints(
        self, window: Window | str, *, sort: EndpointSort | str, limit: int
    ) -> list[EndpointStats]:
        """Statistics of every route template and method in the view, in ``sort`` order."""
        return self.view.endpoints(window, sort=sort, limit=limit)

    def endpoint(self, route: str, method: str | None, window: Window | str) -> list[EndpointStats]:
        """Statistics of one route template in the view (per method, or one ``method``)."""
        return self.view.endpoint(route, method, window)

    def known_routes(self) -> list[str]:
        """Every route template the view has statistics for, sorted."""
        return sorted({e.route for e in self.view.endpoints(Window.ALL)})

    # -- alerts -------------------------------------------------------------------------------
    def alerts(self, state: str = "active", limit: int | None = None) -> list[Alert]:
        """Alerts by state, after a refresh: ``active`` (pending and firing), ``pending``,
        ``firing``, ``resolved`` (newest first, at most ``limit`` or 100) or ``all``; at most
        ``limit`` in all when given.

        Raises:
            ValueError: unknown state.
        """
        if state not in ALERT_STATES:
            raise ValueError(f"unknown state {state!r}: use one of {', '.join(ALERT_STATES)}")
        self.stats.refresh()
        found: list[Alert] = []
        if state != "resolved":
            found += [
                a
                for a in self._alerts.active()
                if state in ("active", "all") or a.state.value == state
            ]
        if state in ("resolved", "all"):
            found += self._alerts.resolved() if limit is None else self._alerts.resolved(limit)
        return found if limit is None else found[:limit]

    def resolve_alert(self, alert_id: str, *, who: str, reason: str) -> Alert:
        """Resolve an active alert; the attempt is audited whatever its outcome.

        Raises:
            AlertAlreadyResolvedError: the alert is already resolved.
            AlertNotFoundError: no alert with this id.
        """
        resolved = self._alerts.resolve(alert_id, who=who, reason=reason)
        known = resolved is not None or self._alerts.get(alert_id) is not None
        result = "not found" if not known else "resolved" if resolved else "already resolved"
        self._audit.append(
            who=who, action="resolve_alert", target=alert_id, reason=reason, result=result
        )
        if resolved is not None:
            return resolved
        if known:
            raise AlertAlreadyResolvedError(f"alert {alert_id} is already resolved")
        raise AlertNotFoundError(f"no active alert with id {alert_id!r}")

    # -- maintenance --------------------------------------------------------------------------
    def cleanup(
        self, max_age_s: float | None = None, *, who: str = "python", reason: str = "maintenance"
    ) -> CleanupResult:
        """Remove data older than ``max_age_s`` (default: the retention); audited.

        Raises:
            ValueError: ``max_age_s`` is not between 0 and :data:`MAX_CLEANUP_AGE_S` (checked
                before anything is removed).
        """
        age = self._retention_s if max_age_s is None else max_age_s
        if not 0 <= age <= MAX_CLEANUP_AGE_S:  # also refuses NaN
            raise ValueError(f"max_age_s must be between 0 and {MAX_CLEANUP_AGE_S:.0f} (31 years)")
        cutoff = self._clock.now_s() - age
        result = CleanupResult(
            cutoff_s=cutoff,
            buckets_removed=self._store.drop_before(cutoff),
            findings_removed=self._findings.clear_before(cutoff),
            alerts_removed=self._alerts.clear_resolved_before(cutoff),
        )
        self._audit.append(
            who=who,
            action="cleanup",
            target=f"data older than {age:.0f} s",
            reason=reason,
            result=f"{result.buckets_removed} buckets, {result.findings_removed} findings,"
            f" {result.alerts_removed} alerts removed",
        )
        return result

    def audit_records(self, limit: int) -> list[AuditRecord]:
        """The audit trail of mutating calls, newest first, at most ``limit``."""
        return self._audit.records(limit)

    # -- charts -------------------------------------------------------------------------------
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
        chart = TimeseriesMetric(metric)
        verb = method.upper() if method else None
        window_s = _seconds(window)
        if self._fleet is not None:
            return self._fleet.timeseries(chart, window_s=window_s, route=route, method=verb)
        return self._local_chart(chart, route, verb, window_s)

    def _local_chart(
        self, chart: TimeseriesMetric, route: str | None, verb: str | None, window_s: float
    ) -> Series:
        """This process's chart (fleet mode or not), from the store and the live scores."""
        from otel_monitoring.stats.timeseries import http_series

        self.stats.refresh()
        return http_series(
            self._store,
            chart,
            window_s=window_s,
            now_s=self._clock.now_s(),
            route=route,
            method=verb,
            cached=lambda step: self._live.cached(chart, route, verb, step),
        )

    @property
    def chart_scores(self) -> LiveScores | None:
        """The live scores that belong to :meth:`chart`'s series: this process's, or none in
        fleet mode (the fleet's charts are scored afresh, not with one instance's scores)."""
        return self._live if self._fleet is None else None

    def chart_with_anomalies(
        self,
        metric: TimeseriesMetric | str,
        route: str | None,
        method: str | None,
        window: Window | str,
        *,
        anomalies: bool = True,
    ) -> tuple[Series, list[AnomalyPoint]]:
        """:meth:`chart` and, when ``anomalies``, its alarms at medium sensitivity."""
        series = self.chart(metric, route, method, window)
        if not anomalies:
            return series, []
        from otel_monitoring.analysis.bridge import detect

        return series, detect(series, live=self.chart_scores)[1]

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
        chart = TimeseriesMetric(metric)
        live = self._live
        if self._fleet is not None:
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
        window_s = _seconds(window)
        if window_s > live.fine_history_s + 1e-6:
            raise ValueError(
                f"the finest points ({live.fine_step_s:g} s) are kept for the last"
                f" {live.fine_history_s:g} s; ask for a shorter window or raise"
                " OTEL_MONITORING_FINE_HISTORY (up to 24h)"
            )
        self.stats.refresh()
        now = self._clock.now_s()
        verb = method.upper() if method else None
        if route is not None and verb is None:
            methods = live.methods(chart, route, live.fine_step_s)
            if len(methods) > 1:
                raise ValueError(f"route {route!r} has methods {', '.join(methods)}: give one")
            verb = methods[0] if methods else None
        found = live.history(chart, route, verb, live.fine_step_s, now - window_s, now)
        return found if found is not None else History.empty(chart, live.fine_step_s)

    def _finest_or_reason(
        self,
        metric: TimeseriesMetric | str,
        route: str | None,
        method: str | None,
        window: Window | str,
    ) -> tuple[History, str | None]:
        """A live chart's finest points, or none and the reason they are not available."""
        try:
            return self.finest(metric, route, method, window), None
        except ValueError as exc:
            return History.empty(TimeseriesMetric(metric), self._live.fine_step_s), str(exc)

    # -- anomalies ----------------------------------------------------------------------------
    def detect_latency_anomalies(
        self,
        route: str | None = None,
        method: str | None = None,
        window: Window | str = Window.H1,
        sensitivity: str = "medium",
        resolution: str = "chart",
    ) -> list[AnomalyPoint]:
        """Anomalies of p95 latency (service or one route): points with score and value.

        ``resolution="finest"`` reads the live chart's finest points (see :meth:`finest`).

        Raises:
            ValueError: unknown sensitivity, or the finest points are not available.
        """
        from otel_monitoring.analysis.bridge import detect, detect_history

        if resolution == "finest":
            return detect_history(self.finest("latency_p95", route, method, window), sensitivity)[1]
        series = self.chart("latency_p95", route, method, window)
        return detect(series, sensitivity, live=self.chart_scores)[1]

    def detect(
        self,
        metric: TimeseriesMetric | str,
        route: str | None,
        method: str | None,
        window: Window | str,
        *,
        sensitivity: str = "medium",
        resolution: str = "chart",
        who: str | None = None,
    ) -> Detection:
        """Anomaly detection on any statistic; finest points that are not available give an
        empty detection with the reason. With ``who``, the run is audited.

        Raises:
            ValueError: unknown sensitivity (nothing audited).
        """
        from otel_monitoring.analysis.bridge import detect, detect_history

        chart = TimeseriesMetric(metric)
        reason = _NO_DATA
        if resolution == "finest":
            history, unavailable = self._finest_or_reason(chart, route, method, window)
            threshold, marks = detect_history(history, sensitivity)
            observed, step_s = len(history.values), history.step_s
            reason = unavailable or reason
        else:
            series = self.chart(chart, route, method, window)
            threshold, marks = detect(series, sensitivity, live=self.chart_scores)
            observed = sum(1 for p in series.points if p.value is not None)
            step_s = series.step_s
        found = Detection(
            step_s=step_s,
            points=observed,
            threshold=threshold,
            anomalies=marks,
            reason=None if observed else reason,
        )
        if who is not None:
            self._audit.append(
                who=who,
                action="detect_anomalies",
                target=f"{chart.value} {method or ''} {route or 'service'}".strip(),
                reason=f"window {Window(window).value}, sensitivity {sensitivity}",
                result=f"{len(marks)} anomalies in {observed} points",
            )
        return found

    # -- trends and correlations --------------------------------------------------------------
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

        Raises:
            analyzers.AnalysisError: fewer than 3 points with data.
            ValueError: the finest points are not available.
        """
        import analyzers
        from otel_monitoring.analysis.bridge import trend

        if resolution == "finest":
            history = self.finest(metric, route, method, window)
            return analyzers.analyze_trend(history.times_s, history.values)
        return trend(self.chart(metric, route, method, window))

    def trend_report(
        self,
        metric: TimeseriesMetric | str,
        route: str | None,
        method: str | None,
        window: Window | str,
        resolution: str = "chart",
    ) -> TrendReport:
        """The trend of a statistic and its recent moving average; never raises for missing
        data (the report says why there is no trend)."""
        import numpy as np

        import analyzers
        from otel_monitoring.analysis.bridge import observed

        chart = TimeseriesMetric(metric)
        unavailable: str | None = None
        if resolution == "finest":
            history, unavailable = self._finest_or_reason(chart, route, method, window)
            times, values, step_s = history.times_s, history.values, history.step_s
        else:
            series = self.chart(chart, route, method, window)
            times, values = map(np.asarray, observed(series))
            step_s = series.step_s

        def empty(reason: str) -> TrendReport:
            return TrendReport(chart, step_s, len(values), None, reason, [])

        if unavailable is not None:
            return empty(unavailable)
        try:
            result = analyzers.analyze_trend(times, values)
        except analyzers.AnalysisError as exc:
            return empty(str(exc))
        width = min(5, len(values))  # the last 20 averages need only the last 20 + width - 1
        average = analyzers.simple_moving_average(values[-(20 + width - 1) :], width)
        moving = [float(v) for v in average[-20:] if np.isfinite(v)]
        return TrendReport(chart, step_s, len(values), result, None, moving)

    def detect_correlation(self, window: Window | str = Window.H1) -> tuple[Any, ...]:
        """Correlations between throughput, error rate and routes' p95 (BH-corrected), on
        this process's statistics."""
        from otel_monitoring.analysis.bridge import correlations

        self.stats.refresh()
        return correlations(self.stats, window_s=_seconds(window), now_s=self._clock.now_s())

    # -- insights -----------------------------------------------------------------------------
    def insights(self, window: Window | str = Window.H1) -> Insights:
        """Insights and recommendations on the live statistics of ``window``."""
        from otel_monitoring.analysis.bridge import insights

        busiest = self.stats.endpoints(window, limit=_CHARTED_ROUTES)
        return insights(
            self.stats,
            window=Window(window),
            latency_threshold_ms=self._latency_threshold_ms,
            db_threshold_ms=self._db_threshold_ms,
            # this process's charts, as ``self.stats`` (traces and findings are per instance)
            latency_series=[
                self._local_chart(TimeseriesMetric.LATENCY_P95, e.route, e.method, 3600.0)
                for e in busiest
            ],
            versions=self._store.versions(),
        )

    def performance_insights(self, window: Window | str = Window.H1) -> tuple[Any, ...]:
        """Every finding on the live statistics, with its evidence."""
        return self.insights(window).insights

    def recommendations(self, window: Window | str = Window.H1) -> tuple[Any, ...]:
        """Findings of warning severity and above; each says what to do."""
        return self.insights(window).recommendations
