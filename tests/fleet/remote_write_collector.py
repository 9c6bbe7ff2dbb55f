"""What the Collector of ``collector-config.yaml`` does to our histograms, for tests.

No Collector binary can be installed here, so this plays its metrics pipeline for the metrics
fleet mode reads: an OTLP/HTTP receiver (``/v1/metrics``, protobuf as the SDK's exporter
sends it) -> ``deltatocumulative`` for delta **exponential** histograms (per stream, buckets
merged at the lower of the two scales) -> ``prometheusremotewrite``'s translation to native
histograms, sent as a snappy-compressed ``prompb.WriteRequest`` to Prometheus's
``/api/v1/write``. The translation follows opentelemetry-collector-contrib's
``pkg/translator/prometheusremotewrite``: metric name sanitised plus the unit suffix
(``s`` -> ``_seconds``, ``By`` -> ``_bytes``), attribute keys sanitised, ``job`` =
``[service.namespace/]service.name``, ``instance`` = ``service.instance.id``,
``otel_scope_name``/``otel_scope_version``, schema = scale capped at 8 (finer buckets merged),
Prometheus bucket index = OTel index + 1, zero threshold 1e-128, integer counts.

Other metric types are not forwarded (fleet mode reads only histograms here).
"""

from __future__ import annotations

import gzip
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cramjam
import httpx
import prompb
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality

_UNIT_SUFFIX = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "1": ""}
_MAX_SCHEMA = 8


def _value(any_value: Any) -> str:
    kind = any_value.WhichOneof("value")
    return str(getattr(any_value, kind)) if kind else ""


def prometheus_name(name: str, unit: str) -> str:
    """The translator's compliant name with unit suffix (``add_metric_suffixes: true``)."""
    base = re.sub(r"[^a-zA-Z0-9_:]", "_", name)
    suffix = _UNIT_SUFFIX.get(unit, re.sub(r"[^a-zA-Z0-9_]", "_", unit))
    return f"{base}_{suffix}" if suffix and not base.endswith(f"_{suffix}") else base


def label_name(key: str) -> str:
    """The translator's NormalizeLabel: invalid characters to ``_``, ``key_`` before a digit."""
    name = re.sub(r"[^a-zA-Z0-9_]", "_", key)
    return f"key_{name}" if name[:1].isdigit() else name


@dataclass
class CumulativeExponential:
    """One stream's cumulative exponential histogram (what deltatocumulative keeps)."""

    scale: int
    count: int = 0
    sum: float = 0.0
    zero_count: int = 0
    positive: dict[int, int] = field(default_factory=dict)  # OTel index at ``scale`` -> count
    time_unix_nano: int = 0

    def add(self, point: Any) -> None:
        """Add a delta ``ExponentialHistogramDataPoint`` (protobuf), lowering the scale if
        the point's is lower."""
        target = min(self.scale, point.scale)
        if target < self.scale:
            merged: dict[int, int] = {}
            for index, n in self.positive.items():
                merged[index >> (self.scale - target)] = (
                    merged.get(index >> (self.scale - target), 0) + n
                )
            self.positive, self.scale = merged, target
        shift = point.scale - target
        for i, n in enumerate(point.positive.bucket_counts):
            if n:
                index = (point.positive.offset + i) >> shift
                self.positive[index] = self.positive.get(index, 0) + n
        self.count += point.count
        self.sum += point.sum
        self.zero_count += point.zero_count
        self.time_unix_nano = max(self.time_unix_nano, point.time_unix_nano)

    def native(self) -> Any:
        """The ``prompb.Histogram`` the translator writes for this state."""
        schema = min(self.scale, _MAX_SCHEMA)
        down = self.scale - schema
        buckets: dict[int, int] = {}
        for index, n in self.positive.items():
            k = (index >> down) + 1  # Prometheus bucket k is (base^(k-1), base^k]
            buckets[k] = buckets.get(k, 0) + n
        histogram = prompb.Histogram(
            count_int=self.count,
            sum=self.sum,
            schema=schema,
            zero_threshold=1e-128,
            zero_count_int=self.zero_count,
            timestamp=self.time_unix_nano // 1_000_000,
        )
        previous, last = 0, None
        for k in sorted(buckets):
            if last is None or k - last - 1 > 2:  # a new span after a gap of more than two
                histogram.positive_spans.add(offset=k if last is None else k - last - 1, length=0)
            else:
                for _ in range(k - last - 1):  # short gaps are written as empty buckets
                    histogram.positive_spans[-1].length += 1
                    histogram.positive_deltas.append(-previous)
                    previous = 0
            histogram.positive_spans[-1].length += 1
            histogram.positive_deltas.append(buckets[k] - previous)
            previous, last = buckets[k], k
        return histogram

    def bucket_bounds(self, schema: int, rank: float) -> tuple[float, float]:
        """Bounds, at ``schema`` (<= this scale), of the bucket where the cumulative count
        reaches ``rank``: the true quantile of that rank lies inside them."""
        down = self.scale - schema
        seen = float(self.zero_count)
        for index in sorted(self.positive):
            seen += self.positive[index]
            if seen >= rank:
                k = index >> down
                base = 2.0 ** (2.0**-schema)
                return base**k, base ** (k + 1)
        raise ValueError(f"rank {rank} above the count {self.count}")


