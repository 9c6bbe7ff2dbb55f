"""The Monitor: one object holding the store, the reader, the processor and the providers.

Created by :func:`otel_monitoring.instrument_app` (or the zero-code configurator). It joins
OTel providers that already exist or creates them, and owns only what it created.
``shutdown()`` is bounded in time (``shutdown_timeout_s``, default 5 s) even when an
exporter hangs, and is safe to call twice.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import Tracer
from sqlalchemy.engine import Engine

from otel_monitoring.alerting.engine import AlertEngine
from otel_monitoring.alerting.evaluate import Evaluator
from otel_monitoring.alerting.notify import AlertLogEmitter, WebhookNotifier
from otel_monitoring.alerting.rules import (
    AnomalyRule,
    Rule,
    check_rules,
    default_rules,
    load_rules_file,
)
from otel_monitoring.analysis.live_scores import History, LiveScores
from otel_monitoring.analysis.service import Analysis, CleanupResult
from otel_monitoring.audit import AuditLog
from otel_monitoring.capture.instruments import Instruments
from otel_monitoring.capture.recording import Recorder
from otel_monitoring.capture.spans import MonitoringSpanProcessor, TraceFindings
from otel_monitoring.capture.sqlalchemy import DbListener, sync_engine_of
from otel_monitoring.clock import Clock, SystemClock
from otel_monitoring.collect.exporters import temporality_preference
from otel_monitoring.collect.ingest import Ingestor
from otel_monitoring.collect.merge import cumulative_policy
from otel_monitoring.collect.providers import (
    Exports,
    exports,
    forget_tracer_provider,
    join_meter_provider,
    join_tracer_provider,
    only_processor,
)
from otel_monitoring.collect.reader import MonitoringMetricReader
from otel_monitoring.config import Settings
from otel_monitoring.self_telemetry import Guard
from otel_monitoring.stats.local import Stats
from otel_monitoring.stats.timeseries import Series, TimeseriesMetric
from otel_monitoring.stats.view import StatsView
from otel_monitoring.store.memory import MetricStore
from otel_monitoring.types import EndpointStats, HealthStatus, Window

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    import analyzers
    from otel_monitoring.alerting.leader import SharedState
    from otel_monitoring.alerting.model import Alert
    from otel_monitoring.analysis.bridge import AnomalyPoint, Insights
    from otel_monitoring.fleet.exposition import PrometheusExposition
    from otel_monitoring.fleet.stats import FleetStats

__all__ = ["Monitor"]

_logger = logging.getLogger("otel_monitoring")
_SCOPE = "otel_monitoring"

_active_lock = threading.Lock()
_active: list[Monitor] = []


def active_monitor() -> Monitor | None:
    """The most recently created monitor that is not shut down, if any."""
    with _active_lock:
        return _active[-1] if _active else None


class Monitor:
    """Everything the package runs for one service. See the module docstring.

    The original ``MetricsCollector`` / ``AnalyticsEngine`` operations (``record_request``,
    ``get_alerts``, ``detect_latency_anomalies``, ...) keep their names here, each a one-line
    delegation to :attr:`recorder` (recording) or :attr:`analysis` (reading and analysis).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        span_exporters: Sequence[SpanExporter] | None = None,
        metric_exporters: Sequence[MetricExporter] | None = None,
        clock: Clock | None = None,
        env: Mapping[str, str] | None = None,
        rules: Sequence[Rule] | None = None,
        logger_provider: Any | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self.settings = settings or Settings.from_env(env)
        self.clock: Clock = clock or SystemClock()
        self.guard = Guard()
        # 1. storage and per-trace findings
        self.store = self._make_store()
        #: Seconds between collections into the store: the export interval, but no longer
        #: than the finest buckets (a collection's requests land in the bucket of its time,
        #: so a 60-s interval would leave 10-s buckets one clump a minute); exports still go
        #: out once per interval, merged.
        self.collect_s = min(self.settings.interval_s, self.store.tiers[0].width_s)
        self.findings = self._make_findings()
        # 2. where telemetry goes, our reader and span processor
        out = exports(self.settings, env, span_exporters, metric_exporters)
        self.exposition: PrometheusExposition | None = out.exposition
        self.reader = self._make_reader(out, env)
        self.processor = MonitoringSpanProcessor(self.findings, self.guard)
        # 3. join the app's providers (or make ours)
        self._join_providers(tracer_provider, meter_provider, out)
        self.service_version = self._note_service_version()
        # 4. capture: instruments, DB listener, manual recording
        self.tracer: Tracer = self.tracer_provider.get_tracer(_SCOPE)
        self.instruments = Instruments.create(self.meter_provider.get_meter(_SCOPE))
        self.db = DbListener(self.instruments, self.findings, self.guard)
        self.recorder = Recorder(self.instruments, self.guard)
        # 5. read side: statistics, live scores, the fleet
        self.stats = self._make_stats()
        self.rules = self._rules(rules)
        self.live_scores = self._make_live_scores()
        self.fleet: FleetStats | None = self._make_fleet()
        # 6. alerting, audit, shared state
        self.alerts = self._make_alerts(logger_provider)
        self.notifier: WebhookNotifier | None = self._make_notifier()
        self.audit = AuditLog(self.clock)
        self.shared: SharedState | None = self._make_shared()
        # 7. the one analysis service behind these methods and the HTTP API
        self.analysis = self._make_analysis()
        # 8. start
        self._local = threading.local()
        self.apps: list[Any] = []
        self._shutdown_done = False
        self._shutdown_lock = threading.Lock()
        #: Set once shutdown took our reader off a provider we joined: there is nothing more
        #: to collect, and the SDK warns at each try.
        self._reader_removed = False
        self.reader.start()
        with _active_lock:
            _active.append(self)

    # -- construction steps -------------------------------------------------------------------
    def _make_store(self) -> MetricStore:
        s = self.settings
        if s.store_url:
            from otel_monitoring.store.sqlite import SqliteStore

            store = SqliteStore.from_url(
                s.store_url, retention_s=s.retention_s, max_series=s.max_series, guard=self.guard
            )
            if (finest := store.tiers[0].width_s) != s.resolution_s:
                # the processes sharing a file must agree on its buckets: it keeps its own
                _logger.warning(
                    "otel-monitoring: OTEL_MONITORING_RESOLUTION=%gs is not used with a store"
                    " file (OTEL_MONITORING_STORE): its finest buckets are %gs",
                    s.resolution_s,
                    finest,
                )
            return store
        return MetricStore(
            retention_s=s.retention_s, max_series=s.max_series, resolution_s=s.resolution_s
        )

    def _make_findings(self) -> TraceFindings:
        s = self.settings
        return TraceFindings(
            guard=self.guard,
            interval_s=self.collect_s,
            slow_traces_per_route=s.slow_traces_per_route,
            error_samples=s.error_samples,
            n_plus_one_threshold=s.n_plus_one_threshold,
            max_routes=s.max_series,
        )

    def _make_reader(self, out: Exports, env: Mapping[str, str]) -> MonitoringMetricReader:
        s = self.settings
        return MonitoringMetricReader(
            cumulative=cumulative_policy(temporality_preference(env)),
            sink=Ingestor(self.store, self.guard, self.clock.now_s) if s.stats_enabled else None,
            exporters=out.metric_exporters,
            interval_s=s.interval_s,
            collect_interval_s=self.collect_s,
            guard=self.guard,
            tick=self.flush,
        )

    def _join_providers(
        self,
        tracer_provider: TracerProvider | None,
        meter_provider: MeterProvider | None,
        out: Exports,
    ) -> None:
        processors = [self.processor] if self.settings.stats_enabled else []
        joined = join_tracer_provider(tracer_provider, processors, out.span_exporters)
        self.tracer_provider = joined.provider
        self._owns_tracer_provider = joined.owned
        self._owned_processors: tuple[SpanProcessor, ...] = joined.owned_processors
        #: No trace exporter and no other span processor: requests are measured without SDK
        #: spans (the middleware feeds the findings directly), which costs far less.
        self.lean = not out.span_exporters and only_processor(self.tracer_provider, self.processor)
        self.meter_provider, self._owns_meter_provider = join_meter_provider(
            [self.reader, *out.pull_readers], meter_provider, self.tracer_provider.resource
        )

    def _note_service_version(self) -> str:
        """``service.version`` of the resource (``OTEL_SERVICE_VERSION`` or
        ``OTEL_RESOURCE_ATTRIBUTES``); the store remembers when each version first ran, so
        latency regressions name the version they started with."""
        version = str(self.tracer_provider.resource.attributes.get("service.version", ""))
        if version:
            self.store.note_version(version, self.clock.now_s())
        return version

    def _make_stats(self) -> Stats:
        return Stats(
            store=self.store,
            findings=self.findings,
            clock=self.clock,
            guard=self.guard,
            refresh=self.collect,
            collections=lambda: self.reader.collections,
            db_examples=self.db.examples,
            latency_threshold_ms=self.settings.latency_threshold_ms,
        )

    def _rules(self, rules: Sequence[Rule] | None) -> tuple[Rule, ...]:
        s = self.settings
        if rules is not None:
            return check_rules(rules)
        if s.rules_file:
            return load_rules_file(s.rules_file)
        return default_rules(s.latency_threshold_ms, s.db_threshold_ms)

    def _make_live_scores(self) -> LiveScores:
        s = self.settings
        return LiveScores(
            self.store,
            max_charts=6 * (s.max_series + 1),
            fine_history_s=s.fine_history_s,
            settle_s=2.0 * self.collect_s if s.store_url else 0.0,
            timezone=s.timezone,
            metrics=tuple(
                TimeseriesMetric(r.statistic.value)
                for r in self.rules
                if isinstance(r, AnomalyRule)
            ),
        )

    def _make_fleet(self) -> FleetStats | None:
        s = self.settings
        if not s.prometheus_url:
            return None
        from otel_monitoring.fleet.prometheus import PrometheusClient
        from otel_monitoring.fleet.stats import FleetStats

        return FleetStats(
            PrometheusClient(s.prometheus_url, timeout_s=s.prometheus_timeout_s),
            selector=s.prometheus_selector,
            latency_threshold_ms=s.latency_threshold_ms,
            self_telemetry=self.stats.self_telemetry,
        )

    def _make_alerts(self, logger_provider: Any | None) -> AlertEngine:
        """The engine evaluating the rules on the fleet (with the fleet's scores) when there
        is one, else on this process's statistics and live scores."""
        if self.fleet is not None:
            from otel_monitoring.fleet.scores import FleetScores

            evaluator = Evaluator(
                self.stats, self.rules, self.guard, FleetScores(self.fleet), view=self.fleet
            )
        else:
            evaluator = Evaluator(self.stats, self.rules, self.guard, self.live_scores)
        return AlertEngine(
            evaluator, self.clock, guard=self.guard, listeners=[AlertLogEmitter(logger_provider)]
        )

    def _make_notifier(self) -> WebhookNotifier | None:
        s = self.settings
        if not s.webhook_urls:
            return None
        notifier = WebhookNotifier(
            s.webhook_urls, s.webhook_allow, guard=self.guard, is_flapping=self.alerts.is_flapping
        )
        self.alerts.listeners.append(notifier)
        return notifier

    def _make_shared(self) -> SharedState | None:
        s = self.settings
        if not s.store_url:
            return None
        from otel_monitoring.alerting.leader import SharedState
        from otel_monitoring.store.sqlite import SqliteStore

        assert isinstance(self.store, SqliteStore)
        return SharedState(self.store, self.alerts, self.audit, self.guard, self.collect_s)

    def _make_analysis(self) -> Analysis:
        s = self.settings
        return Analysis(
            stats=self.stats,
            fleet=self.fleet,
            store=self.store,
            findings=self.findings,
            alerts=self.alerts,
            audit=self.audit,
            live_scores=self.live_scores,
            clock=self.clock,
            retention_s=s.retention_s,
            latency_threshold_ms=s.latency_threshold_ms,
            db_threshold_ms=s.db_threshold_ms,
        )

    @property
    def view(self) -> StatsView:
        """Where the API reads route statistics: the fleet (Prometheus) or this process."""
        return self.analysis.view

    # -- capture ------------------------------------------------------------------------------
    def instrument_engine(self, engine: Engine | AsyncEngine | type[Engine]) -> None:
        """Record ``db.client.operation.duration`` for an engine, async ones included (or
        for every engine, given the ``Engine`` class)."""
        self.db.attach(engine if isinstance(engine, type) else sync_engine_of(engine))

    # -- recording (the original MetricsCollector names) ----------------------------------------
    def record_request(
        self,
        method: str,
        route: str,
        status_code: int,
        duration_ms: float,
        response_size_bytes: int | None = None,
    ) -> None:
        """Record one request by hand (for work the middleware does not see). Never raises."""
        self.recorder.record_request(method, route, status_code, duration_ms, response_size_bytes)

    def record_cache(self, hit: bool, cache: str = "default") -> None:
        """Count one cache look-up (a hit or a miss) of the named cache. Never raises."""
        self.recorder.record_cache(hit, cache)

    def record_cache_hit(self, cache: str = "default", hit: bool = True) -> None:
        """Count a cache look-up (the original name of :meth:`record_cache`)."""
        self.recorder.record_cache(hit, cache)

    def record_database_query(
        self, statement: str, duration_ms: float, *, system: str = "other", error: str | None = None
    ) -> None:
        """Record one DB operation by hand (engines given to ``instrument_app`` are automatic)."""
        self.recorder.record_database_query(statement, duration_ms, system=system, error=error)

    # -- reading and analysis (the original AnalyticsEngine names) ------------------------------
    def get_endpoint_stats(
        self, route: str, method: str | None = None, window: Window | str = Window.H1
    ) -> list[EndpointStats]:
        """Statistics of one route template (per method), from this process."""
        return self.stats.endpoint(route, method, window)

    def get_health_status(self) -> HealthStatus:
        """Overall health of this process, with the active alerts counted."""
        return self.analysis.local_health()

    def get_top_endpoints(
        self, limit: int = 10, window: Window | str = Window.H1
    ) -> list[EndpointStats]:
        """The worst endpoints of this process (error rate, then p95)."""
        return self.stats.top_endpoints(window, limit=limit)

    def get_alerts(self, state: str = "active") -> list[Alert]:
        """Alerts: ``active`` (pending and firing), ``pending``, ``firing``, ``resolved`` or
        ``all`` (``ValueError`` for any other state)."""
        return self.analysis.alerts(state)

    def cleanup_old_metrics(
        self, max_age_s: float | None = None, *, who: str = "python", reason: str = "maintenance"
    ) -> CleanupResult:
        """Remove data older than ``max_age_s`` (default: the retention); audited.
        ``ValueError`` outside 0 .. 31 years, before anything is removed."""
        return self.analysis.cleanup(max_age_s, who=who, reason=reason)

    def chart(
        self,
        metric: TimeseriesMetric | str,
        route: str | None = None,
        method: str | None = None,
        window: Window | str = Window.H1,
    ) -> Series:
        """Chart points of a statistic over ``window``; see :meth:`Analysis.chart`."""
        return self.analysis.chart(metric, route, method, window)

    @property
    def chart_scores(self) -> LiveScores | None:
        """The live scores that belong to :meth:`chart`'s series (none in fleet mode)."""
        return self.analysis.chart_scores

    def finest(
        self,
        metric: TimeseriesMetric | str,
        route: str | None = None,
        method: str | None = None,
        window: Window | str = Window.H1,
    ) -> History:
        """The finest points of a live chart with their scores; see :meth:`Analysis.finest`."""
        return self.analysis.finest(metric, route, method, window)

    def detect_latency_anomalies(
        self,
        route: str | None = None,
        method: str | None = None,
        window: Window | str = Window.H1,
        sensitivity: str = "medium",
        resolution: str = "chart",
    ) -> list[AnomalyPoint]:
        """Anomalies of p95 latency (service or one route): points with score and value."""
        return self.analysis.detect_latency_anomalies(
            route, method, window, sensitivity, resolution
        )

    def calculate_trend(
        self,
        metric: TimeseriesMetric | str = "latency_p95",
        route: str | None = None,
        method: str | None = None,
        window: Window | str = Window.H1,
        resolution: str = "chart",
    ) -> analyzers.TrendResult:
        """Trend of a statistic: Mann-Kendall direction, Theil-Sen slope per hour, % change."""
        return self.analysis.calculate_trend(metric, route, method, window, resolution)

    def detect_correlation(self, window: Window | str = Window.H1) -> tuple[Any, ...]:
        """Correlations between throughput, error rate and routes' p95 (BH-corrected)."""
        return self.analysis.detect_correlation(window)

    def insights(self, window: Window | str = Window.H1) -> Insights:
        """Insights and recommendations on the live statistics of ``window``."""
        return self.analysis.insights(window)

    def get_performance_insights(self, window: Window | str = Window.H1) -> tuple[Any, ...]:
        """Every finding on the live statistics, with its evidence."""
        return self.analysis.performance_insights(window)

    def get_recommendations(self, window: Window | str = Window.H1) -> tuple[Any, ...]:
        """Findings of warning severity and above; each says what to do."""
        return self.analysis.recommendations(window)

    # -- collection -----------------------------------------------------------------------------
    def flush(self) -> None:
        """Collect now (and, with a shared store, write and evaluate), so the statistics
        include every request finished so far."""
        self.collect(background=True)

    def collect(self, *, background: bool = False) -> None:
        """Collect into the store, update live scores and evaluate alerts. Never raises.

        With a shared store, writing it, the lease and the shared alert list are background
        work (the reader thread, or an explicit :meth:`flush`): an API request that
        refreshes the numbers never waits on the file, even when it is locked.
        """
        if not self._reader_removed:
            self.reader.collect_now()
        self.stats.mark_refreshed()
        if getattr(self._local, "evaluating", False) or not self.settings.stats_enabled:
            return
        if self.shared is not None and not background:
            return
        self._local.evaluating = True
        try:
            now = self.clock.now_s()
            self.live_scores.update(now)
            if self.shared is None or self.shared.after_collect(now):
                self.alerts.evaluate()
        except Exception as exc:  # instrumentation boundary
            self.guard.error("alert evaluation", exc)
        finally:
            self._local.evaluating = False

    # -- shutdown ----------------------------------------------------------------------------
    def shutdown(self, timeout_s: float | None = None) -> bool:
        """Stop collecting and flush exports, within ``timeout_s`` (default from settings).

        Returns ``True`` when everything finished in time; ``False`` if an exporter was still
        busy (it is abandoned on a daemon thread). Safe to call more than once.
        """
        with self._shutdown_lock:
            if self._shutdown_done:
                return True
            self._shutdown_done = True
        with _active_lock:
            if self in _active:
                _active.remove(self)
        timeout = self.settings.shutdown_timeout_s if timeout_s is None else timeout_s
        self.processor.enabled = False
        self.db.detach()
        if self.notifier is not None:
            self.notifier.close(min(2.0, timeout / 2))
        if self.exposition is not None:
            self.exposition.shutdown()
        if self.fleet is not None:
            self.fleet.client.close()

        def work() -> None:
            if self._owns_meter_provider:
                self.meter_provider.shutdown(timeout_millis=timeout * 1000)
            else:
                self.reader.shutdown(timeout_millis=timeout * 1000)  # a last collection
                self.meter_provider.remove_metric_reader(self.reader)
                self._reader_removed = True
                # the app's (the distro's) readers too: their exit handlers may never run
                self.meter_provider.force_flush(timeout_millis=timeout * 1000)
            if self._owns_tracer_provider:
                forget_tracer_provider(self.tracer_provider)
                self.tracer_provider.shutdown()
            else:
                self.tracer_provider.force_flush(timeout_millis=int(timeout * 1000))
            for processor in self._owned_processors:
                processor.shutdown()
            if self.shared is not None:
                self.flush()
                self.shared.close()

        return self._bounded("shutdown", work, timeout)

    def drain(self, timeout_s: float | None = None) -> bool:
        """Collect, write (a shared store) and export everything measured so far, the app's
        own providers' exporters included, within ``timeout_s``; the monitor keeps running.

        For the moment an app stops: uvicorn (>= 0.29) re-raises the SIGTERM it handled once
        the app has stopped, so neither our exit handler nor the SDK providers' run, and the
        last interval (up to a minute of metrics, the spans in the batch queue, the shared
        store's unwritten buckets) would be lost. Returns ``False`` if an exporter was still
        busy at the timeout. Never raises.
        """
        timeout = self.settings.shutdown_timeout_s if timeout_s is None else timeout_s

        def work() -> None:
            self.meter_provider.force_flush(timeout_millis=timeout * 1000)  # ours included
            self.tracer_provider.force_flush(timeout_millis=int(timeout * 1000))
            self.flush()

        return self._bounded("drain", work, timeout)

    def _bounded(self, what: str, work: Callable[[], None], timeout_s: float) -> bool:
        """Run ``work`` on a daemon thread and wait at most ``timeout_s`` for it; its
        failure is counted, never raised."""
        done = threading.Event()

        def run() -> None:
            try:
                work()
            except Exception as exc:  # instrumentation boundary
                self.guard.error(what, exc)
            finally:
                done.set()

        threading.Thread(target=run, name=f"otel-monitoring-{what}", daemon=True).start()
        finished = done.wait(timeout_s)
        if not finished:
            _logger.warning(
                "otel-monitoring: %s did not finish within %.1f s (an exporter is"
                " not answering); continuing without it",
                what,
                timeout_s,
            )
        return finished
