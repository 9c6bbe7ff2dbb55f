"""Joining the app's OTel providers, or making our own, and choosing the exporters.

The Monitor owns only what it created: a provider found (passed in, or the global SDK
provider) is joined with our span processor and metric readers and left running at
shutdown; a provider made here is shut down with the monitor. Which providers our monitors
made or shut down is kept in weak sets here, never as attributes written onto the SDK's
objects.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from otel_monitoring._compat import span_processors
from otel_monitoring.collect.exporters import exporters_from_env
from otel_monitoring.config import Settings

if TYPE_CHECKING:
    from otel_monitoring.fleet.exposition import PrometheusExposition

__all__ = [
    "Exports",
    "JoinedTracerProvider",
    "exports",
    "forget_tracer_provider",
    "join_meter_provider",
    "join_tracer_provider",
    "only_processor",
]

_logger = logging.getLogger("otel_monitoring")

#: Tracer providers a monitor made and shut down: never joined again.
_shut_down: weakref.WeakSet[TracerProvider] = weakref.WeakSet()
#: Meter providers a monitor made: a later monitor finding one as the global provider makes
#: its own rather than join it (it would stop with the monitor that owns it).
_our_providers: weakref.WeakSet[MeterProvider] = weakref.WeakSet()


@dataclass(slots=True)
class Exports:
    """Where the telemetry goes besides our statistics: span exporters, push metric
    exporters, pull readers (Prometheus) and our own Prometheus exposition, if any."""

    span_exporters: Sequence[SpanExporter]
    metric_exporters: Sequence[MetricExporter]
    pull_readers: list[MetricReader] = field(default_factory=list)
    exposition: PrometheusExposition | None = None


def exports(
    settings: Settings,
    env: Mapping[str, str],
    span_exporters: Sequence[SpanExporter] | None,
    metric_exporters: Sequence[MetricExporter] | None,
) -> Exports:
    """The exporters given, else those the ``OTEL_*_EXPORTER`` variables name; with
    ``prometheus`` export, our exposition (serving ``/metrics`` itself when the environment
    asks for the ``prometheus`` exporter; a port already taken is logged, not raised)."""
    if span_exporters is None:
        span_exporters = exporters_from_env("traces", env)
    pull_readers: list[MetricReader] = []
    if metric_exporters is None:
        found = exporters_from_env("metrics", env)
        pull_readers = [r for r in found if isinstance(r, MetricReader)]
        metric_exporters = [e for e in found if not isinstance(e, MetricReader)]
    result = Exports(span_exporters, metric_exporters, pull_readers)
    wants_prometheus = "prometheus" in env.get("OTEL_METRICS_EXPORTER", "")
    if settings.prometheus_export or wants_prometheus:
        result.exposition = _exposition(settings, env, serve=wants_prometheus)
        pull_readers.append(result.exposition.reader)
    return result


def _exposition(settings: Settings, env: Mapping[str, str], *, serve: bool) -> PrometheusExposition:
    from otel_monitoring.fleet.exposition import MAX_CACHE_S, PrometheusExposition

    # At most one collection per second (or per collection interval, when shorter),
    # however many scrapers ask.
    exposition = PrometheusExposition(cache_s=min(settings.interval_s, MAX_CACHE_S))
    if serve:
        host = env.get("OTEL_EXPORTER_PROMETHEUS_HOST", "localhost")
        port = int(env.get("OTEL_EXPORTER_PROMETHEUS_PORT", "9464"))
        try:
            exposition.serve(host, port)
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
    return exposition


@dataclass(frozen=True, slots=True)
class JoinedTracerProvider:
    """The tracer provider our processor is on, whether we own it (and shut it down), and
    the batch processors we added to a provider we do not own (we shut those down)."""

    provider: TracerProvider
    owned: bool
    owned_processors: tuple[SpanProcessor, ...]


def join_tracer_provider(
    given: TracerProvider | None,
    processors: Sequence[SpanProcessor],
    exporters: Sequence[SpanExporter],
) -> JoinedTracerProvider:
    """Add ``processors`` and a batch processor per exporter to ``given``, else to the
    global SDK provider (unless one of our monitors shut it down), else to a new provider
    (made global when no SDK provider is)."""
    if given is None:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider) and current not in _shut_down:
            given = current
    if given is not None:
        batches: list[SpanProcessor] = []
        for processor in processors:
            given.add_span_processor(processor)
        for exporter in exporters:
            batch = BatchSpanProcessor(exporter)
            given.add_span_processor(batch)
            batches.append(batch)
        return JoinedTracerProvider(given, False, tuple(batches))
    provider = TracerProvider(resource=Resource.create())
    for processor in processors:
        provider.add_span_processor(processor)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(provider)
    return JoinedTracerProvider(provider, True, ())


def forget_tracer_provider(provider: TracerProvider) -> None:
    """Mark a provider we made as shut down: no later monitor joins it."""
    _shut_down.add(provider)


def join_meter_provider(
    readers: Sequence[MetricReader], given: MeterProvider | None, resource: Resource
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
        for reader in readers:
            given.add_metric_reader(reader)
        return given, False
    provider = MeterProvider(resource=resource, metric_readers=readers, shutdown_on_exit=False)
    _our_providers.add(provider)
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        metrics.set_meter_provider(provider)
    return provider, True


def only_processor(provider: TracerProvider, ours: SpanProcessor) -> bool:
    """Whether ``provider`` has no span processor but ``ours`` (when the SDK does not say,
    assume other processors exist and keep real spans)."""
    processors = span_processors(provider)
    return processors is not None and all(p is ours for p in processors)
