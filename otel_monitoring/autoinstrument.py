"""Zero-code mode: ``opentelemetry-instrument uvicorn shop:app`` with this package installed.

OTel's auto-instrumentation runs ONE distro and ONE configurator (the first installed, or the
ones ``OTEL_PYTHON_DISTRO``/``OTEL_PYTHON_CONFIGURATOR`` name), but every pre- and
post-instrument hook. So nothing here depends on ours being the chosen distro or configurator
(``opentelemetry-distro``, part of OTel's documented setup, brings its own of both):

* every hook (distro, configurator, ``opentelemetry_pre_instrument``,
  ``opentelemetry_post_instrument``) first runs :func:`_prepare` once: it reads the settings
  (a bad one is one log line, and monitoring stays off), honours ``OTEL_SDK_DISABLED`` and
  sets environment defaults (stable HTTP conventions; health probes and the monitoring API
  excluded from the contrib FastAPI instrumentation) before the instrumentations load;
* :func:`post_instrument` arranges that the first FastAPI app created in a process starts
  monitoring: the :class:`~otel_monitoring.monitor.Monitor` joins the providers that exist
  then (those of OTel's configurator, without adding exporters a second time) or creates
  them (exporters from the standard ``OTEL_*`` variables); every app gets ``Server-Timing``;
  the monitoring API is served on the side port (or, with ``OTEL_MONITORING_MOUNT=true``,
  mounted into every app);
* the monitor is made in the process that serves the app, not at start-up: under
  ``uvicorn --workers N`` or gunicorn the supervising process serves nothing and holds no
  port, and the workers share one store (see :mod:`otel_monitoring.workers`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]

from otel_monitoring import workers
from otel_monitoring._compat import (
    BaseConfigurator,
    exclude_from_fastapi_telemetry,
    fastapi_telemetry_metrics_on,
    instrumented_by_contrib,
    wrap_fastapi_init,
)
from otel_monitoring.capture.exclusions import excluded_request, excluded_url_patterns
from otel_monitoring.config import Settings
from otel_monitoring.errors import ConfigError
from otel_monitoring.exit_hooks import at_exit
from otel_monitoring.instrument import stable_semconv, wrap_lifespan

__all__ = ["MonitoringConfigurator", "MonitoringDistro", "post_instrument", "pre_instrument"]

_logger = logging.getLogger("otel_monitoring")
_lock = threading.RLock()
_state: dict[str, Any] = {}


class MonitoringDistro(BaseDistro):  # type: ignore[misc]
    """Sets environment defaults before instrumentations load."""

    def _configure(self, **kwargs: Any) -> None:
        _prepare()


class MonitoringConfigurator(BaseConfigurator):
    """Chosen as the configurator: the monitor will create the SDK providers itself."""

    def _configure(self, **kwargs: Any) -> None:
        _state["our_configurator"] = True
        _prepare()


def pre_instrument(**kwargs: Any) -> None:
    """Environment defaults before the instrumentations load, whichever distro was chosen."""
    _prepare()


def post_instrument(**kwargs: Any) -> None:
    """Start monitoring in the first FastAPI app each process creates (see module doc)."""
    from otel_monitoring.capture.contrib_routes import adapt_contrib_fastapi

    settings = _prepare()
    if settings is None or _state.get("patched"):
        return
    _state["patched"] = True
    # full route templates; mounted apps measured once; our exclusions behind a root path
    adapt_contrib_fastapi(_state.get("excluded", frozenset()))
    _warn_prometheus_under_other_configurator()

    def wrap(original_init: Callable[..., None]) -> Callable[..., None]:
        def init(self: Any, *args: Any, **kwargs: Any) -> None:
            # The monitor (and the providers it may create) first, so the app's own
            # instrumentation finds them.
            monitor = _monitor(settings)
            original_init(self, *args, **kwargs)
            if monitor is not None:
                _on_app(self, monitor)

        return init

    wrap_fastapi_init(wrap)


def _warn_prometheus_under_other_configurator() -> None:
    """OTel's configurator serves ``OTEL_METRICS_EXPORTER=prometheus`` from the process that
    starts the server: with several workers that process serves nothing (gunicorn) or makes
    every worker's start-up fail on the port (uvicorn). Ours serves it from a worker."""
    if _state.get("our_configurator") or workers.is_worker():
        return
    if "prometheus" not in os.environ.get("OTEL_METRICS_EXPORTER", ""):
        return
    command = os.path.basename(sys.argv[0]) if sys.argv else ""
    concurrency = os.environ.get("WEB_CONCURRENCY", "1").strip()
    if command == "gunicorn" or "--workers" in sys.argv or concurrency not in ("", "0", "1"):
        _logger.warning(
            "otel-monitoring: OTEL_METRICS_EXPORTER=prometheus under another configurator does"
            " not work with several workers; set OTEL_PYTHON_CONFIGURATOR=otel_monitoring"
        )


def _prepare() -> Settings | None:
    """Once per process: settings, ``OTEL_SDK_DISABLED``, environment defaults.

    Returns the settings, or ``None`` when monitoring is off (said in one log line).
    """
    with _lock:
        if "settings" in _state:
            return _state["settings"]  # type: ignore[no-any-return]
        _state["settings"] = None
        _visible_logging()
        if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            _logger.warning("otel-monitoring: off, because OTEL_SDK_DISABLED=true")
            return None
        try:
            settings = Settings.from_env()
        except ConfigError as exc:
            _logger.error("otel-monitoring: off, because of a bad setting: %s", exc)
            return None
        if not settings.enabled:
            return None
        stable_semconv()
        # Exact paths, anchored: the contrib searches each regex anywhere in the URL.
        excluded = excluded_url_patterns(settings.excluded_urls, settings.prefix)
        os.environ.setdefault("OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", excluded)
        if os.environ["OTEL_PYTHON_FASTAPI_EXCLUDED_URLS"] == excluded:  # not the user's own
            _state["excluded"] = frozenset(settings.excluded_urls)
        workers.mark_root()
        _state["settings"] = settings
        return settings


