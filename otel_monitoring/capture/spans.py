"""What only spans know: slow-trace exemplars, error samples and N+1 query patterns.

:class:`MonitoringSpanProcessor` looks at server spans as they end. Per span it does O(1)
work under one lock (a heap push bounded by ``slow_traces_per_route``), keeps every buffer
bounded (old items drop and are counted) and never raises into the app: failures go to the
:class:`~otel_monitoring.self_telemetry.Guard`.

A WebSocket session is not an HTTP request: the contrib ASGI middleware (zero-code mode)
makes a server span of each, lasting as long as the session, and a 2-s chat session read as
a 2-s slow trace of its route, a crashing handler as an HTTP error sample and the queries of
a long session as one N+1 pattern. Such spans (``url.scheme``, or the older ``http.scheme``,
is ``ws``/``wss``) are left out, as code mode's middleware leaves the sessions out.
"""

from __future__ import annotations

import heapq
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping
from contextvars import ContextVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from otel_monitoring.sanitize import bound_message, sanitize_message
from otel_monitoring.self_telemetry import Guard
from otel_monitoring.semconv import UNMATCHED_ROUTE
from otel_monitoring.types import ErrorSample, Exemplar, NPlusOnePattern

__all__ = [
    "REQUEST_TRACE_ID",
    "MonitoringSpanProcessor",
    "TraceFindings",
    "current_trace_id",
]


#: Trace id of the request being served when the middleware runs without SDK spans.
REQUEST_TRACE_ID: ContextVar[int] = ContextVar("otel_monitoring_request_trace_id", default=0)


def current_trace_id() -> int:
    """The trace id of the current request (lean mode) or OTel span; 0 when there is none."""
    trace_id = REQUEST_TRACE_ID.get()
    if trace_id:
        return trace_id
    context = trace.get_current_span().get_span_context()
    return context.trace_id if context.is_valid else 0


_HISTORY_INTERVALS = 60  # past intervals of exemplars kept per route
_OPEN_TRACES = 10_000  # traces with DB statements counted at once
_N_PLUS_ONE_KEPT = 100

# heap item: (duration_s, tie-breaker, exemplar)
_HeapItem = tuple[float, int, Exemplar]
_MAX_TYPE_CHARS = 200
_WEBSOCKET_SCHEMES = frozenset(("ws", "wss"))


class _ErrorEntry:
    """An error sample as recorded on the request path: its message only cut to a bounded
    prefix (:func:`bound_message`, a few microseconds), sanitized the first time the sample
    is read (:meth:`sample`). Never handed out: readers get the sanitized ``ErrorSample``."""

    __slots__ = ("_fields", "_message", "_sample", "timestamp_s")

    def __init__(
        self,
        timestamp_s: float,
        fields: tuple[str, str, int | None, str, str],
        message: str,
    ) -> None:
        self.timestamp_s = timestamp_s
        self._fields = fields  # route, method, status code, exception type, trace id
        self._message = message
        self._sample: ErrorSample | None = None

    def sample(self) -> ErrorSample:
        """The sanitized sample (computed once; concurrent first reads compute the same)."""
        message = self._message  # read before the sample: it is cleared after it is set
        sample = self._sample
        if sample is None:
            route, method, status_code, exception_type, trace_id = self._fields
            sample = ErrorSample(
                timestamp_s=self.timestamp_s,
                route=route,
                method=method,
                status_code=status_code,
                exception_type=exception_type,
                message=sanitize_message(message),
                trace_id=trace_id,
            )
            self._sample = sample
            self._message = ""
        return sample


class _RouteExemplars:
    __slots__ = ("heap", "history", "index")

    def __init__(self) -> None:
        self.index = -1
        self.heap: list[_HeapItem] = []
        self.history: deque[tuple[int, tuple[Exemplar, ...]]] = deque(maxlen=_HISTORY_INTERVALS)


