"""``Server-Timing: app;dur=<ms>`` on responses in zero-code mode.

In code mode :class:`~otel_monitoring.capture.middleware.MonitoringMiddleware` adds the header; in
zero-code mode the contrib FastAPI instrumentation captures requests and this small ASGI
middleware only adds the header (milliseconds from the request reaching the app to the
response head). An app mounted inside another one does not add a second header. Never raises
into the app.
"""

from __future__ import annotations

import time

from otel_monitoring.capture.middleware import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    add_server_timing,
)
from otel_monitoring.self_telemetry import Guard

__all__ = ["ServerTimingMiddleware"]

_MARK = "otel_monitoring.server_timing"


class ServerTimingMiddleware:
    """Adds ``Server-Timing`` to HTTP responses (excluded paths: none; the header is cheap)."""

    def __init__(self, app: ASGIApp, guard: Guard | None = None) -> None:
        self.app = app
        self.guard = guard or Guard()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or scope.get(_MARK):
            await self.app(scope, receive, send)
            return
        scope[_MARK] = True
        start = time.perf_counter()
        guard = self.guard

        async def send_wrapper(message: Message) -> None:
            try:
                if message["type"] == "http.response.start":
                    add_server_timing(message, start)
            except Exception as exc:  # instrumentation boundary
                guard.error("server-timing header", exc)
            await send(message)

        await self.app(scope, receive, send_wrapper)
