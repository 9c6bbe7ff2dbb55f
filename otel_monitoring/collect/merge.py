"""Delta batches collected between two exports, merged into one batch per export.

The store is fed at its finest buckets' cadence (10 s), the OTLP export at the export interval
(``OTEL_METRIC_EXPORT_INTERVAL``, often 60 s): a backend billed per data point gets one point
per stream and export interval, whatever the collection cadence or how often the API refreshed
its numbers. Consecutive delta points of one stream merge exactly:

* sums add (the merged point spans from the first point's start to the last one's end);
* gauges keep the last value;
* explicit-bucket histograms add their counts (same bounds; after a change of bounds by a
  view, the newer point stands);
* base-2 exponential histograms join at the coarser scale (two neighbour buckets become one,
  exact) and keep at most ``max_buckets`` buckets per range, as the SDK's aggregation does.

Streams exported cumulative (``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE``, see
:func:`cumulative_policy`) are the same sums kept across exports.

The SDK merges its own aggregation state, not exported points, so this module does it (no
library in the field merges OTLP data points). Memory is bounded, not by collections: at
most :data:`MAX_POINTS` attribute sets per metric (the rest merge into the specification's
``otel.metric.overflow`` set), ``max_buckets`` per histogram range, and the newest
``max_exemplars`` exemplars of an attribute set and export. Not thread-safe: the reader
serialises calls.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Buckets,
    ExponentialHistogramDataPoint,
    Gauge,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.metrics.export import DataPointT as _Point
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.util.types import AttributeValue

from otel_monitoring.store.histogram import ExpHistogram

__all__ = ["MAX_POINTS", "ExportBuffer", "cumulative_policy"]

_MAX_SCALE = 20  # the finest scale of the data model: nothing is lost until a merge needs it

_AttrKey = tuple[tuple[str, object], ...]

#: Attribute sets per stream at most (the SDK's default cardinality limit): beyond it, points
#: merge into the overflow set the specification names. The SDK bounds each collection; the
#: sets of many collections (and a cumulative stream's, kept across exports) need a bound too.
MAX_POINTS = 2000
_OVERFLOW: dict[str, AttributeValue] = {"otel.metric.overflow": True}
_OVERFLOW_KEY: _AttrKey = (("otel.metric.overflow", True),)


def _attr_key(attributes: Mapping[str, object] | None) -> _AttrKey:
    """A hashable key of a point's attributes (sequence values become tuples)."""
    if not attributes:
        return ()
    return tuple(
        sorted((k, tuple(v) if isinstance(v, list | tuple) else v) for k, v in attributes.items())
    )


class _ExponentialSum:
    """Exponential histogram points of one stream added up; the point is built at export
    (building it each collection cost more than the collection)."""

    def __init__(self, first: ExponentialHistogramDataPoint, max_buckets: int) -> None:
        self.max_buckets = max_buckets
        self.first = self.last = first
        self.count, self.sum, self.zero_count = 0, 0.0, 0
        self.min, self.max = math.inf, -math.inf
        self.positive, self.negative = ExpHistogram(_MAX_SCALE), ExpHistogram(_MAX_SCALE)
        self.add(first)

    def add(self, point: ExponentialHistogramDataPoint) -> None:
        self.last = point
        self.count += point.count
        self.sum += point.sum
        self.zero_count += point.zero_count
        self.min, self.max = min(self.min, point.min), max(self.max, point.max)
        for hist, buckets in ((self.positive, point.positive), (self.negative, point.negative)):
            hist.add_bucket_counts(
                point.scale, buckets.offset, buckets.bucket_counts, self.max_buckets
            )

    def point(self) -> ExponentialHistogramDataPoint:
        scale = min(self.positive.scale, self.negative.scale)
        for hist in (self.positive, self.negative):
            hist.downscale_to(scale)
        return replace(
            self.last,
            start_time_unix_nano=self.first.start_time_unix_nano,
            count=self.count,
            sum=self.sum,
            scale=scale,
            zero_count=self.zero_count,
            positive=Buckets(self.positive.offset, self.positive.counts.tolist()),
            negative=Buckets(self.negative.offset, self.negative.counts.tolist()),
            min=self.min,
            max=self.max,
        )


def _merge_explicit(old: HistogramDataPoint, new: HistogramDataPoint) -> HistogramDataPoint:
    if list(old.explicit_bounds) != list(new.explicit_bounds):
        return new  # a view changed the bounds: the older counts cannot be placed
    return replace(
        new,
        start_time_unix_nano=old.start_time_unix_nano,
        count=old.count + new.count,
        sum=old.sum + new.sum,
        bucket_counts=[a + b for a, b in zip(old.bucket_counts, new.bucket_counts, strict=True)],
        min=min(old.min, new.min),
        max=max(old.max, new.max),
    )


