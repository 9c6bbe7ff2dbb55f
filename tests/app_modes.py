"""How the integration tests run a test app and read its monitoring API.

A test app is run in one of :data:`APP_MODES` by the ``serve_app`` fixture (``conftest.py``);
:func:`api_until` polls its API. (A module of its own: ``conftest`` is not importable by name,
as more than one folder has one.)
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

__all__ = ["APP_MODES", "SERVERS", "api_until", "raised", "server_argv"]

#: How a test app is run: instrumented in code (no trace exporter: no SDK spans), in code with
#: a span per request, or left to ``opentelemetry-instrument`` (the app reads
#: ``TEST_APP_ZERO_CODE`` and does not instrument itself).
APP_MODES = ("code", "code-spans", "zero-code")


def api_until(
    api: str, path: str, until: Callable[[Any], bool], params: dict[str, str] | None = None
) -> Any:
    """The JSON of the monitoring API's ``path`` once ``until(json)`` holds, polled twice a
    second for up to 25 s (under the API's 50/min limits; the side port's thread may lag the
    app, and a request's bookkeeping its response)."""
    deadline = time.monotonic() + 25
    with httpx.Client(base_url=api, timeout=10) as client:
        while True:
            try:
                answer = client.get(path, params=params).json()
            except httpx.TransportError:
                answer = None
            if answer is not None and until(answer):
                return answer
            assert time.monotonic() < deadline, answer
            time.sleep(0.5)


#: The last line of a traceback in a server's log: the exception's (dotted) type name.
_RAISED = re.compile(r"^([\w.]*(?:Error|Exception|Warning))(?::|$)", re.M)


def raised(log: str) -> set[str]:
    """The exception types a server's log ends tracebacks with (the app's own, or ours):
    line-leading type names ending in ``Error``, ``Exception`` or ``Warning``."""
    return set(_RAISED.findall(log))


#: The ASGI servers beside uvicorn and gunicorn the integration tests run the shop under:
#: hypercorn, granian (``--interface asgi``), and granian without lifespan (``asginl``).
SERVERS = ("hypercorn", "granian", "granian-asginl")


def server_argv(server: str, app: str, port: int | Path, workers: int) -> list[str]:
    """Command line serving ``app`` (``module:attr``) with ``server`` (one of
    :data:`SERVERS`) and ``workers`` worker processes on 127.0.0.1:``port`` (or the Unix
    socket at a path), no access log.
    Both servers run the app in processes they start, even with one worker."""
    bindir = Path(sys.executable).parent
    if server == "hypercorn":
        bind = f"unix:{port}" if isinstance(port, Path) else f"127.0.0.1:{port}"
        return [str(bindir / "hypercorn"), app, "--bind", bind, "--workers", str(workers)]
    assert server in SERVERS, server
    interface = "asginl" if server == "granian-asginl" else "asgi"
    listen = ("--uds", str(port)) if isinstance(port, Path) else ("--port", str(port))
    return [
        *(str(bindir / "granian"), "--interface", interface, "--no-access-log"),
        *("--host", "127.0.0.1", *listen, "--workers", str(workers), app),
    ]
