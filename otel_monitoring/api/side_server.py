"""The monitoring API on a side port (zero-code mode), in a daemon thread.

Binds ``OTEL_MONITORING_HOST`` (default 127.0.0.1, loopback only) and
``OTEL_MONITORING_PORT`` (default 9478). When the port is taken the failure is logged and the
app keeps running. Workers of one server (:meth:`SideServer.contend`) take turns: the first
to bind serves, the others try again every few seconds, so the port outlives the worker that
held it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from otel_monitoring._compat import disable_fastapi_telemetry
from otel_monitoring.api.router import install_error_handlers, make_router
from otel_monitoring.config import Settings
from otel_monitoring.monitor import Monitor

__all__ = ["SideServer", "exposure_warning"]

_logger = logging.getLogger("otel_monitoring")


_THREAD = "otel-monitoring-api"
_STARTUP_WAIT_S = 5.0  # at most, for the side server's start (see SideServer._serve)


class _SideConfig(uvicorn.Config):
    """uvicorn's ``Config`` configures the process's logging when made: its levels for the
    ``uvicorn.*`` loggers, and with ``access_log=False`` it drops the ``uvicorn.access``
    handlers. In the app's own process that silenced the app server's logs and its access
    log; the side server leaves logging as the app set it."""

    def configure_logging(self) -> None:
        return None


class _NotTheSideServer(logging.Filter):
    """Drops the side server's own info lines (its access log, "Uvicorn running on") from
    the app's ``uvicorn`` loggers; its warnings and errors stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != _THREAD or record.levelno >= logging.WARNING


def _quiet_side_thread() -> None:
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NotTheSideServer) for f in logger.filters):
            logger.addFilter(_NotTheSideServer())


class SideServer:
    """A uvicorn server for the monitoring API, run on its own thread and event loop."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        settings = monitor.settings
        self.app = FastAPI(
            title="otel-monitoring",
            docs_url=settings.prefix + "/docs",
            openapi_url=settings.prefix + "/openapi.json",
        )
        # Its requests are never the app's: FastAPI's own telemetry (on when the contrib
        # FastAPI instrumentation is disabled) counted them as the app's requests.
        disable_fastapi_telemetry(self.app)
        # the side port serves only the monitoring API: its schema lists it
        self.app.include_router(
            make_router(monitor, include_in_schema=True), prefix=settings.prefix
        )
        install_error_handlers(self.app)
        config = _SideConfig(
            self.app, host=settings.host, port=settings.port, access_log=False, lifespan="off"
        )
        _quiet_side_thread()
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None
        self._stopped = threading.Event()

    def _bind(self) -> socket.socket | OSError:
        settings = self.monitor.settings
        sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((settings.host, settings.port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            return exc
        return sock

    def start(self) -> bool:
        """Bind and serve in the background; ``False`` (logged) if the port is unavailable."""
        settings = self.monitor.settings
        sock = self._bind()
        if isinstance(sock, OSError):
            _logger.warning(
                "otel-monitoring: cannot serve the monitoring API on %s:%d (%s); set"
                " OTEL_MONITORING_PORT to a free port",
                settings.host,
                settings.port,
                sock,
            )
            return False
        self._serve(sock)
        return True

    def contend(self, retry_s: float = 2.0) -> None:
        """Serve when the port is free, trying again every ``retry_s`` seconds until then
        (several workers of one server: one serves, the others stand by). Returns at once."""
        self._stopped.clear()

        def attempt() -> None:
            while not self._stopped.is_set():
                sock = self._bind()
                if not isinstance(sock, OSError):
                    self._serve(sock)
                    return
                self._stopped.wait(retry_s)

        threading.Thread(target=attempt, name="otel-monitoring-api-standby", daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        settings = self.monitor.settings
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[sock])),
            name=_THREAD,
            daemon=True,
        )
        self.thread.start()
        # Wait (bounded) until the server has started, its modules imported: a process that
        # forks right after this (gunicorn --preload's arbiter, which imported the app) must
        # not fork while this thread holds an import lock, which the child would wait on
        # forever when it imports the same module (its own uvicorn's protocols).
        deadline = time.monotonic() + _STARTUP_WAIT_S
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        if (warning := exposure_warning(settings)) is not None:
            _logger.warning(warning)
        _logger.info(
            "otel-monitoring: monitoring API on http://%s:%d%s/ (process %d)",
            settings.host,
            settings.port,
            settings.prefix,
            os.getpid(),
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the server to exit and wait up to ``timeout_s``."""
        self._stopped.set()
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout_s)


def exposure_warning(settings: Settings) -> str | None:
    """The warning line when the side port is reachable beyond this machine with no key."""
    if settings.api_keys or _loopback(settings.host):
        return None
    return (
        f"otel-monitoring: OTEL_MONITORING_HOST={settings.host} serves the monitoring API"
        " beyond this machine with no key: set OTEL_MONITORING_API_KEY (or bind 127.0.0.1)"
    )


def _loopback(host: str) -> bool:
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
