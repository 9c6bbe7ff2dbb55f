"""Rules and live statistics -> findings for the alert engine (:mod:`.engine`).

* Threshold rules read the statistic over the rule's window, per route, per DB statement or
  service-wide, skipping subjects with fewer than ``min_requests`` requests.
* SLO rules compute error-budget burn rates (bad fraction / budget) over a long and a short
  window, of the whole fleet in fleet mode; both must exceed the factor (14.4x over 1 h and
  5 min, 6x over 6 h and 30 min for a 30-day objective), and each window needs enough
  requests (low-traffic guard).
* Anomaly rules read the live scores (:mod:`otel_monitoring.analysis.live_scores`: a streaming
  detector fed each completed bucket once; in fleet mode :mod:`otel_monitoring.fleet.scores`,
  fed from Prometheus) and fire on an alarm until ``quiet_points`` buckets pass without one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from otel_monitoring.alerting.model import Finding
from otel_monitoring.alerting.rules import (
    AnomalyRule,
    Rule,
    Scope,
    SloRule,
    Statistic,
    ThresholdRule,
)
from otel_monitoring.analysis.live_scores import History
from otel_monitoring.self_telemetry import Guard
from otel_monitoring.stats.local import Stats
from otel_monitoring.stats.timeseries import TimeseriesMetric
from otel_monitoring.stats.view import StatsView
from otel_monitoring.types import EndpointStats, ServiceStats

__all__ = ["ChartScores", "Evaluator"]


class ChartScores(Protocol):
    """Scored chart points for anomaly rules: this process's
    :class:`~otel_monitoring.analysis.live_scores.LiveScores` or, in fleet mode, the fleet's
    :class:`~otel_monitoring.fleet.scores.FleetScores`."""

    def histories(
        self, metric: TimeseriesMetric, route: str | None, method: str | None, step: float
    ) -> list[History]: ...


def _http_value(stat: Statistic, s: EndpointStats | ServiceStats) -> float | None:
    return {
        Statistic.LATENCY_P50: s.latency.p50_ms,
        Statistic.LATENCY_P95: s.latency.p95_ms,
        Statistic.LATENCY_P99: s.latency.p99_ms,
        Statistic.LATENCY_AVG: s.latency.avg_ms,
        Statistic.ERROR_RATE: s.error_rate,
        Statistic.THROUGHPUT: s.throughput_rpm,
        Statistic.REQUESTS: float(s.requests),
    }.get(stat)


def _verdict(rule: ThresholdRule, value: float) -> tuple[bool, bool]:
    if rule.above:
        return value > rule.threshold, value <= rule.recovery
    return value < rule.threshold, value >= rule.recovery


class Evaluator:
    """Callable source of findings for the alert engine."""

    def __init__(
        self,
        stats: Stats,
        rules: Sequence[Rule],
        guard: Guard,
        live: ChartScores | None = None,
        *,
        view: StatsView | None = None,
    ) -> None:
        """``view`` (for example the fleet's statistics) answers threshold and SLO rules in
        place of ``stats``; anomaly rules read ``live`` (in fleet mode, the fleet's charts)."""
        self.stats = stats
        self.view: StatsView = view if view is not None else stats
        self.rules = tuple(rules)
        self.guard = guard
        self.live = live

    def __call__(self) -> list[Finding]:
        found: list[Finding] = []
        for rule in self.rules:
            try:
                if isinstance(rule, ThresholdRule):
                    found.extend(self._threshold(rule))
                elif isinstance(rule, SloRule):
                    found.extend(self._slo(rule))
                else:
                    found.extend(self._anomaly(rule))
            except Exception as exc:  # one bad rule must not stop the others
                self.guard.error(f"rule {rule.name}", exc)
        return found

    # -- thresholds --------------------------------------------------------------------------
    def _finding(
        self,
        rule: ThresholdRule,
        labels: tuple[tuple[str, str], ...],
        value: float,
        subject: str,
        requests: int,
    ) -> Finding:
        breach, recovered = _verdict(rule, value)
        unit = rule.statistic.unit
        side = ">" if rule.above else "<"
        return Finding(
            rule=rule.name,
            severity=rule.severity,
            labels=labels,
            value=round(value, 3),
            threshold=rule.threshold,
            summary=f"{subject}: {rule.statistic.value} {value:.1f} {unit} over"
            f" {rule.window.value} ({side} {rule.threshold:g} {unit}; {requests} requests)",
            breach=breach,
            recovered=recovered,
            for_s=rule.for_s,
            keep_firing_for_s=rule.keep_firing_for_s,
        )

    def _threshold(self, rule: ThresholdRule) -> list[Finding]:
        found = []
        if rule.scope is Scope.SERVICE:
            service = self.view.service(rule.window)
            value = _http_value(rule.statistic, service)
            if value is not None and service.requests >= rule.min_requests:
                found.append(
                    self._finding(rule, (("scope", "service"),), value, "service", service.requests)
                )
        elif rule.scope is Scope.ROUTE:
            for e in self.view.endpoints(rule.window, route=rule.route, method=rule.method):
                value = _http_value(rule.statistic, e)
                if value is not None and e.requests >= rule.min_requests:
                    labels = (("method", e.method), ("route", e.route))
                    found.append(
                        self._finding(rule, labels, value, f"{e.method} {e.route}", e.requests)
                    )
        else:
            for q in self.view.db_statements(rule.window):
                value = q.max_ms if rule.statistic is Statistic.DB_MAX else q.p95_ms
                if value is not None and q.count >= rule.min_requests:
                    labels = (("statement", q.summary), ("system", q.system))
                    found.append(self._finding(rule, labels, value, q.summary, q.count))
        return found

    # -- SLOs --------------------------------------------------------------------------------
    def _bad_ratio(self, rule: SloRule, window_s: float) -> tuple[float, int]:
        threshold = rule.latency_threshold_ms if rule.kind == "latency" else None
        requests, bad = self.view.slo_counts(
            window_s, route=rule.route, method=rule.method, latency_threshold_ms=threshold
        )
        return (bad / requests if requests else 0.0), requests

    def _slo(self, rule: SloRule) -> list[Finding]:
        found = []
        short_minimum = max(5, rule.min_requests // 10)
        for window in rule.windows:
            long_ratio, long_n = self._bad_ratio(rule, window.long_s)
            short_ratio, short_n = self._bad_ratio(rule, window.short_s)
            if long_n < rule.min_requests:
                continue  # low traffic: too few requests to judge a burn rate
            long_burn = long_ratio / rule.error_budget
            short_burn = short_ratio / rule.error_budget
            breach = (
                short_n >= short_minimum
                and long_burn > window.factor
                and short_burn > window.factor
            )
            hours = window.long_s / 3600.0
            found.append(
                Finding(
                    rule=rule.name,
                    severity=window.severity,
                    labels=(("slo", rule.name), ("window", f"{hours:g}h")),
                    value=round(long_burn, 3),
                    threshold=window.factor,
                    summary=f"SLO {rule.name} ({rule.objective:.3%} {rule.kind}): error budget"
                    f" burning {long_burn:.1f}x over {hours:g} h and {short_burn:.1f}x over"
                    f" {window.short_s / 60:g} min (alert above {window.factor:g}x)",
                    breach=breach,
                    recovered=not breach,
                )
            )
        return found

    # -- anomalies ---------------------------------------------------------------------------
    def _anomaly(self, rule: AnomalyRule) -> list[Finding]:
        import analyzers

        if self.live is None:
            return []
        threshold = float(analyzers.Sensitivity[rule.sensitivity.upper()].value)
        tiers = self.stats.store.tiers
        step = tiers[1 if rule.resolution == "minute" and len(tiers) > 1 else 0].width_s
        metric = TimeseriesMetric(rule.statistic.value)
        found = []
        for history in self.live.histories(metric, rule.route, rule.method, step):
            alarms = np.flatnonzero(history.scores >= threshold)
            if not len(alarms):
                continue
            last_t, at = history.times_s[-1], alarms[-1]
            alarm_t, value = history.times_s[at], float(history.values[at])
            score = float(history.scores[at])
            breach = round((last_t - alarm_t) / history.step_s) < rule.quiet_points
            subject = f"{rule.method or ''} {rule.route or 'service'}".strip()
            found.append(
                Finding(
                    rule=rule.name,
                    severity=rule.severity,
                    labels=(("route", rule.route or "service"), ("statistic", metric.value)),
                    value=round(value, 3),
                    threshold=threshold,
                    summary=f"{subject}: anomalous {metric.value} ({value:.1f}"
                    f" {rule.statistic.unit}, anomaly score {score:.2f})",
                    breach=breach,
                    recovered=not breach,
                )
            )
        return found[:1]
