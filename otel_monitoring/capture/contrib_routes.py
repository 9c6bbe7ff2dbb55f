"""Zero-code mode: the contrib FastAPI instrumentation names and counts requests as code mode does.

The contrib ``opentelemetry-instrumentation-fastapi`` instruments every ``FastAPI`` instance,
mounted sub-apps included, and names a request after the first route of the outer app that
matches it. A request to ``/v2/pong`` on an app mounted at ``/v2`` was therefore measured
twice, as ``/v2`` (the mount) and as ``/pong`` (the sub-app). :func:`adapt_contrib_fastapi`
changes these things, once per process:

* the route of a request is its full template through mounts
  (:func:`otel_monitoring.capture.routes.route_template`: ``/v2/pong``, ``/static/{path}``);
* the contrib ASGI middleware measures a request only in the outermost app: it marks the
  scope, and an inner app's middleware that finds the mark passes the request through;
* a request's duration ends when its response's last byte has been handed to the server
  (:mod:`~otel_monitoring.capture.response_end`), not when the app returns after the
  response's ``BackgroundTasks`` (the contrib ends its span there but records the duration
  metric at the return, open-telemetry/opentelemetry-python-contrib #3591): the middleware's
  clock (:func:`_clock`) reads, within a request whose response is complete, the time it
  completed;
* an excluded path is excluded behind a proxy's root path too (the contrib matches its
  patterns against the full URL, which then carries the prefix);
* a response's size is its own ``content-length``: the contrib kept the last one seen on the
  middleware, shared by every request (:data:`CONTENT_LENGTH`);
* a server span the trace sampler drops is still recorded, not exported, so the findings
  see every request (:mod:`otel_monitoring.capture.sampling`).

The hooks replace private names of the contrib packages (through
:mod:`otel_monitoring._compat`); if those change, the hooks are
skipped with one warning and the contrib keeps its own behaviour.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
import timeit
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from otel_monitoring._compat import (
    install_contrib_asgi_content_length,
    install_contrib_asgi_timer,
    install_contrib_fastapi_hooks,
)
from otel_monitoring.capture.response_end import ResponseEnd
from otel_monitoring.capture.routes import MEASURED, Scope, app_path, route_template
from otel_monitoring.capture.sampling import record_unsampled_server_spans

__all__ = ["adapt_contrib_fastapi"]

_logger = logging.getLogger("otel_monitoring")
_lock = threading.Lock()
_adapted = False  # the hooks installed (kept here, never written onto the contrib's class)
#: Exact paths not measured, also behind a proxy's root path (``uvicorn --root-path /api``
#: puts ``/api/healthz`` in the scope for ``/healthz``, which the contrib's own check, on the
#: full URL, misses); see :func:`adapt_contrib_fastapi`.
_excluded: frozenset[str] = frozenset()


class _Request(ResponseEnd):
    """What the contrib ASGI middleware keeps of one request: when its response's last byte
    was handed to the server (``timeit.default_timer()``, None until then; see
    :mod:`~otel_monitoring.capture.response_end`) and its ``content-length`` (bytes,
    ``length``: the contrib's ``content_length_header`` reads and writes it)."""

    __slots__ = ("sent_at",)

    def __init__(self) -> None:
        super().__init__()
        self.sent_at: float | None = None


# a cell per request: the app may send from a child task, which sees the same cell
_REQUEST: contextvars.ContextVar[_Request | None] = contextvars.ContextVar(
    "otel_monitoring_contrib_request", default=None
)


def _clock() -> float:
    """The contrib ASGI middleware's clock: the time the current request's response was
    complete once it is (so background tasks stay out of its duration), else now."""
    request = _REQUEST.get()
    if request is not None and request.sent_at is not None:
        return request.sent_at
    return timeit.default_timer()


def _get_content_length(_middleware: object) -> int | None:
    request = _REQUEST.get()
    return None if request is None else request.length


def _set_content_length(_middleware: object, value: int | None) -> None:
    request = _REQUEST.get()
    if request is not None:
        request.length = value


#: The contrib middleware's ``content_length_header``, per request instead of per middleware:
#: on the instance, one request's value was recorded as the size of the next response that
#: had none (a streamed one) and of concurrent requests' (checked on 0.66b2).
CONTENT_LENGTH = property(_get_content_length, _set_content_length)


def _route_details(scope: Scope) -> str | None:
    """Replacement of the contrib's ``_get_route_details``: the full template, or ``None``."""
    try:
        return route_template(scope.get("app"), scope)
    except Exception:  # never into the app: an unnamed request is counted as <unmatched>
        _logger.debug("route template of %r failed", scope.get("path"), exc_info=True)
        return None


def _measured_once(original_call: Callable[..., Any]) -> Callable[..., Any]:
    """The contrib middleware's ``__call__``, measuring a request in the outermost app only."""

    @functools.wraps(original_call)
    async def measured_once(
        self: Any,
        scope: Scope,
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope.get(MEASURED):  # an outer app measures this request already
            await self.app(scope, receive, send)
            return
        if scope.get("type") not in ("http", "websocket"):
            await original_call(self, scope, receive, send)
            return
        scope[MEASURED] = True
        # its server spans recorded when the sampler drops them (for the findings only)
        record_unsampled_server_spans(getattr(self, "tracer", None))
        if _excluded and scope.get("root_path") and app_path(scope) in _excluded:
            await self.app(scope, receive, send)  # a probe behind a proxy's root path
            return
        request = _Request()

        async def sending(message: MutableMapping[str, Any]) -> None:
            try:
                if request.completes(message):  # its last byte: the time before it is sent
                    request.sent_at = timeit.default_timer()
            except Exception:  # never into the app: the request then ends at its return
                _logger.debug("response end of %r failed", scope.get("path"), exc_info=True)
            await send(message)

        token = _REQUEST.set(request)
        try:
            await original_call(self, scope, receive, sending)
        finally:
            _REQUEST.reset(token)

    return measured_once


def adapt_contrib_fastapi(excluded: frozenset[str] = frozenset()) -> bool:
    """Install the hooks (idempotent); ``False`` when the contrib is absent or unexpected.
    ``excluded``: exact paths the contrib is told to skip, skipped behind a root path too."""
    global _adapted, _excluded
    _excluded = excluded
    with _lock:
        if _adapted:
            return True
        try:
            from opentelemetry.instrumentation import fastapi as contrib  # noqa: F401
            from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware  # noqa: F401
        except ImportError:
            return False
        if not install_contrib_fastapi_hooks(_route_details, _measured_once):
            _logger.warning(
                "otel_monitoring: this opentelemetry-instrumentation-fastapi version is not the"
                " expected one; mounted apps may be counted twice and named by their mount path"
            )
            return False
        if not install_contrib_asgi_timer(_clock):
            _logger.warning(
                "otel_monitoring: this opentelemetry-instrumentation-asgi version is not the"
                " expected one; request durations include the responses' background tasks"
            )
        if not install_contrib_asgi_content_length(CONTENT_LENGTH):
            _logger.warning(
                "otel_monitoring: this opentelemetry-instrumentation-asgi version is not the"
                " expected one; a response without a content-length may be counted at the"
                " size of another"
            )
        _adapted = True
        return True
