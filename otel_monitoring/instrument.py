"""``instrument_app(app, engine=engine)``: the one line a team adds to its service."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter
from sqlalchemy.engine import Engine

from otel_monitoring._compat import (
    disable_fastapi_telemetry,
    instrument_sqlalchemy_engine,
    instrumented_by_contrib,
)
from otel_monitoring.alerting.rules import Rule
from otel_monitoring.capture.middleware import MonitoringMiddleware
from otel_monitoring.capture.outermost import wrap_outermost
from otel_monitoring.capture.semconv_opt_in import VARIABLE, opt_in_stable_http
from otel_monitoring.capture.sqlalchemy import sync_engine_of
from otel_monitoring.clock import Clock
from otel_monitoring.config import Settings
from otel_monitoring.exit_hooks import at_exit
from otel_monitoring.monitor import Monitor

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["instrument_app", "stable_semconv"]

_STATE_KEY = "otel_monitoring"
_logger = logging.getLogger("otel_monitoring")


def stable_semconv() -> None:
    """Ask the contrib instrumentations for the stable HTTP conventions, which the monitor
    reads, unless the team's ``OTEL_SEMCONV_STABILITY_OPT_IN`` names an HTTP mode (``http``,
    ``http/dup``); its other signals' modes are kept. A value changed is one warning line
    (see :mod:`otel_monitoring.capture.semconv_opt_in`)."""
    team = opt_in_stable_http(os.environ)
    if team is not None:
        modes = [mode.strip() for mode in team.split(",") if mode.strip()]
        _logger.warning(
            "otel-monitoring: %s=%r names no HTTP conventions; set to %r, as the monitoring"
            " reads the stable HTTP metrics (the old ones name no route). To export the old"
            " HTTP names as well, set it to %r",
            VARIABLE,
            team,
            os.environ[VARIABLE],
            ",".join([*modes, "http/dup"]),
        )


def instrument_app(
    app: FastAPI,
    *,
    engine: Engine | AsyncEngine | None = None,
    engines: Iterable[Engine | AsyncEngine] = (),
    settings: Settings | None = None,
    tracer_provider: TracerProvider | None = None,
    span_exporters: Sequence[SpanExporter] | None = None,
    metric_exporters: Sequence[MetricExporter] | None = None,
    clock: Clock | None = None,
    rules: Sequence[Rule] | None = None,
    logger_provider: Any | None = None,
    mount: bool = True,
    **overrides: Any,
) -> Monitor:
    """Monitor a FastAPI app: capture, statistics, export, and the ``/monitoring`` API.

    Joins OTel providers that already exist or creates them; follows the stable HTTP semantic
    conventions; records ``db.client.operation.duration`` for ``engine`` and ``engines``
    (``create_engine`` or ``create_async_engine`` ones); excludes health and
    probe URLs (``excluded_urls``) and the monitoring API itself from traces and metrics.
    Idempotent: a second call returns the same monitor (instrumenting any new engine).
    Settings come from ``overrides`` (any :class:`Settings` field) > ``OTEL_MONITORING_*`` >
    defaults.

    Example::

        monitor = otel_monitoring.instrument_app(app, engine=engine)
        monitor.stats.endpoints("5m")

    Raises:
        ConfigError: a setting is invalid (the message names the variable).
    """
    existing: Monitor | None = getattr(app.state, _STATE_KEY, None)
    if existing is not None and not existing._shutdown_done:
        for extra in (engine, *engines):
            if extra is not None:
                existing.instrument_engine(extra)
        return existing
    stable_semconv()
    settings = settings or Settings.from_env(**overrides)
    monitor = Monitor(
        settings,
        tracer_provider=tracer_provider,
        span_exporters=span_exporters,
        metric_exporters=metric_exporters,
        clock=clock,
        rules=rules,
        logger_provider=logger_provider,
    )
    for extra in (engine, *engines):
        if extra is not None:
            monitor.instrument_engine(extra)
            if not monitor.lean:  # DB spans only matter when traces go somewhere
                _instrument_sqlalchemy_spans(sync_engine_of(extra), monitor)
    _instrument_outbound(monitor)
    if settings.enabled and not instrumented_by_contrib(app):
        _disable_native_telemetry(app)
        wrap_outermost(  # outside every middleware of the app, added before or after
            app,
            functools.partial(
                MonitoringMiddleware,
                tracer=None if monitor.lean else monitor.tracer,
                instruments=monitor.instruments,
                findings=monitor.findings if settings.stats_enabled else None,
                guard=monitor.guard,
                excluded_paths=frozenset((*settings.excluded_urls, settings.prefix)),
                excluded_prefixes=(settings.prefix + "/",),
                server_timing=settings.server_timing,
            ),
        )
    reported: set[str] = set()
    _warn_prefix_overlap(app, settings.prefix, reported)  # routes defined so far
    before = {id(route) for route in app.routes}
    if monitor.exposition is not None:
        from fastapi import Depends

        from otel_monitoring.api.deps import Access

        access = Access(settings, monitor.clock)  # the API's keys; its own rate limit
        monitor.exposition.mount(app, "/metrics", [Depends(access.require("prometheus"))])
    if mount:
        from otel_monitoring.api.router import install_error_handlers, make_router

        if not settings.api_keys:
            _logger.warning(
                "otel-monitoring: the monitoring API at %s on the app's port answers clients"
                " on this host only (no key); set OTEL_MONITORING_API_KEY to read it from"
                " elsewhere",
                settings.prefix,
            )
        app.include_router(make_router(monitor), prefix=settings.prefix)
        install_error_handlers(app)
    reported.update(  # the routes just added are the monitoring API's own
        str(getattr(route, "path", "")) for route in app.routes if id(route) not in before
    )
    wrap_lifespan(
        app,
        on_start=lambda: _warn_prefix_overlap(app, settings.prefix, reported),
        on_stop=monitor.shutdown,
        gc_freeze=settings.gc_freeze,
    )
    at_exit(monitor.shutdown)
    setattr(app.state, _STATE_KEY, monitor)
    monitor.apps.append(app)
    return monitor


def _disable_native_telemetry(app: FastAPI) -> None:
    """Turn off FastAPI's built-in OTel spans and metrics (FastAPI >= 0.16x) for this app.

    It switches itself on whenever global providers exist, which would record every request
    twice (its own middleware and ours) and double ``http.server.request.duration``. On
    FastAPI versions without it there is nothing to turn off (see
    :func:`otel_monitoring._compat.disable_fastapi_telemetry`).
    """
    disable_fastapi_telemetry(app)


def _warn_prefix_overlap(app: FastAPI, prefix: str, reported: set[str]) -> None:
    """Log one warning naming ``OTEL_MONITORING_PREFIX`` when app routes live under it.

    Such routes are not measured (the prefix is excluded from monitoring) and may be
    answered by the monitoring API instead. ``reported`` holds the paths already named
    and the monitoring API's own.
    """
    found = sorted(
        path
        for route in app.routes
        if isinstance(path := getattr(route, "path", None), str)
        and (path == prefix or path.startswith(prefix + "/"))
        and path not in reported
    )
    if found:
        reported.update(found)
        _logger.warning(
            "otel-monitoring: OTEL_MONITORING_PREFIX=%s covers the app's own routes %s: they"
            " are not measured and may be answered by the monitoring API; choose another"
            " prefix",
            prefix,
            ", ".join(found[:10]) + (f" and {len(found) - 10} more" if len(found) > 10 else ""),
        )


def wrap_lifespan(
    app: FastAPI,
    *,
    on_start: Callable[[], None],
    on_stop: Callable[[], object],
    gc_freeze: bool = False,
) -> None:
    """Call ``on_start`` when the app starts (every route is defined by then) and
    ``on_stop`` (on a worker thread) when it has stopped, whatever lifespan the app uses.

    The app's stop is the last moment that is sure to come: uvicorn (>= 0.29) re-raises the
    SIGTERM it handled once the app has stopped, so exit handlers do not run.
    """
    original = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(asgi_app: Any) -> AsyncIterator[Any]:
        on_start()
        async with original(asgi_app) as state:
            if gc_freeze:
                _freeze_gc()
            yield state
        await asyncio.to_thread(on_stop)

    app.router.lifespan_context = lifespan


def _freeze_gc() -> None:
    # Objects alive after start-up (modules, routes, providers) move to a permanent
    # generation, so full collections under load scan far less.
    gc.collect()
    gc.freeze()


def _instrument_outbound(monitor: Monitor) -> None:
    """Outbound HTTP (httpx, requests) through the contrib instrumentations, when installed."""
    from importlib import import_module

    for module, name in (
        ("opentelemetry.instrumentation.httpx", "HTTPXClientInstrumentor"),
        ("opentelemetry.instrumentation.requests", "RequestsInstrumentor"),
    ):
        try:
            instrumentor = getattr(import_module(module), name)()
            if not instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.instrument(
                    tracer_provider=monitor.tracer_provider,
                    meter_provider=monitor.meter_provider,
                )
        except ImportError:
            continue  # the library or its instrumentation is not installed
        except Exception as exc:  # instrumentation boundary
            monitor.guard.error(f"{name} instrumentation", exc)


def _instrument_sqlalchemy_spans(engine: Engine, monitor: Monitor) -> None:
    """DB spans for export via the contrib instrumentation (statistics do not rely on it)."""
    try:
        instrument_sqlalchemy_engine(engine, monitor.tracer_provider)  # each engine its spans
    except Exception as exc:  # instrumentation boundary: spans are optional
        monitor.guard.error("sqlalchemy span instrumentation", exc)
