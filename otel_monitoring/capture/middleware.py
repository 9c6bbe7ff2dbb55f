"""A lean ASGI middleware: one server span and two measurements per request.

Why not the contrib ``opentelemetry-instrumentation-fastapi`` on this path: it creates two
extra internal spans per request (``http send``/``http receive``), matches the route a second
time to name the span and builds many attributes, which measured about 300 us per request on
a 2-core machine against about 54 us for the bare app (see docs/benchmarks.md). This
middleware reads the route Starlette already matched (``scope["route"]``), follows the stable
HTTP semantic conventions (``http.server.request.duration`` in seconds, ``http.route``,
``http.request.method``, ``http.response.status_code``, ``error.type``) and adds a
``Server-Timing`` header. The contrib instrumentation stays the capture path in zero-code mode.

Requests are named by their full route template through mounts (``/v2/pong``,
``/static/{path}``; see :mod:`otel_monitoring.capture.routes`) and measured once: mounted apps,
FastAPI's native telemetry of a mounted FastAPI app included, see the scope marked as measured.

A request lasts until its response's last byte has been handed to the server (the semantic
conventions' "last byte sent"; :mod:`~otel_monitoring.capture.response_end`), not until the
app returns: Starlette runs a response's ``BackgroundTasks`` (an e-mail to send, an audit row
to write) after that message, inside the same ASGI call, and counting them made a 10-ms
response read as seconds. (The contrib ASGI middleware ends its span there too, but records
its duration metric when the app returns: open-telemetry/opentelemetry-python-contrib#3591.)
An exception a background task raises is still the request's ``error.type``.

``instrument_app`` makes it the app's outermost layer
(:func:`~otel_monitoring.capture.outermost.wrap_outermost`): the app's own middleware, added
before or after, and the status its exception handlers send are inside what it measures.

Guarantees: bookkeeping errors are counted by the guard and never reach the app; the app's
own exceptions propagate unchanged; excluded paths (health probes, the monitoring API; exact
paths) skip everything.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from otel_monitoring.capture.instruments import Instruments
from otel_monitoring.capture.response_end import ResponseEnd
from otel_monitoring.capture.routes import (
    FASTAPI_TELEMETRY,
    MEASURED,
    app_path,
    included_path,
    route_template,
)
from otel_monitoring.capture.spans import REQUEST_TRACE_ID, TraceFindings
from otel_monitoring.self_telemetry import Guard
from otel_monitoring.semconv import UNMATCHED_ROUTE

__all__ = ["MonitoringMiddleware", "add_server_timing", "route_of"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY")
)


def _incoming_trace_id(scope: Scope) -> int:
    """The trace id of a W3C ``traceparent`` request header, or 0."""
    for name, value in scope.get("headers", ()):
        if name == b"traceparent":
            parts = value.split(b"-")
            if len(parts) >= 4 and len(parts[1]) == 32:
                try:
                    return int(parts[1], 16)
                except ValueError:
                    return 0
    return 0


def route_of(scope: Scope, app: object = None, root_path: str | None = None) -> str | None:
    """Full route template of a served request, from the root path; ``None`` if unmatched.

    ``app`` and ``root_path`` are the outermost app and the root path as it received the
    request. The route Starlette matched (``scope["route"]``) names the request when no mount
    was crossed, at the full template ``app`` serves it at (:func:`included_path`: with the
    prefixes of ``include_router``); otherwise (a mounted app, documentation routes and other
    routes FastAPI does not record in the scope, a route served at several templates, a
    request answered by a middleware before it reached the router: a CORS preflight, an
    auth check's 401, an exception) the route is found again in ``app`` by
    :func:`~otel_monitoring.capture.routes.route_template`, with the mounts' path templates,
    as the contrib instrumentation names it in zero-code mode.
    """
    root = str(scope.get("root_path", "")) if root_path is None else root_path
    route = scope.get("route")
    path = getattr(route, "path", None)
    mounted = scope.get("root_path", "") != root
    if isinstance(path, str) and not mounted:
        if app is None:
            return root + path
        full = included_path(app, route)  # with the prefixes of include_router
        if full is not None:
            return root + full
    if app is None or not (mounted or "endpoint" in scope or "router" not in scope):
        # the router matched nothing (it records a matched route's endpoint): no second search
        return None
    try:
        return route_template(app, scope, root)
    except Exception:  # instrumentation boundary: still counted, as <unmatched>
        return None


class _Headers:
    """Getter for the propagator over raw ASGI headers (lower-case byte names)."""

    @staticmethod
    def get(carrier: dict[str, str], key: str) -> list[str] | None:
        value = carrier.get(key)
        return None if value is None else [value]

    @staticmethod
    def keys(carrier: dict[str, str]) -> list[str]:
        return list(carrier)


class MonitoringMiddleware:
    """Pure ASGI middleware; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        tracer: Tracer | None,
        instruments: Instruments,
        findings: TraceFindings | None = None,
        guard: Guard,
        excluded_paths: frozenset[str],
        excluded_prefixes: tuple[str, ...] = (),
        server_timing: bool = True,
    ) -> None:
        self.app = app
        self.tracer = tracer
        self.findings = findings
        self.duration = instruments.http_duration
        self.size = instruments.http_response_size
        self.guard = guard
        self.excluded_paths = excluded_paths
        self.excluded_prefixes = excluded_prefixes
        self.server_timing = server_timing
        self._fields = frozenset(
            f.lower().encode("latin-1") for f in propagate.get_global_textmap().fields
        )

    def _excluded(self, path: str) -> bool:
        if path in self.excluded_paths:
            return True
        return any(path.startswith(prefix) for prefix in self.excluded_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or MEASURED in scope:  # an outer app measures it already
            await self.app(scope, receive, send)
            return
        # Mounted apps see this mark (and FastAPI's, for their native telemetry): one request,
        # one count, named by the outermost app.
        scope[MEASURED] = True
        scope.setdefault(FASTAPI_TELEMETRY, None)
        if self._excluded(app_path(scope)):
            await self.app(scope, receive, send)
            return
        entry = _Entry(scope)
        if self.tracer is None:
            await self._lean(scope, receive, send, entry)
            return
        start = time.perf_counter()
        try:
            method = scope.get("method", "GET")
            if method not in _METHODS:
                method = "_OTHER"
            parent = self._parent_context(scope)
            span = self.tracer.start_span(method, context=parent, kind=SpanKind.SERVER)
            token = otel_context.attach(trace.set_span_in_context(span, parent))
        except Exception as exc:  # instrumentation boundary
            self.guard.error("middleware start", exc)
            await self.app(scope, receive, send)
            return

        state = _ResponseState()
        send_wrapper = self._sender(send, state, start)

        error_type: str | None = None
        error: tuple[str, str] | None = None  # an unsampled request's (no span records it)
        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException as exc:
            kind = type(exc)
            error_type = kind.__qualname__
            try:
                if span.is_recording():
                    span.record_exception(exc)
                else:
                    error = (_exception_type(kind), _message_of(exc))
            except Exception as inner:  # instrumentation boundary
                self.guard.error("middleware exception", inner)
            raise
        finally:
            try:
                duration_s = state.ended() - start
                if span.is_recording():
                    self._finish(scope, entry, span, method, state, error_type, duration_s)
                else:  # the sampler dropped it: fed as in lean mode, no trace offered
                    context = span.get_span_context()
                    ids = (context.trace_id, context.span_id)
                    errors = (error_type, error)
                    self._record(scope, entry, method, state, errors, duration_s, ids, False)
            except Exception as exc:  # instrumentation boundary
                self.guard.error("middleware finish", exc)
            finally:
                otel_context.detach(token)

    async def _lean(self, scope: Scope, receive: Receive, send: Send, entry: _Entry) -> None:
        """No SDK span (no trace exporter is configured): the same statistics, exemplars and
        error samples, fed to the findings directly, at a fraction of the cost. The request
        keeps the caller's trace id (``traceparent``) or gets a random one."""
        start = time.perf_counter()
        method = scope.get("method", "GET")
        if method not in _METHODS:
            method = "_OTHER"
        trace_id = _incoming_trace_id(scope) or random.getrandbits(128)
        token = REQUEST_TRACE_ID.set(trace_id)
        state = _ResponseState()
        error: tuple[str, str] | None = None  # as a span's exception event: full type, message
        error_type: str | None = None
        try:
            await self.app(scope, receive, self._sender(send, state, start))
        except BaseException as exc:
            kind = type(exc)
            error_type = kind.__qualname__
            error = (_exception_type(kind), _message_of(exc))
            raise
        finally:
            try:
                duration_s = state.ended() - start
                ids = (trace_id, random.getrandbits(64))
                self._record(scope, entry, method, state, (error_type, error), duration_s, ids)
            except Exception as exc:  # instrumentation boundary
                self.guard.error("middleware finish", exc)
            finally:
                REQUEST_TRACE_ID.reset(token)

    def _sender(self, send: Send, state: _ResponseState, start: float) -> Send:
        server_timing = self.server_timing

        async def send_wrapper(message: Message) -> None:
            try:
                if message["type"] == "http.response.start":
                    state.status = message["status"]
                    if server_timing:
                        add_server_timing(message, start)
                if state.completes(message):  # its last byte: the time before it is handed over
                    state.sent = time.perf_counter()
            except Exception as exc:  # instrumentation boundary
                self.guard.error("middleware send", exc)
            await send(message)

        return send_wrapper

    def _parent_context(self, scope: Scope) -> Context | None:
        fields = self._fields
        carrier = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", ())
            if name in fields
        }
        if not carrier:
            return None
        return propagate.extract(carrier, getter=_Headers())  # type: ignore[arg-type]

    def _finish(
        self,
        scope: Scope,
        entry: _Entry,
        span: trace.Span,
        method: str,
        state: _ResponseState,
        error_type: str | None,
        duration_s: float,
    ) -> None:
        route, status, error_type = self._measure(
            scope, entry, method, state, error_type, duration_s
        )
        attributes: dict[str, str | int] = {
            "http.request.method": method,
            "url.path": scope.get("path", ""),
            "url.scheme": scope.get("scheme", "http"),
        }
        if route is not None:
            attributes["http.route"] = route
            span.update_name(f"{method} {route}")
        if status is not None:
            attributes["http.response.status_code"] = status
        if error_type is not None:
            attributes["error.type"] = error_type
            span.set_status(Status(StatusCode.ERROR))
        span.set_attributes(attributes)
        span.end(end_time=round(state.ended_s() * 1e9))

    def _record(
        self,
        scope: Scope,
        entry: _Entry,
        method: str,
        state: _ResponseState,
        errors: tuple[str | None, tuple[str, str] | None],
        duration_s: float,
        ids: tuple[int, int],
        exported: bool = True,
    ) -> None:
        """The statistics, then the findings (exemplar, error sample, N+1) fed directly: in
        lean mode, and for a request whose span the trace sampler dropped (``exported``
        False: no trace id offered, none was exported; recording the span instead cost about
        20 us a request, ``docs/benchmarks.md``). ``errors``: the error type and the
        exception's (type, message) if one was raised; ``ids``: trace and span id."""
        error_type, error = errors
        route, status, error_type = self._measure(
            scope, entry, method, state, error_type, duration_s
        )
        if self.findings is None:
            return
        if error is None and error_type is not None:
            error = (error_type, "")
        self.findings.on_server_span(
            route=route or UNMATCHED_ROUTE,
            method=method,
            status_code=status,
            duration_s=duration_s,
            end_s=state.ended_s(),
            trace_id=ids[0],
            span_id=ids[1],
            error=error,
            exported=exported,
        )

    def _measure(
        self,
        scope: Scope,
        entry: _Entry,
        method: str,
        state: _ResponseState,
        error_type: str | None,
        duration_s: float,
    ) -> tuple[str | None, int | None, str | None]:
        """Record the duration and response size; returns route, status and error type.

        An exception with no response sent becomes a 500 further out (ServerErrorMiddleware);
        a 5xx without an exception has its status as error type (semantic conventions).
        """
        status = state.status
        if status is None and error_type is not None:
            status = 500
        route = route_of(scope, entry.app, entry.root_path)
        attributes: dict[str, str | int] = {"http.request.method": method}
        if route is not None:
            attributes["http.route"] = route
        if status is not None:
            attributes["http.response.status_code"] = status
            if status >= 500 and error_type is None:
                error_type = str(status)
        if error_type is not None:
            attributes["error.type"] = error_type
        self.duration.record(duration_s, attributes)
        if status is not None:
            self.size.record(state.size, attributes)
        return route, status, error_type


