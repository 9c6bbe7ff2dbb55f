"""The monitoring API on a side port (zero-code mode), in a daemon thread.

Binds ``OTEL_MONITORING_HOST`` (default 127.0.0.1, loopback only) and
``OTEL_MONITORING_PORT`` (default 9478). When the port is taken (for example by a sibling
worker) the failure is logged and the app keeps running.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading

import uvicorn
from fastapi import FastAPI

from otel_monitoring.config import Settings
from otel_monitoring.monitor import Monitor
from otel_monitoring.router import install_error_handlers, make_router

__all__ = ["SideServer", "exposure_warning"]

_logger = logging.getLogger("otel_monitoring")


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
        self.app.include_router(make_router(monitor), prefix=settings.prefix)
        install_error_handlers(self.app)
        config = uvicorn.Config(
            self.app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    def start(self) -> bool:
        """Bind and serve in the background; ``False`` (logged) if the port is unavailable."""
        settings = self.monitor.settings
        sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((settings.host, settings.port))
        except OSError as exc:
            sock.close()
            _logger.warning(
                "otel-monitoring: cannot serve the monitoring API on %s:%d (%s); set"
                " OTEL_MONITORING_PORT to a free port",
                settings.host,
                settings.port,
                exc,
            )
            return False
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[sock])),
            name="otel-monitoring-api",
            daemon=True,
        )
        self.thread.start()
        if (warning := exposure_warning(settings)) is not None:
            _logger.warning(warning)
        _logger.info(
            "otel-monitoring: API on http://%s:%d%s", settings.host, settings.port, settings.prefix
        )
        return True

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the server to exit and wait up to ``timeout_s``."""
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
