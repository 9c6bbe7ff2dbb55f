"""Zero-code mode: the contrib FastAPI instrumentation names and counts requests as code mode does.

The contrib ``opentelemetry-instrumentation-fastapi`` instruments every ``FastAPI`` instance,
mounted sub-apps included, and names a request after the first route of the outer app that
matches it. A request to ``/v2/pong`` on an app mounted at ``/v2`` was therefore measured
twice, as ``/v2`` (the mount) and as ``/pong`` (the sub-app). :func:`adapt_contrib_fastapi`
changes two things, once per process:

* the route of a request is its full template through mounts
  (:func:`otel_monitoring.capture.routes.route_template`: ``/v2/pong``, ``/static/{path}``);
* the contrib ASGI middleware measures a request only in the outermost app: it marks the
  scope, and an inner app's middleware that finds the mark passes the request through.

Both hooks replace private names of the contrib packages (through
:mod:`otel_monitoring._compat`); if those change, the hooks are
skipped with one warning and the contrib keeps its own behaviour.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from otel_monitoring._compat import install_contrib_fastapi_hooks
from otel_monitoring.capture.routes import MEASURED, Scope, route_template

__all__ = ["adapt_contrib_fastapi"]

_logger = logging.getLogger("otel_monitoring")
_lock = threading.Lock()
_adapted = False  # both hooks installed (kept here, never written onto the contrib's class)


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
        if scope.get("type") in ("http", "websocket"):
            scope[MEASURED] = True
        await original_call(self, scope, receive, send)

    return measured_once


def adapt_contrib_fastapi() -> bool:
    """Install both hooks (idempotent); ``False`` when the contrib is absent or unexpected."""
    global _adapted
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
        _adapted = True
        return True
