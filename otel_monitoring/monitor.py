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
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Tracer
from sqlalchemy.engine import Engine

from otel_monitoring._compat import span_processors
from otel_monitoring.alerts import AlertEngine
from otel_monitoring.audit import AuditLog
from otel_monitoring.clock import Clock, SystemClock
from otel_monitoring.config import Settings
from otel_monitoring.db import DbListener
from otel_monitoring.evaluate import Evaluator
from otel_monitoring.exporters import exporters_from_env
from otel_monitoring.guard import Guard
from otel_monitoring.ingest import Ingestor
from otel_monitoring.instruments import Instruments
from otel_monitoring.live_scores import LiveScores
from otel_monitoring.notify import AlertLogEmitter, WebhookNotifier
from otel_monitoring.operations import SeedOperations
from otel_monitoring.processor import MonitoringSpanProcessor, TraceFindings
from otel_monitoring.reader import MonitoringMetricReader
from otel_monitoring.rules import AnomalyRule, Rule, check_rules, default_rules, load_rules_file
from otel_monitoring.stats import Stats
from otel_monitoring.stats_view import StatsView
from otel_monitoring.store import MetricStore
from otel_monitoring.timeseries import TimeseriesMetric

if TYPE_CHECKING:
    from otel_monitoring.fleet.exposition import PrometheusExposition
    from otel_monitoring.fleet.stats import FleetStats
    from otel_monitoring.sharing import SharedState

__all__ = ["Monitor"]

_logger = logging.getLogger("otel_monitoring")
_SCOPE = "otel_monitoring"

_active_lock = threading.Lock()
_active: list[Monitor] = []
#: Tracer providers a monitor made and shut down: never joined again (kept here, not as an
#: attribute written onto the SDK's object).
_shut_down: weakref.WeakSet[TracerProvider] = weakref.WeakSet()
#: Meter providers a monitor made: a later monitor finding one as the global provider makes
#: its own rather than join it (it would stop with the monitor that owns it).
_our_providers: weakref.WeakSet[MeterProvider] = weakref.WeakSet()


def active_monitor() -> Monitor | None:
    """The most recently created monitor that is not shut down, if any."""
    with _active_lock:
        return _active[-1] if _active else None


