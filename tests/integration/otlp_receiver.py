"""A small OTLP/HTTP receiver for tests: decodes protobuf payloads with opentelemetry-proto."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


def _value(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def attributes(items: Any) -> dict[str, Any]:
    """OTLP KeyValue list as a dict."""
    return {kv.key: _value(kv.value) for kv in items}


class OtlpReceiver:
    """Collects decoded span and metric requests; ``changed`` is set on each arrival."""

    def __init__(self) -> None:
        self.traces: list[ExportTraceServiceRequest] = []
        self.metrics: list[ExportMetricsServiceRequest] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/traces":
                    request: Any = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    target = receiver.traces
                elif self.path == "/v1/metrics":
                    request = ExportMetricsServiceRequest()
                    request.ParseFromString(body)
                    target = receiver.metrics
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                with receiver.changed:
                    target.append(request)
                    receiver.changed.notify_all()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list[Any]:
        with self.changed:
            requests = list(self.traces)
        return [
            span
            for request in requests
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]

    def metric_points(self, name: str) -> list[Any]:
        with self.changed:
            requests = list(self.metrics)
        points = []
        for request in requests:
            for resource_metrics in request.resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        if metric.name != name:
                            continue
                        kind = metric.WhichOneof("data")
                        points.extend(getattr(metric, kind).data_points)
        return points

    def wait_for(self, predicate: Any, timeout_s: float = 60.0) -> bool:
        """Block until ``predicate()`` holds after an arrival, or the timeout passes."""
        with self.changed:
            return self.changed.wait_for(predicate, timeout=timeout_s)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
