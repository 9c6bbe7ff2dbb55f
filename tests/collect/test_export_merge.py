"""The store is fed every collection, the exporters once per export interval, merged.

A batch merged from several collections must be what one collection over the same time
would have exported: the SDK's own single collection (a second reader on the same provider)
is the reference, to the bucket.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import pytest
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogramDataPoint,
    InMemoryMetricReader,
    MetricsData,
    NumberDataPoint,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation
from recording_exporter import RecordingMetricExporter

from otel_monitoring.collect.exporters import temporality_preference
from otel_monitoring.collect.merge import MAX_POINTS, ExportBuffer, cumulative_policy
from otel_monitoring.collect.reader import HISTOGRAM_MAX_SIZE, MonitoringMetricReader

_DELTA = AggregationTemporality.DELTA


def _points(data: MetricsData) -> dict[tuple[str, tuple[tuple[str, object], ...]], object]:
    out: dict[tuple[str, tuple[tuple[str, object], ...]], object] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    key = (metric.name, tuple(sorted((point.attributes or {}).items())))
                    assert key not in out, f"two points of one stream in one export: {key}"
                    out[key] = point
    return out


def _trimmed(counts: Sequence[int]) -> list[int]:
    """Bucket counts without trailing empty buckets (the SDK may send some)."""
    out = list(counts)
    while out and out[-1] == 0:
        out.pop()
    return out


def _merged(batches: Sequence[MetricsData]) -> MetricsData:
    buffer = ExportBuffer(max_buckets=HISTOGRAM_MAX_SIZE)
    for batch in batches:
        buffer.add(batch)
    merged = buffer.take()
    assert merged is not None
    assert buffer.take() is None  # taken: the next export starts empty
    return merged


def test_merged_collections_export_what_one_collection_would() -> None:
    batches: list[MetricsData] = []
    ours = MonitoringMetricReader(sink=batches.append)
    once = InMemoryMetricReader(
        preferred_temporality={Counter: _DELTA, Histogram: _DELTA, UpDownCounter: _DELTA},
        preferred_aggregation={
            Histogram: ExponentialBucketHistogramAggregation(max_size=HISTOGRAM_MAX_SIZE)
        },
    )
    provider = MeterProvider(metric_readers=[ours, once])
    meter = provider.get_meter("test")
    duration = meter.create_histogram("duration", unit="s")
    requests = meter.create_counter("requests")
    in_flight = meter.create_up_down_counter("in_flight")
    level = [0.0]

    def observe(_: CallbackOptions) -> list[Observation]:
        return [Observation(level[0], {"pool": "main"})]

    meter.create_observable_gauge("pool_size", callbacks=[observe])
    # Collections of different ranges: a fine scale first (milliseconds), then one that
    # spans seven decades, which forces the merge down several scales; a zero; a route
    # that only some collections see.
    chunks = [
        [0.001 * (1 + i / 50) for i in range(50)],
        [10.0 ** (k / 7) for k in range(-21, 29)],
        [0.0, 0.5, 0.25],
        [3.0 + i for i in range(10)],
    ]
    for n, chunk in enumerate(chunks):
        for value in chunk:
            route = "/a" if n % 2 == 0 else "/b"
            duration.record(value, {"route": route})
            requests.add(1, {"route": route})
            in_flight.add(1 if n < 2 else -1, {"route": "/a"})
        level[0] = 10.0 * (n + 1)
        ours.collect_now()
    assert len(batches) == 4

    merged = _points(_merged(batches))
    reference = once.get_metrics_data()
    assert reference is not None
    expected = _points(reference)
    assert merged.keys() == expected.keys()
    for key, point in expected.items():
        got = merged[key]
        if isinstance(point, NumberDataPoint):
            assert isinstance(got, NumberDataPoint)
            assert got.value == point.value, key
        else:
            assert isinstance(point, ExponentialHistogramDataPoint)
            assert isinstance(got, ExponentialHistogramDataPoint)
            assert (got.count, got.zero_count, got.min, got.max) == (
                point.count,
                point.zero_count,
                point.min,
                point.max,
            ), key
            assert abs(got.sum - point.sum) <= 1e-9 * abs(point.sum), key
            # the same buckets: at the SDK's scale for the whole range, count for count
            assert got.scale == point.scale, key
            assert got.positive.offset == point.positive.offset, key
            assert _trimmed(got.positive.bucket_counts) == _trimmed(point.positive.bucket_counts)
    # the gauge states the last collection's value, not a sum
    pool = merged[("pool_size", (("pool", "main"),))]
    assert isinstance(pool, NumberDataPoint) and pool.value == 40.0
    # the merged point spans the collections
    first = _points(batches[0])[("requests", (("route", "/a"),))]
    last = _points(batches[-1])[("requests", (("route", "/b"),))]
    a = merged[("requests", (("route", "/a"),))]
    assert isinstance(first, NumberDataPoint) and isinstance(a, NumberDataPoint)
    assert a.start_time_unix_nano == first.start_time_unix_nano
    assert isinstance(last, NumberDataPoint)
    provider.shutdown()


def test_a_merged_histogram_keeps_within_the_bucket_limit() -> None:
    """Two collections each within 2048 buckets, far apart: the merge lowers the scale
    until the joint range fits, as the SDK's aggregation does."""
    batches: list[MetricsData] = []
    ours = MonitoringMetricReader(sink=batches.append)
    provider = MeterProvider(metric_readers=[ours])
    duration = provider.get_meter("test").create_histogram("duration")
    for value in (1e-6, 1.1e-6):
        duration.record(value)
    ours.collect_now()
    for value in (1e6, 1.1e6):
        duration.record(value)
    ours.collect_now()
    merged = _points(_merged(batches))[("duration", ())]
    assert isinstance(merged, ExponentialHistogramDataPoint)
    assert len(merged.positive.bucket_counts) <= HISTOGRAM_MAX_SIZE
    assert sum(merged.positive.bucket_counts) == merged.count == 4
    scales = [_points(b)[("duration", ())].scale for b in batches]  # type: ignore[attr-defined]
    assert merged.scale < min(scales)
    provider.shutdown()