class Monitor(SeedOperations):
    """Everything the package runs for one service. See the module docstring."""

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
        s = self.settings
        self.store = self._store()
        self.findings = TraceFindings(
            guard=self.guard,
            interval_s=s.interval_s,
            slow_traces_per_route=s.slow_traces_per_route,
            error_samples=s.error_samples,
            n_plus_one_threshold=s.n_plus_one_threshold,
            max_routes=s.max_series,
        )
        if span_exporters is None:
            span_exporters = exporters_from_env("traces", env)
        pull_readers: list[MetricReader] = []
        if metric_exporters is None:
            found = exporters_from_env("metrics", env)
            pull_readers = [r for r in found if isinstance(r, MetricReader)]
            metric_exporters = [e for e in found if not isinstance(e, MetricReader)]
        self.exposition: PrometheusExposition | None = None
        if s.prometheus_export or "prometheus" in env.get("OTEL_METRICS_EXPORTER", ""):
            from otel_monitoring.fleet.exposition import MAX_CACHE_S, PrometheusExposition

            # At most one collection per second (or per collection interval, when shorter),
            # however many scrapers ask.
            self.exposition = PrometheusExposition(cache_s=min(s.interval_s, MAX_CACHE_S))
            pull_readers.append(self.exposition.reader)
            if "prometheus" in env.get("OTEL_METRICS_EXPORTER", ""):
                host = env.get("OTEL_EXPORTER_PROMETHEUS_HOST", "localhost")
                port = int(env.get("OTEL_EXPORTER_PROMETHEUS_PORT", "9464"))
                try:
                    self.exposition.serve(host, port)
                except OSError as exc:
                    # Several workers of one server: the first serves /metrics, the others
                    # carry on (their numbers are on the monitoring API's side port).
                    _logger.warning(
                        "otel-monitoring: Prometheus /metrics not served by process %d on"
                        " %s:%d (%s); another process of this server may hold it",
                        os.getpid(),
                        host,
                        port,
                        exc.strerror or exc,
                    )
        self.reader = MonitoringMetricReader(
            sink=Ingestor(self.store, self.guard, self.clock.now_s) if s.stats_enabled else None,
            exporters=metric_exporters,
            interval_s=s.interval_s,
            guard=self.guard,
        )
        self.processor = MonitoringSpanProcessor(self.findings, self.guard)
        self._owned_processors: list[SpanProcessor] = []
        self.tracer_provider, self._owns_tracer_provider = self._tracer_provider(
            tracer_provider, span_exporters
        )
        #: No trace exporter and no other span processor: requests are measured without SDK
        #: spans (the middleware feeds the findings directly), which costs far less.
        self.lean = not span_exporters and _only_processor(self.tracer_provider, self.processor)
        self.meter_provider, self._owns_meter_provider = self._meter_provider(
            pull_readers, meter_provider
        )
        #: ``service.version`` of the resource (``OTEL_SERVICE_VERSION`` or
        #: ``OTEL_RESOURCE_ATTRIBUTES``); the store remembers when each version first ran, so
        #: latency regressions name the version they started with.
        resource = self.tracer_provider.resource.attributes
        self.service_version = str(resource.get("service.version", ""))
        if self.service_version:
            self.store.note_version(self.service_version, self.clock.now_s())
        self.tracer: Tracer = self.tracer_provider.get_tracer(_SCOPE)
        self.instruments = Instruments.create(self.meter_provider.get_meter(_SCOPE))
        self.db = DbListener(self.instruments, self.findings, self.guard)
        self.stats = Stats(
            store=self.store,
            findings=self.findings,
            clock=self.clock,
            guard=self.guard,
            refresh=self.collect,
            collections=lambda: self.reader.collections,
            db_examples=self.db.examples,
            latency_threshold_ms=s.latency_threshold_ms,
        )
        self.rules = self._rules(rules)
        self.live_scores = LiveScores(
            self.store,
            max_charts=6 * (s.max_series + 1),
            fine_history_s=s.fine_history_s,
            settle_s=2.0 * s.interval_s if s.store_url else 0.0,
            metrics=tuple(
                TimeseriesMetric(r.statistic.value)
                for r in self.rules
                if isinstance(r, AnomalyRule)
            ),
        )
        self.alerts = AlertEngine(
            Evaluator(self.stats, self.rules, self.guard, self.live_scores),
            self.clock,
            guard=self.guard,
        )
        self.alerts.listeners.append(AlertLogEmitter(logger_provider))
        self.notifier: WebhookNotifier | None = None
        if s.webhook_urls:
            self.notifier = WebhookNotifier(
                s.webhook_urls,
                s.webhook_allow,
                guard=self.guard,
                is_flapping=self.alerts.is_flapping,
            )
            self.alerts.listeners.append(self.notifier)
        self.audit = AuditLog(self.clock)
        self.shared: SharedState | None = None
        if s.store_url:
            from otel_monitoring.persist import SqliteStore
            from otel_monitoring.sharing import SharedState

            assert isinstance(self.store, SqliteStore)
            self.shared = SharedState(self.store, self.alerts, self.audit, self.guard, s.interval_s)
        self.fleet: FleetStats | None = None
        if s.prometheus_url:
            from otel_monitoring.fleet.prometheus import PrometheusClient
            from otel_monitoring.fleet.stats import FleetStats

            self.fleet = FleetStats(
                PrometheusClient(s.prometheus_url, timeout_s=s.prometheus_timeout_s),
                selector=s.prometheus_selector,
                latency_threshold_ms=s.latency_threshold_ms,
                self_telemetry=self.stats.self_telemetry,
            )
            from otel_monitoring.fleet.scores import FleetScores

            self.alerts.source = Evaluator(
                self.stats, self.rules, self.guard, FleetScores(self.fleet), view=self.fleet
            )
        self._local = threading.local()
        self.reader.tick = self.flush
        self.apps: list[Any] = []
        self._shutdown_done = False
        self._shutdown_lock = threading.Lock()
        self.reader.start()
        with _active_lock:
            _active.append(self)

    def _store(self) -> MetricStore:
        s = self.settings
        if s.store_url:
            from otel_monitoring.persist import SqliteStore

            return SqliteStore.from_url(
                s.store_url, retention_s=s.retention_s, max_series=s.max_series, guard=self.guard
            )
        return MetricStore(
            retention_s=s.retention_s, max_series=s.max_series, resolution_s=s.resolution_s
        )

    @property
    def view(self) -> StatsView:
        """Where the API reads route statistics: the fleet (Prometheus) or this process."""
        return self.fleet if self.fleet is not None else self.stats

    def _rules(self, rules: Sequence[Rule] | None) -> tuple[Rule, ...]:
        s = self.settings
        if rules is not None:
            return check_rules(rules)
        if s.rules_file:
            return load_rules_file(s.rules_file)
        return default_rules(s.latency_threshold_ms, s.db_threshold_ms)

    # -- providers ---------------------------------------------------------------------------
    def _tracer_provider(
        self, given: TracerProvider | None, exporters: Sequence[SpanExporter]
    ) -> tuple[TracerProvider, bool]:
        processors: list[SpanProcessor] = []
        if self.settings.stats_enabled:
            processors.append(self.processor)
        if given is None:
            current = trace.get_tracer_provider()
            if isinstance(current, TracerProvider) and not _is_shut_down(current):
                given = current
        if given is not None:
            for processor in processors:
                given.add_span_processor(processor)
            for exporter in exporters:
                batch = BatchSpanProcessor(exporter)
                given.add_span_processor(batch)
                self._owned_processors.append(batch)
            return given, False
        provider = TracerProvider(resource=Resource.create())
        for processor in processors:
            provider.add_span_processor(processor)
        for exporter in exporters:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        if not isinstance(trace.get_tracer_provider(), TracerProvider):
            trace.set_tracer_provider(provider)
        return provider, True

    def _meter_provider(
        self, pull_readers: Sequence[MetricReader], given: MeterProvider | None = None
    ) -> tuple[MeterProvider, bool]:
        """The provider our readers are on, and whether we own it (and shut it down).

        A provider someone else configured joins our readers (``add_metric_reader``, SDK >=
        1.43): the one passed in (zero-code mode under OTel's own configurator), else the
        app's global SDK provider, so the app's own metrics reach the statistics too. A global
        provider one of our monitors made (or one we shut down) is not joined.
        """
        if given is None:
            current = metrics.get_meter_provider()
            if isinstance(current, MeterProvider) and current not in _our_providers:
                given = current
        if given is not None:
            for reader in (self.reader, *pull_readers):
                given.add_metric_reader(reader)
            return given, False
        provider = MeterProvider(
            resource=self.tracer_provider.resource,
            metric_readers=[self.reader, *pull_readers],
            shutdown_on_exit=False,
        )
        _our_providers.add(provider)
        if not isinstance(metrics.get_meter_provider(), MeterProvider):
            metrics.set_meter_provider(provider)
        return provider, True

    # -- capture ------------------------------------------------------------------------------
    def instrument_engine(self, engine: Engine | type[Engine]) -> None:
        """Record ``db.client.operation.duration`` for an engine (or every engine)."""
        self.db.attach(engine)

    def record_cache(self, hit: bool, cache: str = "default") -> None:
        """Count one cache look-up (a hit or a miss) of the named cache. Never raises."""
        try:
            self.instruments.cache_requests.add(
                1, {"cache.name": cache, "cache.result": "hit" if hit else "miss"}
            )
        except Exception as exc:  # instrumentation boundary
            self.guard.error("record_cache", exc)

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
        done = threading.Event()

        def work() -> None:
            try:
                if self._owns_meter_provider:
                    self.meter_provider.shutdown(timeout_millis=timeout * 1000)
                else:
                    self.reader.shutdown(timeout_millis=timeout * 1000)  # a last collection
                    self.meter_provider.remove_metric_reader(self.reader)
                if self._owns_tracer_provider:
                    _shut_down.add(self.tracer_provider)
                    self.tracer_provider.shutdown()
                for processor in self._owned_processors:
                    processor.shutdown()
                if self.shared is not None:
                    self.flush()
                    self.shared.close()
            except Exception as exc:  # instrumentation boundary
                self.guard.error("shutdown", exc)
            finally:
                done.set()

        threading.Thread(target=work, name="otel-monitoring-shutdown", daemon=True).start()
        finished = done.wait(timeout)
        if not finished:
            _logger.warning(
                "otel-monitoring: shutdown did not finish within %.1f s (an exporter is"
                " not answering); continuing without it",
                timeout,
            )
        return finished


def _only_processor(provider: TracerProvider, ours: SpanProcessor) -> bool:
    """Whether ``provider`` has no span processor but ``ours`` (when the SDK does not say,
    assume other processors exist and keep real spans)."""
    processors = span_processors(provider)
    return processors is not None and all(p is ours for p in processors)


def _is_shut_down(provider: TracerProvider) -> bool:
    return provider in _shut_down
