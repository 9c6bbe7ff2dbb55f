"""When a response is complete, the end of its request's duration, in code and zero-code mode.

A request lasts until its response's last byte is handed to the server: the body message that
ends the response (``more_body`` false), or earlier the one that completes its
``content-length``. The time is read *before* that message is handed over. A client has the
whole response once the server writes those bytes, and may run before the server's thread
does again (on loopback the write wakes it; another thread may hold the GIL): read after the
``send``, the duration went on past what the client waited. And behind a
``@app.middleware("http")`` (Starlette's ``BaseHTTPMiddleware``) a sized response is sent as
its body and then an empty closing message, which the client does not wait for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["ResponseEnd", "content_length"]


def content_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The ``content-length`` of raw ASGI response headers (bytes), or None (absent, invalid)."""
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
            return length if length >= 0 else None
    return None


class ResponseEnd:
    """Follows one response's ASGI messages: :meth:`completes` says which one carries its
    last byte. ``size``: body bytes seen (bytes); ``length``: its ``content-length``, if any."""

    __slots__ = ("done", "length", "size")

    def __init__(self) -> None:
        self.size = 0
        self.length: int | None = None
        self.done = False

    def completes(self, message: Mapping[str, Any]) -> bool:
        """Whether ``message`` (an ASGI send message; read, never changed) carries the
        response's last byte: True for one message at most."""
        kind = message.get("type")
        if kind == "http.response.start":
            self.length = content_length(message.get("headers", ()))
            return False
        if kind != "http.response.body":
            return False
        self.size += len(message.get("body", b""))
        if self.done:
            return False  # the closing message after a sized body
        self.done = not message.get("more_body", False) or self.size == self.length
        return self.done
