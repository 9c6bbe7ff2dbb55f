"""Expose an instance's metrics to Prometheus: a cumulative reader and ``GET /metrics``.

The in-process reader (:mod:`otel_monitoring.collect.reader`) aggregates with delta temporality and
base-2 exponential histograms. Prometheus wants cumulative series, and the OTel Prometheus
exporter (``opentelemetry-exporter-prometheus``) does not translate exponential histograms,
so fleet mode adds a second SDK reader, :class:`FleetPrometheusReader`: cumulative, with
explicit-bucket histograms whose boundaries follow the instrument's unit (seconds, bytes) or
its advisory boundaries. That second reader aggregates every measurement again: 3 to 12 us
per request (two histogram records) on the 2-core development machine, and a scrape of 150
series costs about 0.1 s of CPU in FastAPI's thread pool (see ``docs/fleet.md``).

Names as Prometheus sees them: ``http.server.request.duration`` (unit ``s``) becomes
``http_server_request_duration_seconds_bucket`` / ``_count`` / ``_sum`` with the labels
``http_route``, ``http_request_method``, ``http_response_status_code``, ``error_type``
(empty when absent) and ``otel_scope_*``; Prometheus adds ``job`` and ``instance``.

Each :class:`PrometheusExposition` owns a private ``CollectorRegistry`` (no clash between two
monitors in one process, no global state) holding the OTel metrics and the process
collector (``process_start_time_seconds`` gives the fleet view each instance's uptime).

Example (what ``instrument_app`` does when ``OTEL_MONITORING_PROMETHEUS_EXPORT=true``)::

    exposition = PrometheusExposition()
    provider = MeterProvider(metric_readers=[monitoring_reader, exposition.reader])
    exposition.mount(app)            # GET /metrics on the app itself
    # or, zero-code / side port (OTEL_METRICS_EXPORTER=prometheus):
    exposition.serve("127.0.0.1", 9464)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation
from opentelemetry.util.types import Attributes
from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server
from prometheus_client.exposition import choose_encoder

from otel_monitoring._compat import (
    SdkAggregation,
    SdkInstrument,
    advisory_bucket_bounds,
    create_aggregation,
    set_histogram_aggregation,
)

__all__ = [
    "BYTES_BUCKETS",
    "EXPORT_ENV",
    "MAX_CACHE_S",
    "SECONDS_BUCKETS",
    "FleetPrometheusReader",
    "PrometheusExposition",
    "UnitBucketAggregation",
    "prometheus_export_requested",
]

#: Enables the ``/metrics`` route on the app (a boolean: true/false, 1/0, yes/no, on/off).
EXPORT_ENV = "OTEL_MONITORING_PROMETHEUS_EXPORT"

#: Bucket bounds for durations in seconds: the semantic conventions' advice for
#: ``http.server.request.duration`` plus sub-5 ms and long-tail bounds. A percentile read
#: back with ``histogram_quantile`` lies inside the bucket of the true value.
SECONDS_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1,
    0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
)  # fmt: skip

#: Bucket bounds for sizes in bytes (response bodies): powers of 4 from 64 B to 16 MiB.
BYTES_BUCKETS: tuple[float, ...] = tuple(float(64 * 4**i) for i in range(10))

_BY_UNIT: dict[str, tuple[float, ...]] = {
    "s": SECONDS_BUCKETS,
    "ms": tuple(b * 1000.0 for b in SECONDS_BUCKETS),
    "By": BYTES_BUCKETS,
}


class UnitBucketAggregation(ExplicitBucketHistogramAggregation):
    """Explicit buckets chosen per instrument: its advisory boundaries if it gave any,
    else :data:`SECONDS_BUCKETS` for unit ``s`` (``ms`` scaled), :data:`BYTES_BUCKETS` for
    ``By``, else the SDK's default boundaries."""

    def __init__(self) -> None:
        super().__init__()
        self._by_bounds: dict[tuple[float, ...] | None, ExplicitBucketHistogramAggregation] = {}
        self._lock = threading.Lock()

    def _create_aggregation(  # the SDK's hook (see otel_monitoring._compat.create_aggregation)
        self,
        instrument: SdkInstrument,
        attributes: Attributes,
        reservoir_factory: Callable[[type[SdkAggregation[Any]]], Any],
        start_time_unix_nano: int,
    ) -> SdkAggregation[Any]:
        bounds = advisory_bucket_bounds(instrument) or _BY_UNIT.get(
            str(getattr(instrument, "unit", "") or "")
        )
        with self._lock:
            delegate = self._by_bounds.get(bounds)
            if delegate is None:
                delegate = ExplicitBucketHistogramAggregation(bounds)
                self._by_bounds[bounds] = delegate
        return create_aggregation(
            delegate, instrument, attributes, reservoir_factory, start_time_unix_nano
        )


#: The longest a rendered exposition is reused, in seconds: it bounds both the cost of many
#: scrapers (one collection per second at most) and how stale a scrape can be.
MAX_CACHE_S = 1.0


