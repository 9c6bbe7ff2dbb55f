"""The MetricReader: one SDK aggregation feeds both the store and the OTLP export.

A second SDK reader would aggregate every measurement a second time (about 35 us per request
measured here), so this reader is the only one. Every ``collect_interval_s`` (the store's
finest buckets, 10 s) it collects with delta temporality and base-2 exponential histograms and
hands the batch to the store (``sink``); every ``interval_s`` (the export interval, such as
``OTEL_METRIC_EXPORT_INTERVAL``) it sends the batches collected since the last export, merged
into one point per stream (:class:`~otel_monitoring.collect.merge.ExportBuffer`), to the
configured exporters from a thread apart from the collections' (a backend that does not
answer, each export waiting up to ``export_timeout_s``, never delays a collection).
Collections on demand (the API refreshing its numbers) are merged the same way, so no
request ever waits on a backend and a backend sees one point per stream and export interval.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics import _Gauge as SyncGauge
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Metric,
    MetricExporter,
    MetricReader,
    MetricsData,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation

from otel_monitoring.collect.merge import ExportBuffer
from otel_monitoring.forks import redo_in_forked_child
from otel_monitoring.self_telemetry import Guard

__all__ = ["HISTOGRAM_MAX_SIZE", "MonitoringMetricReader"]

#: Buckets per histogram: with 2048, a range of 2**32 stays at scale >= 6 (<= 0.54 % error).
HISTOGRAM_MAX_SIZE = 2048

_DELTA: dict[type, AggregationTemporality] = {
    cls: AggregationTemporality.DELTA
    for cls in (
        Counter,
        UpDownCounter,
        Histogram,
        ObservableCounter,
        ObservableUpDownCounter,
        ObservableGauge,
        SyncGauge,
    )
}


class MonitoringMetricReader(MetricReader):
    """Collects every ``collect_interval_s`` into ``sink``; exports every ``interval_s``,
    delta, or cumulative for the streams ``cumulative`` selects."""

    def __init__(
        self,
        *,
        sink: Callable[[MetricsData], None] | None,
        exporters: Sequence[MetricExporter] = (),
        interval_s: float = 10.0,
        collect_interval_s: float | None = None,
        export_timeout_s: float = 10.0,
        guard: Guard | None = None,
        tick: Callable[[], None] | None = None,
        cumulative: Callable[[Metric], bool] | None = None,
    ) -> None:
        super().__init__(
            preferred_temporality=_DELTA,
            preferred_aggregation={
                Histogram: ExponentialBucketHistogramAggregation(max_size=HISTOGRAM_MAX_SIZE)
            },
        )
        self.sink = sink
        self.exporters = list(exporters)
        #: Seconds between exports.
        self.interval_s = interval_s
        #: Seconds between collections into the sink (at most the export interval).
        self.collect_interval_s = min(interval_s, collect_interval_s or interval_s)
        self.export_timeout_s = export_timeout_s
        self.guard = guard or Guard()
        self.collections = 0
        self._cumulative = cumulative
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._export_thread: threading.Thread | None = None
        self._fresh_state()
        # once per reader: a forked child inherits the registration (registering again at its
        # restart made a second fork wait on locks the first hook held, and keep them)
        redo_in_forked_child(
            self,
            MonitoringMetricReader._restart_in_child,
            before=MonitoringMetricReader._before_fork,
            parent=MonitoringMetricReader._after_fork,
        )
        #: Called by the reader thread each collection instead of :meth:`collect_now`, so the
        #: owner can run follow-up work (alert evaluation) after each collection.
        self.tick = tick

    def _fresh_state(self) -> None:
        """The locks and the batch waiting for export, new (at start, and in a forked child:
        the parent's batch is the parent's to export)."""
        self._buffer = ExportBuffer(max_buckets=HISTOGRAM_MAX_SIZE, cumulative=self._cumulative)
        self._buffer_lock = threading.Lock()
        self._collect_lock = threading.Lock()
        self._export_lock = threading.Lock()  # one export at a time, in order
        self._tick_lock = threading.Lock()  # held by the reader thread through each tick
        self._forking = False  # the tick lock is held for a fork under way
        self._forking_export = False  # and the export lock

    def start(self) -> None:
        """Start the periodic collection thread and, with exporters, the export thread
        (daemons; idempotent). Exports run on their own thread so that a backend that does
        not answer (each export waits up to ``export_timeout_s``, retries included) never
        delays a collection: the store's buckets stay one collection each. A forked child
        (``gunicorn --preload``'s workers) starts its own threads (see
        :mod:`otel_monitoring.forks`)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="otel-monitoring-reader", daemon=True
            )
            self._thread.start()
        if self._export_thread is None and self.exporters:
            self._export_thread = threading.Thread(
                target=self._run_exports, name="otel-monitoring-export", daemon=True
            )
            self._export_thread.start()

    def collect_now(self) -> None:
        """Collect immediately into the sink; the batch waits, merged, for the next export."""
        try:
            with self._collect_lock:
                self.collect(timeout_millis=self.export_timeout_s * 1000)
        except Exception as exc:  # instrumentation boundary
            self.guard.error("metric collection", exc)

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: object
    ) -> None:
        if metrics_data is None:
            return
        self.collections += 1
        if self.sink is not None:
            try:
                self.sink(metrics_data)
            except Exception as exc:  # instrumentation boundary
                self.guard.error("metric ingestion", exc)
        if self.exporters:
            try:
                with self._buffer_lock:
                    self._buffer.add(metrics_data)
            except Exception as exc:  # instrumentation boundary
                self.guard.error("metric export merge", exc)

    def export_pending(self) -> None:
        """Send what was collected since the last export, merged into one batch, to every
        exporter; an exporter's failure is counted only."""
        with self._export_lock:
            with self._buffer_lock:
                batch = self._buffer.take(time.time_ns())
            if batch is None:
                return
            for exporter in self.exporters:
                try:
                    # The exporter's own HTTP calls (``requests``/``httpx``, instrumented in
                    # zero-code mode) must not become spans, outbound statistics or exports.
                    with suppress_instrumentation():
                        exporter.export(batch, timeout_millis=self.export_timeout_s * 1000)
                except Exception as exc:  # instrumentation boundary
                    self.guard.error("metric export", exc)

    def _run(self) -> None:
        while not self._stop.wait(self.collect_interval_s):
            with self._tick_lock:
                if self._stop.is_set():
                    return
                if self.tick is not None:
                    try:
                        self.tick()
                    except Exception as exc:  # instrumentation boundary
                        self.guard.error("collection tick", exc)
                else:
                    self.collect_now()

    def _before_fork(self) -> None:
        """In the parent, before ``fork``: wait (up to 5 s each) for a tick and an export under
        way, and hold the next ones off, so that the child gets no lock of ours held, none of
        the store's or the alerts', and no import lock (a tick imports the analyzers on first
        use, an exporter its transport), which it would wait on forever; then collect, so the
        child's first collection holds none of the parent's measurements."""
        self._forking = self._tick_lock.acquire(timeout=5.0)
        self._forking_export = self._export_lock.acquire(timeout=5.0)
        if not self._stop.is_set():
            self.collect_now()

    def _after_fork(self) -> None:
        """In the parent, after ``fork``: the ticks and exports go on."""
        if self._forking_export:
            self._export_lock.release()
        if self._forking:
            self._tick_lock.release()

    def _restart_in_child(self) -> None:
        """In a forked child: new locks and batch, and the threads the parent ran (none when
        it had stopped)."""
        running = (self._thread, self._export_thread) != (None, None)
        self._fresh_state()
        self._thread = self._export_thread = None
        if running and not self._stop.is_set():
            self.start()

    def _run_exports(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.export_pending()

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        """Stop the thread, collect and export a last time, shut exporters down.

        Callers bound the time (see :meth:`otel_monitoring.monitor.Monitor.shutdown`); a
        hanging exporter cannot hold the caller longer than that bound.
        """
        if self._stop.is_set():
            return  # already shut down (a provider we joined shuts its readers down too)
        self._stop.set()
        for thread in (self._thread, self._export_thread):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=timeout_millis / 1000)
        self.collect_now()
        self.export_pending()
        for exporter in self.exporters:
            try:
                with suppress_instrumentation():
                    exporter.shutdown(timeout_millis=timeout_millis)
            except Exception as exc:  # instrumentation boundary
                self.guard.error("metric exporter shutdown", exc)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        self.collect_now()
        self.export_pending()
        return True