def test_the_reader_collects_often_and_exports_once_per_interval() -> None:
    """Collections every 0.1 s feed the sink; the exporter gets one merged batch per 0.5 s,
    with every count in it."""
    collected: list[MetricsData] = []
    exporter = RecordingMetricExporter()
    reader = MonitoringMetricReader(
        sink=collected.append, exporters=[exporter], interval_s=0.5, collect_interval_s=0.1
    )
    provider = MeterProvider(metric_readers=[reader])
    requests = provider.get_meter("test").create_counter("requests")
    reader.start()
    sent = 0
    stop = time.monotonic() + 1.6
    while time.monotonic() < stop:  # bounded: 1.6 s
        requests.add(1, {"route": "/x"})
        sent += 1
        time.sleep(0.005)
    done = threading.Event()
    threading.Thread(target=lambda: (reader.shutdown(), done.set()), daemon=True).start()
    assert done.wait(10)
    exports = exporter.batches
    # 16 collection intervals, 3 export intervals (and a last export at shutdown)
    assert reader.collections >= 10, reader.collections
    assert 2 <= len(exports) <= 5, len(exports)
    assert len(exports) < reader.collections / 2
    totals = [_points(batch)[("requests", (("route", "/x"),))] for batch in exports]
    assert sum(p.value for p in totals if isinstance(p, NumberDataPoint)) == sent


def test_cumulative_preference_exports_running_totals() -> None:
    """``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=cumulative`` (what Prometheus-like
    backends take): each export holds the totals since the first collection, an idle stream
    included; under ``delta`` only the up-down counters are totals."""
    batches: list[MetricsData] = []
    reader = MonitoringMetricReader(sink=batches.append)
    provider = MeterProvider(metric_readers=[reader])
    meter = provider.get_meter("test")
    requests, duration = meter.create_counter("requests"), meter.create_histogram("duration")
    active = meter.create_up_down_counter("active")
    cumulative = ExportBuffer(
        max_buckets=HISTOGRAM_MAX_SIZE, cumulative=cumulative_policy("cumulative")
    )
    delta = ExportBuffer(max_buckets=HISTOGRAM_MAX_SIZE, cumulative=cumulative_policy("delta"))
    exports: list[tuple[MetricsData, MetricsData]] = []
    for n, routes in enumerate((["/a", "/b"], ["/a"], ["/a"])):  # /b idle after the first
        for route in routes:
            for k in range(n + 2):
                requests.add(1, {"route": route})
                duration.record(0.01 * (k + 1), {"route": route})
        active.add(2 - n)
        reader.collect_now()
        batch = batches.pop()
        cumulative.add(batch)
        delta.add(batch)
        now = 2_000_000_000_000_000_000 + n
        taken = (cumulative.take(now), delta.take(now))
        assert taken[0] is not None and taken[1] is not None
        exports.append((taken[0], taken[1]))
    totals, deltas = _points(exports[-1][0]), _points(exports[-1][1])
    a, b = totals[("requests", (("route", "/a"),))], totals[("requests", (("route", "/b"),))]
    assert isinstance(a, NumberDataPoint) and isinstance(b, NumberDataPoint)
    assert (a.value, b.value) == (2 + 3 + 4, 2)  # /b still exported, with its total
    assert b.time_unix_nano == 2_000_000_000_000_000_002  # ... as of this export
    first = _points(exports[0][0])[("requests", (("route", "/a"),))]
    assert isinstance(first, NumberDataPoint)
    assert a.start_time_unix_nano == first.start_time_unix_nano
    hist = totals[("duration", (("route", "/a"),))]
    assert isinstance(hist, ExponentialHistogramDataPoint) and hist.count == 9
    assert _temporality(exports[-1][0], "requests") == AggregationTemporality.CUMULATIVE
    # delta: counters and histograms per export, the up-down counter a total
    a_delta = deltas[("requests", (("route", "/a"),))]
    assert isinstance(a_delta, NumberDataPoint) and a_delta.value == 4
    assert ("requests", (("route", "/b"),)) not in deltas
    active_now = deltas[("active", ())]
    assert isinstance(active_now, NumberDataPoint) and active_now.value == 2 + 1 + 0
    assert _temporality(exports[-1][1], "requests") == AggregationTemporality.DELTA
    assert _temporality(exports[-1][1], "active") == AggregationTemporality.CUMULATIVE
    provider.shutdown()