def add_server_timing(message: Message, start: float) -> None:
    """Append ``Server-Timing: app;dur=<ms>`` to an ``http.response.start`` message: the
    milliseconds since ``start`` (a ``time.perf_counter()`` reading)."""
    elapsed_ms = (time.perf_counter() - start) * 1000.0
    headers = list(message.get("headers", ()))
    headers.append((b"server-timing", b"app;dur=%.3f" % elapsed_ms))
    message["headers"] = headers


class _Entry:
    """What routing changes in the scope, as the request came in: the app and the root path."""

    __slots__ = ("app", "root_path")

    def __init__(self, scope: Scope) -> None:
        self.app: object = scope.get("app")
        self.root_path = str(scope.get("root_path", ""))


def _exception_type(kind: type[BaseException]) -> str:
    """An exception's type as the SDK's ``record_exception`` names it (so a span's error
    sample and a lean one agree): ``module.QualName``, or ``QualName`` for a built-in."""
    module, name = kind.__module__, kind.__qualname__
    return f"{module}.{name}" if module and module != "builtins" else name


def _message_of(exc: BaseException) -> str:
    """``str(exc)``, or ``""`` when the exception's ``__str__`` fails (the app's exception
    must propagate, not one raised while describing it)."""
    try:
        return str(exc)
    except Exception:
        return ""


class _ResponseState(ResponseEnd):
    """What the app has sent: the status, the body's size (bytes), and when its last byte
    was handed to the server (``time.perf_counter()``; None until then; see
    :mod:`~otel_monitoring.capture.response_end`)."""

    __slots__ = ("sent", "status")

    def __init__(self) -> None:
        super().__init__()
        self.status: int | None = None
        self.sent: float | None = None

    def ended(self) -> float:
        """When the request ended (``time.perf_counter()``): its last body message sent, or
        now when none was (the app raised, or is still streaming)."""
        return time.perf_counter() if self.sent is None else self.sent

    def ended_s(self) -> float:
        """:meth:`ended` as a Unix time (seconds)."""
        now = time.perf_counter()
        return time.time() - (now - self.ended())
