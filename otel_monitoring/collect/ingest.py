"""From OTel ``MetricsData`` to store series: normalise attributes, bound cardinality.

HTTP server series are keyed by route template, method and status class (``2xx``...);
requests with no matched route collapse into ``<unmatched>``. DB series by system and
statement summary; outbound HTTP by target host; cache counters by cache and result. Any
other metric of the app is kept per attribute set, minus attributes that could hold URLs,
queries or secrets. Negative histogram values (a clock step) are counted, not stored.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.sdk.metrics.export import (
    ExponentialHistogramDataPoint,
    Gauge,
    HistogramDataPoint,
    MetricsData,
    NumberDataPoint,
)

from otel_monitoring.capture.instruments import (
    CACHE_METRIC,
    DB_DURATION_METRIC,
    HTTP_CLIENT_DURATION_METRIC,
    HTTP_DURATION_METRIC,
    HTTP_RESPONSE_SIZE_METRIC,
)
from otel_monitoring.sanitize import is_sensitive_attribute
from otel_monitoring.self_telemetry import Guard
from otel_monitoring.semconv import UNMATCHED_ROUTE, status_class
from otel_monitoring.store.histogram import ExpHistogram
from otel_monitoring.store.memory import Agg, Attributes, Kind, MetricStore, SeriesKey

__all__ = ["Ingestor"]

_Attrs = dict[str, object]


def _is_error(attrs: _Attrs) -> bool:
    if "error.type" in attrs:
        return True
    status = attrs.get("http.response.status_code")
    return isinstance(status, int) and status >= 500


def _http_server(attrs: _Attrs) -> tuple[Attributes, bool]:
    route = attrs.get("http.route") or UNMATCHED_ROUTE
    method = attrs.get("http.request.method", "_OTHER")
    status = attrs.get("http.response.status_code")
    klass = status_class(status)
    if klass == "unknown" and "error.type" in attrs:
        klass = "5xx"
    key = (
        ("http.request.method", str(method)),
        ("http.route", str(route)),
        ("status_class", klass),
    )
    return key, _is_error(attrs)


def _db(attrs: _Attrs) -> tuple[Attributes, bool]:
    key = (
        ("db.query.summary", str(attrs.get("db.query.summary", "UNKNOWN"))),
        ("db.system.name", str(attrs.get("db.system.name", attrs.get("db.system", "unknown")))),
    )
    return key, "error.type" in attrs


def _http_client(attrs: _Attrs) -> tuple[Attributes, bool]:
    host = attrs.get("server.address") or "unknown"
    return (("server.address", str(host)),), _is_error(attrs)


def _cache(attrs: _Attrs) -> tuple[Attributes, bool]:
    key = (
        ("cache.name", str(attrs.get("cache.name", "default"))),
        ("cache.result", str(attrs.get("cache.result", "hit"))),
    )
    return key, False


def _generic(attrs: _Attrs) -> tuple[Attributes, bool]:
    key = tuple(sorted((k, str(v)) for k, v in attrs.items() if not is_sensitive_attribute(k)))
    return key, "error.type" in attrs


_NORMALISERS: dict[str, Callable[[_Attrs], tuple[Attributes, bool]]] = {
    HTTP_DURATION_METRIC: _http_server,
    HTTP_RESPONSE_SIZE_METRIC: _http_server,
    DB_DURATION_METRIC: _db,
    HTTP_CLIENT_DURATION_METRIC: _http_client,
    CACHE_METRIC: _cache,
}


class Ingestor:
    """Callable sink for :class:`~otel_monitoring.collect.reader.MonitoringMetricReader`."""

    def __init__(self, store: MetricStore, guard: Guard, now_s: Callable[[], float]) -> None:
        self.store = store
        self.guard = guard
        self.now_s = now_s

    def __call__(self, data: MetricsData) -> None:
        t_s = self.now_s()
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    normalise = _NORMALISERS.get(metric.name, _generic)
                    for point in metric.data.data_points:
                        try:
                            self._point(
                                metric.name, metric.unit or "", metric.data, point, normalise, t_s
                            )
                        except Exception as exc:  # instrumentation boundary
                            self.guard.error(f"ingesting {metric.name}", exc)

    def _point(
        self,
        name: str,
        unit: str,
        data: object,
        point: object,
        normalise: Callable[[_Attrs], tuple[Attributes, bool]],
        t_s: float,
    ) -> None:
        attrs: _Attrs = dict(getattr(point, "attributes", None) or {})
        key_attrs, is_error = normalise(attrs)
        agg = Agg()
        if isinstance(point, ExponentialHistogramDataPoint):
            negative = sum(point.negative.bucket_counts)
            count = point.count - negative
            if negative:
                self.guard.clock_step(negative)
            if count <= 0:
                return
            hist = ExpHistogram()
            hist.add_buckets(
                scale=point.scale,
                zero_count=point.zero_count,
                offset=point.positive.offset,
                bucket_counts=point.positive.bucket_counts,
                count=count,
                total=max(0.0, float(point.sum)) if not negative else _positive_sum(point),
                minimum=max(0.0, point.min),
                maximum=max(0.0, point.max),
            )
            agg.hist, agg.count, agg.value = hist, count, hist.sum
            kind = Kind.HISTOGRAM
        elif isinstance(point, HistogramDataPoint):
            agg.count, agg.value = point.count, float(point.sum)
            kind = Kind.HISTOGRAM
        elif isinstance(point, NumberDataPoint):
            agg.value = float(point.value)
            agg.count = 1
            kind = Kind.GAUGE if isinstance(data, Gauge) else Kind.SUM
        else:
            return
        if is_error:
            agg.errors = agg.count
        self.store.add(SeriesKey(name, key_attrs), kind, unit, t_s, agg)


def _positive_sum(point: ExponentialHistogramDataPoint) -> float:
    """Estimate of the sum of the positive values only (bucket midpoints)."""
    base = 2.0 ** (2.0**-point.scale)
    total = 0.0
    for i, count in enumerate(point.positive.bucket_counts):
        if count:
            total += count * base ** (point.positive.offset + i + 0.5)
    return total