class TraceFindings:
    """Bounded, thread-safe buffers of exemplars, error samples and N+1 patterns."""

    def __init__(
        self,
        *,
        guard: Guard,
        interval_s: float = 10.0,
        slow_traces_per_route: int = 5,
        error_samples: int = 100,
        n_plus_one_threshold: int = 5,
        max_routes: int = 2000,
    ) -> None:
        self.guard = guard
        self.interval_s = interval_s
        self.k = slow_traces_per_route
        self.n_plus_one_threshold = n_plus_one_threshold
        self.max_routes = max_routes
        self._routes: dict[tuple[str, str], _RouteExemplars] = {}
        self._errors: deque[_ErrorEntry] = deque(maxlen=max(1, error_samples))
        self._n_plus_one: deque[NPlusOnePattern] = deque(maxlen=_N_PLUS_ONE_KEPT)
        self._open: OrderedDict[int, dict[str, int]] = OrderedDict()
        self._seq = 0
        self._lock = threading.Lock()

    # -- writers (request path) ----------------------------------------------------------
    def note_statement(self, trace_id: int, statement: str) -> None:
        """Count one execution of a normalised statement within a trace."""
        with self._lock:
            counts = self._open.get(trace_id)
            if counts is None:
                if len(self._open) >= _OPEN_TRACES:
                    self._open.popitem(last=False)
                    self.guard.drop()
                counts = self._open[trace_id] = {}
            if statement in counts or len(counts) < 200:
                counts[statement] = counts.get(statement, 0) + 1

    def on_server_span(
        self,
        *,
        route: str,
        method: str,
        status_code: int | None,
        duration_s: float,
        end_s: float,
        trace_id: int,
        span_id: int,
        error: tuple[str, str] | None,
        exported: bool = True,
    ) -> None:
        """Record what a finished server span tells (exemplar, error, N+1).

        ``exported``: whether the span's trace goes to a backend; the findings of one that
        does not (the sampler dropped it) offer no trace and span id (``""``), as there is
        no trace to look up. An error's message is only cut to a bounded prefix here; it is
        sanitized when read.
        """
        shown_trace = f"{trace_id:032x}" if exported else ""
        entry_error = None
        if error is not None:
            entry_error = _ErrorEntry(
                end_s,
                (route, method, status_code, error[0][:_MAX_TYPE_CHARS], shown_trace),
                bound_message(error[1]),
            )
        with self._lock:
            statements = self._open.pop(trace_id, None)
            key = (route, method)
            entry = self._routes.get(key)
            if entry is None:
                if len(self._routes) >= self.max_routes:
                    key = (UNMATCHED_ROUTE, method)
                    entry = self._routes.get(key)
                if entry is None:
                    entry = self._routes[key] = _RouteExemplars()
            index = int(end_s // self.interval_s)
            if index != entry.index:
                if entry.heap:
                    best = tuple(item[2] for item in sorted(entry.heap, reverse=True))
                    entry.history.append((entry.index, best))
                entry.heap = []
                entry.index = index
            if self.k and (len(entry.heap) < self.k or duration_s > entry.heap[0][0]):
                self._seq += 1
                exemplar = Exemplar(
                    trace_id=shown_trace,
                    span_id=f"{span_id:016x}" if exported else "",
                    route=route,
                    method=method,
                    status_code=status_code,
                    duration_ms=duration_s * 1000.0,
                    timestamp_s=end_s,
                )
                item = (duration_s, self._seq, exemplar)
                if len(entry.heap) < self.k:
                    heapq.heappush(entry.heap, item)
                else:
                    heapq.heapreplace(entry.heap, item)
            if entry_error is not None:
                self._errors.append(entry_error)
            if statements:
                for statement, count in statements.items():
                    if count >= self.n_plus_one_threshold:
                        self._n_plus_one.append(
                            NPlusOnePattern(
                                statement=statement,
                                route=route,
                                method=method,
                                count=count,
                                trace_id=shown_trace,
                                timestamp_s=end_s,
                            )
                        )

    def forget_trace(self, trace_id: int) -> None:
        """Drop the statements counted within a trace that is not a request's (a WebSocket
        session's), so they neither wait in the bounded buffer nor count as an N+1."""
        with self._lock:
            self._open.pop(trace_id, None)

    # -- readers -------------------------------------------------------------------------
    def exemplars(
        self,
        *,
        route: str | None = None,
        method: str | None = None,
        since_s: float | None = None,
        limit: int = 10,
    ) -> list[Exemplar]:
        """The slowest traces (optionally of one route/method, since a wall time), slowest first."""
        found: list[Exemplar] = []
        with self._lock:
            for (r, m), entry in self._routes.items():
                if (route is not None and r != route) or (method is not None and m != method):
                    continue
                found.extend(item[2] for item in entry.heap)
                for _, best in entry.history:
                    found.extend(best)
        if since_s is not None:
            found = [e for e in found if e.timestamp_s >= since_s]
        found.sort(key=lambda e: e.duration_ms, reverse=True)
        return found[:limit]

    def errors(self, limit: int = 100) -> list[ErrorSample]:
        """Recent error samples, newest first, sanitized (at the first read of each sample:
        up to about a millisecond per sample, so call it off the event loop)."""
        with self._lock:
            items = list(self._errors)
        return [entry.sample() for entry in items[::-1][:limit]]

    def n_plus_one(self, limit: int = 100) -> list[NPlusOnePattern]:
        """Recent N+1 patterns, newest first."""
        with self._lock:
            items = list(self._n_plus_one)
        return items[::-1][:limit]

    def clear_before(self, t_s: float) -> int:
        """Drop findings older than wall time ``t_s``; returns how many went."""
        removed = 0
        with self._lock:
            for entry in self._routes.values():
                keep = [(i, b) for i, b in entry.history if b and b[0].timestamp_s >= t_s]
                removed += len(entry.history) - len(keep)
                entry.history.clear()
                entry.history.extend(keep)
            for buffer in (self._errors, self._n_plus_one):
                kept = [item for item in buffer if item.timestamp_s >= t_s]
                removed += len(buffer) - len(kept)
                buffer.clear()
                buffer.extend(kept)  # type: ignore[arg-type]
        return removed


def _exception_of(span: ReadableSpan) -> tuple[str, str] | None:
    for event in span.events:
        if event.name == "exception" and event.attributes:
            return (
                str(event.attributes.get("exception.type", "Exception")),
                str(event.attributes.get("exception.message", "")),
            )
    return None


def _is_websocket(attributes: Mapping[str, object]) -> bool:
    """Whether a server span is a WebSocket session's (its scheme is ``ws``/``wss``)."""
    scheme = attributes.get("url.scheme", attributes.get("http.scheme"))
    return scheme in _WEBSOCKET_SCHEMES


class MonitoringSpanProcessor(SpanProcessor):
    """Feeds :class:`TraceFindings` from ending server spans. O(1) per span; never raises."""

    def __init__(self, findings: TraceFindings, guard: Guard) -> None:
        self.findings = findings
        self.guard = guard
        self.enabled = True

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if span.kind is not SpanKind.SERVER or not self.enabled:
            return
        try:
            start, end = span.start_time, span.end_time
            if start is None or end is None:
                return
            duration_s = (end - start) / 1e9
            if duration_s < 0:
                self.guard.clock_step()
                return
            attributes = span.attributes or {}
            if _is_websocket(attributes):
                if span.context is not None:
                    self.findings.forget_trace(span.context.trace_id)
                return
            status = attributes.get("http.response.status_code")
            status_code = status if isinstance(status, int) else None
            error: tuple[str, str] | None = None
            if span.status.status_code is StatusCode.ERROR or (status_code or 0) >= 500:
                error = _exception_of(span) or (
                    str(attributes.get("error.type", status_code or "error")),
                    span.status.description or "",
                )
            context = span.context
            self.findings.on_server_span(
                route=str(attributes.get("http.route") or UNMATCHED_ROUTE),
                method=str(attributes.get("http.request.method", "_OTHER")),
                status_code=status_code,
                duration_s=duration_s,
                end_s=end / 1e9,
                trace_id=context.trace_id if context else 0,
                span_id=context.span_id if context else 0,
                error=error,
                exported=bool(context and context.trace_flags.sampled),
            )
        except Exception as exc:  # instrumentation boundary
            self.guard.error("span processor", exc)

    def shutdown(self) -> None:
        self.enabled = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