Key = tuple[tuple[tuple[str, str], ...], str]


class RemoteWriteCollector:
    """OTLP/HTTP in, Prometheus remote write out (see the module docstring).

    ``streams`` maps (labels without ``__name__``, Prometheus metric name) to the cumulative
    state; ``errors`` collects remote-write failures (a test asserts it empty).
    """

    def __init__(self, remote_write_url: str) -> None:
        self.remote_write_url = remote_write_url
        self.streams: dict[Key, CumulativeExponential] = {}
        self.errors: list[str] = []
        self.writes = 0
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=10.0)
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/metrics":
                    request = ExportMetricsServiceRequest()
                    request.ParseFromString(body)
                    collector.receive(request)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def receive(self, request: Any) -> None:
        """Accumulate the request's delta exponential histograms and remote-write each
        updated stream's cumulative histogram (in arrival order: one lock)."""
        with self._lock:
            touched: list[Key] = []
            for resource_metrics in request.resource_metrics:
                resource = {kv.key: _value(kv.value) for kv in resource_metrics.resource.attributes}
                for scope_metrics in resource_metrics.scope_metrics:
                    scope = scope_metrics.scope
                    for metric in scope_metrics.metrics:
                        if metric.WhichOneof("data") != "exponential_histogram":
                            continue
                        data = metric.exponential_histogram
                        if (
                            data.aggregation_temporality
                            != AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
                        ):
                            continue
                        name = prometheus_name(metric.name, metric.unit)
                        for point in data.data_points:
                            labels = self._labels(resource, scope, point.attributes)
                            key = (labels, name)
                            state = self.streams.get(key)
                            if state is None:
                                state = self.streams[key] = CumulativeExponential(point.scale)
                            state.add(point)
                            touched.append(key)
            if touched:
                self._write(touched)

    @staticmethod
    def _labels(
        resource: Mapping[str, str], scope: Any, attributes: Iterable[Any]
    ) -> tuple[tuple[str, str], ...]:
        labels: dict[str, str] = {}
        for kv in sorted(attributes, key=lambda kv: kv.key):
            labels[label_name(kv.key)] = _value(kv.value)
        if "service.name" in resource:
            namespace = resource.get("service.namespace")
            service = resource["service.name"]
            labels["job"] = f"{namespace}/{service}" if namespace else service
        if "service.instance.id" in resource:
            labels["instance"] = resource["service.instance.id"]
        if scope.name:
            labels["otel_scope_name"] = scope.name
        if scope.version:
            labels["otel_scope_version"] = scope.version
        return tuple(sorted(labels.items()))

    def _write(self, keys: list[Key]) -> None:
        request = prompb.WriteRequest()
        for key in dict.fromkeys(keys):
            labels, name = key
            series = request.timeseries.add()
            for label, value in sorted((*labels, ("__name__", name))):
                series.labels.add(name=label, value=value)
            series.histograms.append(self.streams[key].native())
        body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
        try:
            response = self._http.post(
                self.remote_write_url,
                content=body,
                headers={
                    "Content-Encoding": "snappy",
                    "Content-Type": "application/x-protobuf",
                    "X-Prometheus-Remote-Write-Version": "0.1.0",
                },
            )
        except httpx.HTTPError as exc:
            self.errors.append(f"remote write failed: {exc!r}")
            return
        if response.status_code // 100 != 2:
            self.errors.append(f"remote write answered {response.status_code}: {response.text}")
        self.writes += 1

    def merged(self, name: str, **match: str) -> CumulativeExponential | None:
        """The streams of ``name`` whose labels include ``match``, merged (exact counts)."""
        with self._lock:
            states = [
                s
                for (labels, n), s in self.streams.items()
                if n == name and match.items() <= dict(labels).items()
            ]
            if not states:
                return None
            scale = min(s.scale for s in states)
            merged = CumulativeExponential(scale)
            for s in states:
                down = s.scale - scale
                for index, n in s.positive.items():
                    merged.positive[index >> down] = merged.positive.get(index >> down, 0) + n
                merged.count += s.count
                merged.sum += s.sum
                merged.zero_count += s.zero_count
            return merged

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._http.close()
