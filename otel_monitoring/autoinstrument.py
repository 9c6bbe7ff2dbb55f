"""Zero-code mode: ``opentelemetry-instrument uvicorn shop:app`` with this package installed.

Entry points (see ``pyproject.toml``):

* ``opentelemetry_distro``: :class:`MonitoringDistro` sets defaults the way a distro does
  (stable HTTP conventions; health probes excluded from the contrib FastAPI instrumentation).
* ``opentelemetry_configurator``: :class:`MonitoringConfigurator` creates the providers with
  our span processor and our single metric reader, which also forwards to the exporters named
  by ``OTEL_METRICS_EXPORTER``; spans go to ``OTEL_TRACES_EXPORTER`` as usual.
* ``opentelemetry_post_instrument``: :func:`post_instrument` records DB durations for every
  SQLAlchemy engine and serves the monitoring API on the side port (or, with
  ``OTEL_MONITORING_MOUNT=true``, mounts it into every FastAPI app as it is created).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.sdk._configuration import _BaseConfigurator

from otel_monitoring.config import Settings
from otel_monitoring.exclusions import excluded_url_patterns
from otel_monitoring.instrument import stable_semconv

__all__ = ["MonitoringConfigurator", "MonitoringDistro", "post_instrument"]

_logger = logging.getLogger("otel_monitoring")
_state: dict[str, Any] = {}


class MonitoringDistro(BaseDistro):  # type: ignore[misc]
    """Sets environment defaults before instrumentations load."""

    def _configure(self, **kwargs: Any) -> None:
        stable_semconv()
        settings = Settings.from_env()
        # Exact paths, anchored: the contrib searches each regex anywhere in the URL.
        excluded = excluded_url_patterns(settings.excluded_urls, settings.prefix)
        os.environ.setdefault("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", excluded)


class MonitoringConfigurator(_BaseConfigurator):
    """Creates the SDK providers with the monitoring reader and processor."""

    def _configure(self, **kwargs: Any) -> None:
        from otel_monitoring.monitor import Monitor

        stable_semconv()
        if _state.get("monitor") is None:
            _state["monitor"] = Monitor(Settings.from_env())


def post_instrument(**kwargs: Any) -> None:
    """Hook DB timings into every engine and start the side-port API."""
    from otel_monitoring.contrib_routes import adapt_contrib_fastapi

    adapt_contrib_fastapi()  # full route templates; mounted apps measured once
    monitor = _state.get("monitor")
    if monitor is None:
        return
    from sqlalchemy.engine import Engine

    monitor.instrument_engine(Engine)
    if monitor.settings.mount:
        _mount_on_new_apps(monitor)
    else:
        from otel_monitoring.server import SideServer

        server = SideServer(monitor)
        if server.start():
            _state["server"] = server


def _mount_on_new_apps(monitor: Any) -> None:
    import fastapi

    from otel_monitoring.router import make_router

    original_init = fastapi.FastAPI.__init__

    def init(self: fastapi.FastAPI, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        try:
            self.include_router(make_router(monitor), prefix=monitor.settings.prefix)
        except Exception as exc:  # instrumentation boundary
            monitor.guard.error("mounting the monitoring API", exc)

    fastapi.FastAPI.__init__ = init  # type: ignore[method-assign]