class _FallbackHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes our records to stderr only while the app has configured no root handler."""

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            super().emit(record)


def _visible_logging() -> None:
    """Our start-up lines (side-port URL, a bad setting) reach stderr at INFO even when the
    app configured no logging (Python's last-resort handler shows warnings only); once the
    app configures logging, they go to its handlers instead (no line twice)."""
    if not any(isinstance(h, _FallbackHandler) for h in _logger.handlers):
        handler = _FallbackHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        _logger.addHandler(handler)
    if _logger.level == logging.NOTSET:
        _logger.setLevel(logging.INFO)


def _on_app(app: Any, monitor: Any) -> None:
    """Monitoring for one new FastAPI app. Never raises into the app's construction."""
    settings = monitor.settings
    try:
        # With the contrib FastAPI instrumentation disabled, FastAPI's own telemetry measures
        # the requests: not the probes and the monitoring API either.
        exclude_from_fastapi_telemetry(
            app, excluded_request(settings.excluded_urls, settings.prefix)
        )
        if settings.server_timing:
            from otel_monitoring.capture.server_timing import ServerTimingMiddleware

            app.add_middleware(ServerTimingMiddleware, guard=monitor.guard)
        if settings.mount:
            from otel_monitoring.api.router import make_router

            app.include_router(make_router(monitor), prefix=settings.prefix)
        # The monitor outlives any one app of the process (it stops at exit); when an app
        # stops, what it measured is written and exported (a SIGTERM under uvicorn >= 0.29
        # ends the process without running exit handlers).
        wrap_lifespan(app, on_start=lambda: _say_who_measures(app), on_stop=monitor.drain)
    except Exception as exc:  # instrumentation boundary
        _logger.error("otel-monitoring: monitoring this app failed: %r", exc)


def _say_who_measures(app: Any) -> None:
    """At the start of the first app served, one line when the contrib FastAPI
    instrumentation does not measure its requests (``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``
    names ``fastapi``, or ``*``): what does (FastAPI's own telemetry, from which the monitor
    gets no response sizes and error samples without the exception's message), or that
    nothing does (no endpoint statistics, slow traces or error samples; DB and outbound
    calls are still measured)."""
    with _lock:
        if _state.get("measurer_said") or instrumented_by_contrib(app):
            return
        _state["measurer_said"] = True
    listed = os.environ.get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "").split(",")
    names = {name.strip() for name in listed}
    why = (
        f"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS names {'*' if '*' in names else 'fastapi'}"
        if names & {"fastapi", "*"}
        else "the OpenTelemetry FastAPI instrumentation does not instrument this app"
    )
    if fastapi_telemetry_metrics_on(app):
        _logger.warning(
            "otel-monitoring: %s: requests are measured by FastAPI's own telemetry instead (no"
            " response sizes; error samples without the exception's message)",
            why,
        )
    else:
        _logger.error(
            "otel-monitoring: %s and FastAPI's own telemetry is off: requests are not"
            " measured (no endpoint statistics, slow traces or error samples; DB and outbound"
            " calls still are); remove fastapi from OTEL_PYTHON_DISABLED_INSTRUMENTATIONS",
            why,
        )


def _monitor(settings: Settings) -> Any:
    """This process's monitor, made (with its side port) on first use; ``None`` if it
    cannot be (said in one log line)."""
    with _lock:
        if "monitor" in _state:
            return _state["monitor"]
        _state["monitor"] = None
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider
        from sqlalchemy.engine import Engine

        from otel_monitoring.monitor import Monitor

        worker = workers.is_worker()
        if (worker or workers.forks_workers()) and settings.store_url is None:
            settings = dataclasses.replace(settings, store_url=workers.shared_store_url())
        kwargs: dict[str, Any] = {}
        if not _state.get("our_configurator"):
            # Another configurator (OTel's) made the providers and their exporters: join
            # them, without exporting a second time.
            tracer_provider = trace.get_tracer_provider()
            if isinstance(tracer_provider, TracerProvider):
                kwargs.update(tracer_provider=tracer_provider, span_exporters=())
            meter_provider = metrics.get_meter_provider()
            if isinstance(meter_provider, MeterProvider):
                # Its configurator also made any Prometheus reader OTEL_METRICS_EXPORTER names.
                env = {k: v for k, v in os.environ.items() if k != "OTEL_METRICS_EXPORTER"}
                kwargs.update(meter_provider=meter_provider, metric_exporters=(), env=env)
        try:
            monitor = Monitor(settings, **kwargs)
        except ConfigError as exc:
            _logger.error("otel-monitoring: off, because of a bad setting: %s", exc)
            return None
        except Exception as exc:  # instrumentation boundary: the app runs regardless
            _logger.error("otel-monitoring: off, because monitoring failed to start: %r", exc)
            return None
        monitor.instrument_engine(Engine)
        at_exit(monitor.shutdown)
        _state["monitor"] = monitor
        if not settings.mount:
            from otel_monitoring.api.side_server import SideServer

            server = SideServer(monitor)
            if worker:
                server.contend(retry_s=min(5.0, max(1.0, settings.interval_s)))
            else:
                server.start()
            _state["server"] = server
        return monitor