class FleetPrometheusReader(PrometheusMetricReader):
    """The OTel Prometheus reader (cumulative) with :class:`UnitBucketAggregation` for
    histograms, registered on ``registry``. Collects only when scraped."""

    def __init__(self, registry: CollectorRegistry, *, prefix: str = "") -> None:
        super().__init__(registry=registry, prefix=prefix)
        # The Prometheus reader's constructor takes no preferred aggregation; tests/fleet
        # pins the effect, tests/test_compat.py the internal it relies on.
        set_histogram_aggregation(self, UnitBucketAggregation())


class PrometheusExposition:
    """A Prometheus reader, its registry, and ways to serve the text format.

    Add :attr:`reader` to the ``MeterProvider`` (at construction or with its
    ``add_metric_reader``), then :meth:`mount` it on an app or :meth:`serve` it on a side
    port. Scrapes cost one SDK collection each (cumulative: no data is lost between scrapes
    or when a scrape fails).
    """

    def __init__(
        self, *, prefix: str = "", process_metrics: bool = True, cache_s: float = 0.0
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.reader = FleetPrometheusReader(self.registry, prefix=prefix)
        if process_metrics:
            ProcessCollector(registry=self.registry)
        self._servers: list[Any] = []
        #: Seconds a rendered exposition is served again (0: render every scrape).
        self.cache_s = cache_s
        self._cache: dict[str, tuple[float, bytes]] = {}  # content type -> (monotonic s, body)
        self._render_lock = threading.Lock()

    def cached(self, accept: str | None = None) -> tuple[bytes, str] | None:
        """The rendering :meth:`render` would return if it is still fresh, else ``None``;
        never collects (cheap enough for the event loop)."""
        _encoder, content_type = choose_encoder(accept or "")
        found = self._cache.get(content_type)
        if found is None or time.monotonic() - found[0] >= self.cache_s:
            return None
        return found[1], content_type

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The current metrics in the format ``accept`` asks for (Prometheus text 0.0.4 or
        OpenMetrics): ``(body, content_type)``.

        With ``cache_s`` > 0 a rendering is reused for ``cache_s`` seconds, and concurrent
        callers wait for the one rendering in progress instead of collecting again: N
        scrapers cost one collection per ``cache_s`` (per format).
        """
        encoder, content_type = choose_encoder(accept or "")
        if self.cache_s <= 0:
            return encoder(self.registry), content_type
        with self._render_lock:
            found = self.cached(accept)
            if found is not None:  # rendered while this caller waited
                return found
            body = encoder(self.registry)
            self._cache[content_type] = (time.monotonic(), body)
        return body, content_type

    def mount(self, app: FastAPI, path: str = "/metrics", dependencies: Sequence[Any] = ()) -> None:
        """Serve ``GET path`` on ``app`` (not in the OpenAPI schema), behind
        ``dependencies`` (FastAPI ``Depends``: the API key and rate limit).

        Keep ``path`` in ``excluded_urls`` (``/metrics`` is there by default) so scrapes are
        not counted as requests. A fresh cached rendering is answered on the event loop;
        otherwise the collection runs in a worker thread, so it never blocks the loop.
        """

        async def metrics(request: Request, response: Response) -> Response:
            accept = request.headers.get("accept")
            found = self.cached(accept)
            if found is None:
                found = await asyncio.to_thread(self.render, accept)
            # ``response`` holds what the dependencies set (X-RateLimit-*).
            extra = {k: v for k, v in response.headers.items() if k.startswith("x-ratelimit")}
            return Response(content=found[0], media_type=found[1], headers=extra)

        app.add_api_route(
            path,
            metrics,
            methods=["GET"],
            include_in_schema=False,
            dependencies=list(dependencies),
        )

    def serve(self, host: str = "127.0.0.1", port: int = 9464) -> None:
        """Serve ``/metrics`` on a side HTTP server (daemon thread), as the OTel Prometheus
        exporter does for ``OTEL_METRICS_EXPORTER=prometheus`` (honour
        ``OTEL_EXPORTER_PROMETHEUS_HOST``/``_PORT`` when calling this).

        Raises:
            OSError: the port is taken.
        """
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._servers.append(server)

    def shutdown(self) -> None:
        """Stop side servers and unregister the reader. Safe to call twice."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers.clear()
        with contextlib.suppress(KeyError):  # already unregistered
            self.reader.shutdown()


def prometheus_export_requested(env: Mapping[str, str] | None = None) -> bool:
    """``True`` when ``OTEL_MONITORING_PROMETHEUS_EXPORT`` is true or
    ``OTEL_METRICS_EXPORTER`` names ``prometheus``.

    Raises:
        ValueError: ``OTEL_MONITORING_PROMETHEUS_EXPORT`` is not a boolean.
    """
    env = os.environ if env is None else env
    raw = env.get(EXPORT_ENV, "").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw not in ("", "0", "false", "no", "off"):
        raise ValueError(f"invalid {EXPORT_ENV}={raw!r}: use true or false")
    return "prometheus" in _names(env.get("OTEL_METRICS_EXPORTER", ""))


def _names(raw: str) -> Sequence[str]:
    return [name.strip() for name in raw.split(",") if name.strip()]
