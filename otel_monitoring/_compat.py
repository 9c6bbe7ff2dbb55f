"""Every reach into a private name of OTel, FastAPI, Starlette or the contrib packages.

Each reach is one small function here: its docstring names what it touches, the versions it
was checked against, and what happens when the name is gone (the fallback). The rest of the
package calls these functions and touches no private name of another project.
``tests/test_compat.py`` has one test per function that fails loudly, naming the internal,
when an upgrade removes or changes it.

Versions checked (``pip show``): opentelemetry-api/-sdk 1.45.2, opentelemetry-instrumentation,
-asgi, -fastapi, -sqlalchemy 0.66b2, FastAPI 0.165.0, Starlette 1.10.0.

Nothing here writes an attribute of our own onto another project's object: state we keep
about foreign objects lives in our own weak sets (see :mod:`otel_monitoring.monitor`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from typing import Any

# The SDK's aggregation and instrument base classes are only importable from its
# ``_internal`` package (SDK 1.39-1.45.2); they type the ``_create_aggregation`` hook.
from opentelemetry.sdk.metrics._internal.aggregation import _Aggregation as SdkAggregation
from opentelemetry.sdk.metrics._internal.instrument import _Histogram as SdkHistogram
from opentelemetry.sdk.metrics._internal.instrument import _Instrument as SdkInstrument
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.metrics.view import Aggregation
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

try:  # SDK 1.39-1.45.2: the base class of OTEL_PYTHON_CONFIGURATOR entry points
    from opentelemetry.sdk._configuration import _BaseConfigurator as BaseConfigurator
except ImportError:  # pragma: no cover - a future SDK: a base with the same contract

    class BaseConfigurator:  # type: ignore[no-redef]
        """``configure(**kwargs)`` calls ``_configure`` (the SDK's contract)."""

        def configure(self, **kwargs: Any) -> None:
            self._configure(**kwargs)

        def _configure(self, **kwargs: Any) -> None:
            raise NotImplementedError


__all__ = [
    "BaseConfigurator",
    "SdkAggregation",
    "SdkHistogram",
    "SdkInstrument",
    "advisory_bucket_bounds",
    "create_aggregation",
    "disable_fastapi_telemetry",
    "exclude_from_fastapi_telemetry",
    "fastapi_telemetry_metrics_on",
    "install_contrib_asgi_content_length",
    "install_contrib_asgi_timer",
    "install_contrib_fastapi_hooks",
    "instrument_sqlalchemy_engine",
    "instrumented_by_contrib",
    "matchable_routes",
    "original_route",
    "set_histogram_aggregation",
    "set_request_body",
    "span_processors",
    "wrap_fastapi_init",
]

_logger = logging.getLogger("otel_monitoring")

try:  # FastAPI >= 0.137.2 nests included routers; this flattens them into matchable routes
    from fastapi.routing import iter_route_contexts as _iter_route_contexts
except ImportError:  # pragma: no cover - older FastAPI: routes are matchable as they are
    _iter_route_contexts = None  # type: ignore[assignment]


# -- OTel SDK -----------------------------------------------------------------------------------
def span_processors(provider: TracerProvider) -> tuple[SpanProcessor, ...] | None:
    """The span processors added to ``provider``, in order.

    Reaches ``TracerProvider._active_span_processor._span_processors`` (a tuple; SDK 1.39 to
    1.45.2). Fallback: ``None`` (unknown), so a caller assumes other processors exist.
    """
    active = getattr(provider, "_active_span_processor", None)
    processors = getattr(active, "_span_processors", None)
    return processors if isinstance(processors, tuple) else None


def set_histogram_aggregation(reader: MetricReader, aggregation: Aggregation) -> bool:
    """Make ``reader`` aggregate every SDK histogram with ``aggregation``.

    ``MetricReader`` takes preferred aggregations only in its constructor, which
    ``PrometheusMetricReader`` does not expose; this fills the mapping that constructor fills,
    ``MetricReader._instrument_class_aggregation`` keyed by the SDK's concrete ``_Histogram``
    class (SDK 1.39 to 1.45.2). Fallback: ``False`` and one warning; the reader keeps the
    SDK's default buckets.
    """
    mapping = getattr(reader, "_instrument_class_aggregation", None)
    if not isinstance(mapping, dict) or SdkHistogram not in mapping:
        _logger.warning(
            "otel-monitoring: this opentelemetry-sdk has no per-reader histogram aggregation;"
            " the Prometheus exposition uses the SDK's default buckets"
        )
        return False
    mapping[SdkHistogram] = aggregation
    return True


def advisory_bucket_bounds(instrument: object) -> tuple[float, ...] | None:
    """The explicit bucket boundaries a histogram was created with (its advisory), if any.

    Reaches ``_Histogram._advisory.explicit_bucket_boundaries`` (SDK 1.39 to 1.45.2).
    Fallback: ``None`` (the caller chooses bounds by unit).
    """
    advisory = getattr(instrument, "_advisory", None)
    advised = getattr(advisory, "explicit_bucket_boundaries", None)
    return tuple(float(b) for b in advised) if advised else None


def create_aggregation(
    aggregation: Aggregation,
    instrument: SdkInstrument,
    attributes: Any,
    reservoir_factory: Callable[[type[SdkAggregation[Any]]], Any],
    start_time_unix_nano: int,
) -> SdkAggregation[Any]:
    """The per-attribute-set aggregation ``aggregation`` makes for ``instrument``.

    Calls ``Aggregation._create_aggregation(instrument, attributes, reservoir_factory,
    start_time_unix_nano)``, the hook the SDK calls on a view's aggregation (SDK 1.39 to
    1.45.2; the same signature is what a subclass overrides). No fallback: the SDK itself
    calls this hook, so without it no aggregation of ours is used at all.
    """
    return aggregation._create_aggregation(
        instrument, attributes, reservoir_factory, start_time_unix_nano
    )


# -- contrib instrumentations ------------------------------------------------------------------
def install_contrib_fastapi_hooks(
    details: Callable[[MutableMapping[str, Any]], str | None],
    wrap: Callable[[Callable[..., Any]], Callable[..., Any]],
) -> bool:
    """Make the contrib FastAPI instrumentation name a request with ``details(scope)`` and
    its ASGI middleware run as ``wrap(original __call__)``: both or neither.

    Replaces ``opentelemetry.instrumentation.fastapi._get_route_details`` (the module
    function its span-name and attribute helpers call) and the class attribute ``__call__``
    of ``opentelemetry.instrumentation.asgi.OpenTelemetryMiddleware`` (checked on 0.60b0 to
    0.66b2). Fallback: ``False``, nothing replaced, when either is missing (the contrib keeps
    its own behaviour).
    """
    try:
        from opentelemetry.instrumentation import fastapi as contrib
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    except ImportError:
        return False
    original = vars(OpenTelemetryMiddleware).get("__call__")
    if not callable(getattr(contrib, "_get_route_details", None)) or not callable(original):
        return False
    contrib.__dict__["_get_route_details"] = details  # a module global, replaced
    OpenTelemetryMiddleware.__call__ = wrap(original)  # type: ignore[method-assign]
    return True


def install_contrib_asgi_timer(timer: Callable[[], float]) -> bool:
    """Make the contrib ASGI middleware read its clock through ``timer``.

    Replaces ``opentelemetry.instrumentation.asgi.default_timer`` (the module global its
    ``__call__`` reads at a request's start and, for the duration metric, when the app returns;
    checked on 0.60b0 to 0.66b2). Fallback: ``False``, nothing replaced, when it is missing.
    """
    try:
        from opentelemetry.instrumentation import asgi as contrib_asgi
    except ImportError:
        return False
    if not callable(getattr(contrib_asgi, "default_timer", None)):
        return False
    contrib_asgi.__dict__["default_timer"] = timer  # a module global, replaced
    return True


def install_contrib_asgi_content_length(attribute: property) -> bool:
    """Make ``OpenTelemetryMiddleware.content_length_header`` the data descriptor
    ``attribute`` (a class attribute takes precedence over the instance's).

    The contrib's ``__init__`` sets it on the instance and its send wrapper and ``__call__``
    read and write it (checked on 0.60b0 to 0.66b2). Fallback: ``False``, nothing replaced,
    when ``__init__`` no longer names it.
    """
    try:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    except ImportError:
        return False
    init = vars(OpenTelemetryMiddleware).get("__init__")
    if "content_length_header" not in getattr(getattr(init, "__code__", None), "co_names", ()):
        return False
    setattr(OpenTelemetryMiddleware, "content_length_header", attribute)  # noqa: B010
    return True


def instrumented_by_contrib(app: object) -> bool:
    """Whether the contrib ``FastAPIInstrumentor`` already instruments ``app``.

    Reads the flag ``_is_instrumented_by_opentelemetry`` the instrumentor sets on each app it
    instruments (0.60b0 to 0.66b2). Fallback: ``False`` (not instrumented).
    """
    return bool(getattr(app, "_is_instrumented_by_opentelemetry", False))


def instrument_sqlalchemy_engine(engine: Any, tracer_provider: TracerProvider) -> None:
    """DB spans for one engine through the contrib SQLAlchemy instrumentation.

    ``instrument()`` works once per process (a singleton flag); ``_instrument(engine=...)`` is
    the per-engine hook behind it (0.60b0 to 0.66b2). No fallback: raises when it is gone
    (the caller treats spans as optional and logs the failure).
    """
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor()._instrument(  # type: ignore[no-untyped-call]
        engine=engine, tracer_provider=tracer_provider, enable_commenter=False
    )


# -- FastAPI / Starlette -----------------------------------------------------------------------
def wrap_fastapi_init(wrap: Callable[[Callable[..., None]], Callable[..., None]]) -> None:
    """Replace ``fastapi.FastAPI.__init__`` by ``wrap(original)`` (zero-code mode's hook on
    the creation of each app; FastAPI 0.115 to 0.165.0). No fallback needed: every class
    has an ``__init__``."""
    import fastapi

    fastapi.FastAPI.__init__ = wrap(fastapi.FastAPI.__init__)  # type: ignore[method-assign]


def disable_fastapi_telemetry(app: object) -> bool:
    """Turn off FastAPI's built-in OTel spans and metrics for ``app``.

    Its configuration dict is only reachable as ``FastAPI._telemetry`` (keys ``tracing``,
    ``metrics``, ``operation_spans``; FastAPI 0.16x to 0.165.0). Fallback: ``False`` when the
    app has none (older FastAPI: nothing to turn off).
    """
    config = getattr(app, "_telemetry", None)
    if not isinstance(config, dict):
        return False
    config["tracing"] = False
    config["metrics"] = False
    config["operation_spans"] = False
    return True


def exclude_from_fastapi_telemetry(
    app: object, excluded: Callable[[MutableMapping[str, Any]], bool]
) -> bool:
    """Make FastAPI's built-in telemetry skip the requests ``excluded(scope)`` holds for,
    besides those the app's own ``exclude`` skips.

    Sets the ``exclude`` key of ``FastAPI._telemetry`` (the dict ``FastAPI(telemetry={...})``
    fills; FastAPI 0.16x to 0.165.0). Fallback: ``False`` when the app has none (older
    FastAPI: no built-in telemetry to steer).
    """
    config = getattr(app, "_telemetry", None)
    if not isinstance(config, dict):
        return False
    own = config.get("exclude")

    def exclude(scope: MutableMapping[str, Any]) -> bool:
        return excluded(scope) or (own is not None and bool(own(scope)))

    config["exclude"] = exclude
    return True


def fastapi_telemetry_metrics_on(app: object) -> bool:
    """Whether FastAPI's built-in telemetry records ``app``'s request metrics (when a meter
    provider is configured, as zero-code mode's is).

    Reads the ``metrics`` key of ``FastAPI._telemetry`` (FastAPI 0.16x to 0.165.0).
    Fallback: ``False`` when the app has none (older FastAPI: no built-in telemetry).
    """
    config = getattr(app, "_telemetry", None)
    return isinstance(config, dict) and bool(config.get("metrics"))


def matchable_routes(routes: Sequence[Any]) -> Iterator[Any]:
    """``routes`` as Starlette can match them: FastAPI >= 0.137.2 nests included routers,
    which ``fastapi.routing.iter_route_contexts`` flattens (checked on 0.165.0). Fallback
    (older FastAPI): the routes as they are, already flat."""
    if _iter_route_contexts is not None:
        yield from _iter_route_contexts(routes)
    else:  # pragma: no cover - older FastAPI
        yield from routes


def original_route(route: object) -> object:
    """The route a FastAPI ``RouteContext`` wraps (its ``original_route``; FastAPI 0.137.2 to
    0.165.0). Fallback: ``route`` itself (older FastAPI: no wrapper)."""
    return getattr(route, "original_route", route)


def set_request_body(request: Any, body: bytes, parsed: Any = None, *, has_json: bool) -> None:
    """Hand a body already read (and its JSON, when ``has_json``) to FastAPI and Starlette.

    Sets ``Request._body`` (``Request.body()`` returns it without reading the stream again)
    and ``Request._json`` (``Request.json()`` returns it without parsing again; FastAPI reads
    both there). Checked on Starlette 1.10.0 / FastAPI 0.165.0. No fallback: without them
    the body, read once already, would be lost; the test catches the change first.
    """
    request._body = body
    if has_json:
        request._json = parsed