def _temporality(data: MetricsData, name: str) -> AggregationTemporality:
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    return metric.data.aggregation_temporality  # type: ignore[union-attr]
    raise AssertionError(f"no {name}")


def test_an_unknown_temporality_preference_is_said_and_exports_delta(
    caplog: pytest.LogCaptureFixture,
) -> None:
    variable = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
    assert temporality_preference({variable: " Cumulative "}) == "cumulative"
    assert temporality_preference({}) is None
    with caplog.at_level(logging.WARNING, logger="otel_monitoring"):
        assert temporality_preference({variable: "cumulativ"}) is None
    assert "unknown OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE='cumulativ'" in caplog.text


def test_a_backend_that_does_not_answer_never_delays_a_collection() -> None:
    """Exports that take 1 s each, every 0.2 s: the collections still come every 0.1 s
    (exported on one thread, collected on another; before, each export held the next
    collection back, and the finest buckets got one clump per export)."""
    exporter = RecordingMetricExporter(delay_s=1.0)
    reader = MonitoringMetricReader(
        sink=lambda _: None, exporters=[exporter], interval_s=0.2, collect_interval_s=0.1
    )
    provider = MeterProvider(metric_readers=[reader])
    requests = provider.get_meter("test").create_counter("requests")
    reader.start()
    stop = time.monotonic() + 2.0
    while time.monotonic() < stop:  # bounded: 2 s
        requests.add(1)
        time.sleep(0.01)
    collections = reader.collections
    done = threading.Event()
    threading.Thread(target=lambda: (reader.shutdown(), done.set()), daemon=True).start()
    assert done.wait(10)
    assert collections >= 12, collections  # 20 intervals of 0.1 s; 2-3 if held back
    assert 1 <= len(exporter.batches) <= 4


def test_attribute_sets_beyond_the_limit_merge_into_the_overflow_set() -> None:
    """Each collection within the SDK's limit, but new sets every time (a user id as an
    attribute): the merged stream keeps at most ``MAX_POINTS`` sets, the rest counted under
    ``otel.metric.overflow``; nothing is lost, nothing grows without bound."""
    batches: list[MetricsData] = []
    reader = MonitoringMetricReader(sink=batches.append)
    provider = MeterProvider(metric_readers=[reader])
    requests = provider.get_meter("test").create_counter("requests")
    buffer = ExportBuffer(
        max_buckets=HISTOGRAM_MAX_SIZE, cumulative=cumulative_policy("cumulative")
    )
    for collection in range(3):
        for user in range(1000):
            requests.add(1, {"user": f"{collection}-{user}"})
        reader.collect_now()
        buffer.add(batches.pop())
    points = _points(buffer.take(1) or MetricsData(resource_metrics=[]))
    assert len(points) == MAX_POINTS
    overflow = points[("requests", (("otel.metric.overflow", True),))]
    assert isinstance(overflow, NumberDataPoint) and overflow.value == 3000 - (MAX_POINTS - 1)
    assert sum(p.value for p in points.values() if isinstance(p, NumberDataPoint)) == 3000
    provider.shutdown()