@dataclass
class _Stream:
    """One metric's merged points, by attribute set, since the last export."""

    metric: Metric
    max_buckets: int
    cumulative: bool
    points: dict[_AttrKey, _Point | _ExponentialSum] = field(default_factory=dict)
    exemplars: dict[_AttrKey, list[Exemplar]] = field(default_factory=dict)

    def add(self, point: _Point, max_exemplars: int) -> None:
        key = _attr_key(point.attributes)
        if key not in self.points and len(self.points) >= MAX_POINTS - 1:
            key = _OVERFLOW_KEY  # one set kept for the overflow
            point = replace(point, attributes=_OVERFLOW)
        old = self.points.get(key)
        if old is None:
            self.points[key] = point
        elif isinstance(old, _ExponentialSum) and isinstance(point, ExponentialHistogramDataPoint):
            old.add(point)
        else:
            self.points[key] = self._merge(old, point)
        if point.exemplars:
            kept = [*self.exemplars.get(key, ()), *point.exemplars]
            self.exemplars[key] = kept[-max_exemplars:]

    def _merge(self, old: _Point | _ExponentialSum, new: _Point) -> _Point | _ExponentialSum:
        data = self.metric.data
        delta = getattr(data, "aggregation_temporality", None) == AggregationTemporality.DELTA
        if not delta or isinstance(data, Gauge) or type(old) is not type(new):
            return new  # a gauge, or a cumulative point: the newest states the whole
        if isinstance(old, NumberDataPoint) and isinstance(new, NumberDataPoint):
            return replace(
                new, start_time_unix_nano=old.start_time_unix_nano, value=old.value + new.value
            )
        if isinstance(old, HistogramDataPoint) and isinstance(new, HistogramDataPoint):
            return _merge_explicit(old, new)
        if isinstance(old, ExponentialHistogramDataPoint) and isinstance(
            new, ExponentialHistogramDataPoint
        ):
            merged = _ExponentialSum(old, self.max_buckets)
            merged.add(new)
            return merged
        return new

    def to_metric(self, now_ns: int) -> Metric:
        """This stream's points at ``now_ns``; exemplars are the interval's, so they go."""
        points: list[_Point] = []
        for key, value in self.points.items():
            point = value.point() if isinstance(value, _ExponentialSum) else value
            if self.cumulative and point.time_unix_nano < now_ns:  # a total holds until now
                point = replace(point, time_unix_nano=now_ns)
            if key in self.exemplars:
                point = replace(point, exemplars=self.exemplars[key])
            points.append(point)
        self.exemplars = {}
        data: Any = self.metric.data  # Sum, Gauge, Histogram, ExponentialHistogram: all hold points
        data = replace(data, data_points=points)
        if self.cumulative:
            data = replace(data, aggregation_temporality=AggregationTemporality.CUMULATIVE)
        return replace(self.metric, data=data)


def cumulative_policy(preference: str | None) -> Callable[[Metric], bool]:
    """Which streams are exported cumulative under ``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_
    PREFERENCE`` (``None``: unset, every stream delta, the package's default).

    ``cumulative``: every stream (gauges have no temporality). ``delta`` and ``lowmemory``:
    the up-down counters (non-monotonic sums), as the OTLP exporter's specification maps
    them; ``lowmemory`` would also keep the observable counters cumulative, which exported
    data cannot tell from the others, so it is taken as ``delta``.
    """
    if preference == "cumulative":
        return lambda metric: not isinstance(metric.data, Gauge)
    if preference in ("delta", "lowmemory"):
        return lambda metric: isinstance(metric.data, Sum) and not metric.data.is_monotonic
    return lambda metric: False


class ExportBuffer:
    """Merges the delta batches of each collection until :meth:`take` (one per export).

    Streams ``cumulative`` selects are exported as running totals since their first
    collection (and kept across exports, as the SDK's cumulative readers keep theirs, within
    :data:`MAX_POINTS` attribute sets); the others as the delta since the last export.
    """

    def __init__(
        self,
        *,
        max_buckets: int,
        max_exemplars: int = 20,
        cumulative: Callable[[Metric], bool] | None = None,
    ) -> None:
        self.max_buckets = max_buckets
        self.max_exemplars = max_exemplars
        self.cumulative = cumulative or cumulative_policy(None)
        self._scopes: dict[tuple[Resource, str, InstrumentationScope, str], dict[str, _Stream]] = {}

    def add(self, data: MetricsData) -> None:
        """Merge one collection's batch into what is waiting for export."""
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                streams = self._scopes.setdefault(
                    (rm.resource, rm.schema_url, sm.scope, sm.schema_url), {}
                )
                for metric in sm.metrics:
                    stream = streams.get(metric.name)
                    if stream is None or type(stream.metric.data) is not type(metric.data):
                        stream = streams[metric.name] = _Stream(
                            metric, self.max_buckets, self.cumulative(metric)
                        )
                    else:
                        stream.metric = metric  # the newest description and unit
                    for point in metric.data.data_points:
                        stream.add(point, self.max_exemplars)

    def take(self, now_ns: int = 0) -> MetricsData | None:
        """The batch to export at ``now_ns`` (ns since the epoch; the time of cumulative
        points that saw no new data), ``None`` when there is nothing to send."""
        if not self._scopes:
            return None
        by_resource: dict[tuple[Resource, str], list[ScopeMetrics]] = {}
        kept: dict[tuple[Resource, str, InstrumentationScope, str], dict[str, _Stream]] = {}
        for key, streams in self._scopes.items():
            resource, rm_schema, scope, sm_schema = key
            metrics = [stream.to_metric(now_ns) for stream in streams.values()]
            by_resource.setdefault((resource, rm_schema), []).append(
                ScopeMetrics(scope=scope, metrics=metrics, schema_url=sm_schema)
            )
            running = {name: s for name, s in streams.items() if s.cumulative}
            if running:
                kept[key] = running
        self._scopes = kept
        return MetricsData(resource_metrics=_resource_metrics(by_resource.items()))


def _resource_metrics(
    groups: Iterable[tuple[tuple[Resource, str], list[ScopeMetrics]]],
) -> list[ResourceMetrics]:
    return [
        ResourceMetrics(resource=resource, scope_metrics=scopes, schema_url=schema)
        for (resource, schema), scopes in groups
    ]
