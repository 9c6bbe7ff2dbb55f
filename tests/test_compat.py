"""One test per reach of :mod:`otel_monitoring._compat` into another project's internals.

Each asserts first that the internal is there on the installed versions (the message names
it, so an upgrade that removes it fails here, loudly, rather than as a quiet fallback), then
that the function's result is right on the real objects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping
from typing import Any

import fastapi
import pytest
from fastapi import APIRouter, FastAPI
from opentelemetry.instrumentation import fastapi as contrib
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk._configuration import _BaseConfigurator
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import Aggregation, ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import create_engine, text
from starlette.requests import Request
from starlette.routing import Route

from otel_monitoring import _compat


def _histogram_bounds(reader: InMemoryMetricReader, name: str) -> tuple[float, ...]:
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    point = metric.data.data_points[0]
                    assert isinstance(point, HistogramDataPoint)
                    return tuple(point.explicit_bounds)
    raise AssertionError(f"no histogram {name!r} collected")


def test_span_processors() -> None:
    provider = TracerProvider()
    processor = SimpleSpanProcessor(InMemorySpanExporter())
    provider.add_span_processor(processor)
    active = getattr(provider, "_active_span_processor", None)
    assert isinstance(getattr(active, "_span_processors", None), tuple), (
        "opentelemetry-sdk: TracerProvider._active_span_processor._span_processors is gone"
    )
    assert _compat.span_processors(provider) == (processor,)
    assert _compat.span_processors(TracerProvider()) == ()


def test_set_histogram_aggregation() -> None:
    reader = InMemoryMetricReader()
    mapping = getattr(reader, "_instrument_class_aggregation", None)
    assert isinstance(mapping, dict) and _compat.SdkHistogram in mapping, (
        "opentelemetry-sdk: MetricReader._instrument_class_aggregation[_Histogram] is gone"
    )
    assert _compat.set_histogram_aggregation(reader, ExplicitBucketHistogramAggregation((1.0, 2.0)))
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("t").create_histogram("h").record(1.5)
    assert _histogram_bounds(reader, "h") == (1.0, 2.0)
    provider.shutdown()


def test_advisory_bucket_bounds() -> None:
    meter = MeterProvider().get_meter("t")
    advised = meter.create_histogram("a", explicit_bucket_boundaries_advisory=[0.5, 1, 4])
    assert hasattr(advised, "_advisory"), "opentelemetry-sdk: _Histogram._advisory is gone"
    assert _compat.advisory_bucket_bounds(advised) == (0.5, 1.0, 4.0)
    assert _compat.advisory_bucket_bounds(meter.create_histogram("plain")) is None


def test_create_aggregation() -> None:
    calls: list[str] = []

    class Delegating(Aggregation):
        def _create_aggregation(
            self,
            instrument: Any,
            attributes: Any,
            reservoir_factory: Callable[[type[Any]], Any],
            start_time_unix_nano: int,
        ) -> Any:
            calls.append(instrument.name)
            return _compat.create_aggregation(
                ExplicitBucketHistogramAggregation((3.0, 7.0)),
                instrument,
                attributes,
                reservoir_factory,
                start_time_unix_nano,
            )

    assert callable(getattr(ExplicitBucketHistogramAggregation, "_create_aggregation", None)), (
        "opentelemetry-sdk: Aggregation._create_aggregation is gone"
    )
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader], views=[View(instrument_name="d", aggregation=Delegating())]
    )
    provider.get_meter("t").create_histogram("d").record(5.0)
    assert _histogram_bounds(reader, "d") == (3.0, 7.0)
    assert "d" in calls  # the SDK called the hook with the signature we override
    provider.shutdown()


def test_base_configurator() -> None:
    assert _compat.BaseConfigurator is _BaseConfigurator, (
        "opentelemetry-sdk: opentelemetry.sdk._configuration._BaseConfigurator moved"
    )
    seen: list[dict[str, Any]] = []

    class Recording(_compat.BaseConfigurator):
        def _configure(self, **kwargs: Any) -> None:
            seen.append(kwargs)

    Recording().configure(x=1)
    assert seen == [{"x": 1}]


def test_install_contrib_fastapi_hooks() -> None:
    original_details = vars(contrib).get("_get_route_details")
    original_call = vars(OpenTelemetryMiddleware).get("__call__")
    assert callable(original_details), (
        "opentelemetry-instrumentation-fastapi: _get_route_details is gone"
    )
    assert callable(original_call), (
        "opentelemetry-instrumentation-asgi: OpenTelemetryMiddleware.__call__ is gone"
    )
    wrapped: list[Callable[..., Any]] = []

    def details(scope: MutableMapping[str, Any]) -> str | None:
        return "/named"

    def wrap(call: Callable[..., Any]) -> Callable[..., Any]:
        wrapped.append(call)

        async def replacement(self: Any, scope: Any, receive: Any, send: Any) -> None:
            await call(self, scope, receive, send)

        return replacement

    try:
        assert _compat.install_contrib_fastapi_hooks(details, wrap)
        assert contrib._get_route_details({"path": "/x"}) == "/named"
        assert wrapped == [original_call]
        assert vars(OpenTelemetryMiddleware)["__call__"] is not original_call
    finally:
        contrib.__dict__["_get_route_details"] = original_details
        OpenTelemetryMiddleware.__call__ = original_call  # type: ignore[method-assign]


def test_install_contrib_asgi_timer() -> None:
    from opentelemetry.instrumentation import asgi as contrib_asgi

    original = vars(contrib_asgi).get("default_timer")
    assert callable(original), "opentelemetry-instrumentation-asgi: default_timer is gone"
    try:
        assert _compat.install_contrib_asgi_timer(lambda: 42.0)
        assert contrib_asgi.default_timer() == 42.0
    finally:
        contrib_asgi.__dict__["default_timer"] = original


def test_install_contrib_asgi_content_length() -> None:
    init = vars(OpenTelemetryMiddleware)["__init__"]
    assert "content_length_header" in init.__code__.co_names, (
        "opentelemetry-instrumentation-asgi: content_length_header is gone"
    )
    before = vars(OpenTelemetryMiddleware).get("content_length_header")  # ours, once adapted
    seen: list[object] = []
    attribute = property(lambda self: 7, lambda self, value: seen.append(value))
    try:
        assert _compat.install_contrib_asgi_content_length(attribute)
        middleware = OpenTelemetryMiddleware(lambda *a: None)  # __init__ sets it to None
        assert middleware.content_length_header == 7 and seen == [None]
    finally:
        if before is None:
            delattr(OpenTelemetryMiddleware, "content_length_header")
        else:
            OpenTelemetryMiddleware.content_length_header = before


def test_instrumented_by_contrib() -> None:
    app = FastAPI()
    assert not _compat.instrumented_by_contrib(app)
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=TracerProvider(), meter_provider=MeterProvider()
    )
    try:
        assert getattr(app, "_is_instrumented_by_opentelemetry", None) is True, (
            "opentelemetry-instrumentation-fastapi: the _is_instrumented_by_opentelemetry flag"
            " is gone"
        )
        assert _compat.instrumented_by_contrib(app)
    finally:
        FastAPIInstrumentor.uninstrument_app(app)
    assert not _compat.instrumented_by_contrib(app)


def test_instrument_sqlalchemy_engine() -> None:
    assert callable(getattr(SQLAlchemyInstrumentor, "_instrument", None)), (
        "opentelemetry-instrumentation-sqlalchemy: SQLAlchemyInstrumentor._instrument is gone"
    )
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = create_engine("sqlite://")
    _compat.instrument_sqlalchemy_engine(engine, provider)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert any("SELECT" in span.name for span in exporter.get_finished_spans())
    engine.dispose()


def test_wrap_fastapi_init() -> None:
    original = fastapi.FastAPI.__init__
    made: list[object] = []

    def wrap(init: Callable[..., None]) -> Callable[..., None]:
        def replacement(self: Any, *args: Any, **kwargs: Any) -> None:
            init(self, *args, **kwargs)
            made.append(self)

        return replacement

    try:
        _compat.wrap_fastapi_init(wrap)
        app = FastAPI(title="wrapped")
        assert made == [app] and app.title == "wrapped"
    finally:
        fastapi.FastAPI.__init__ = original  # type: ignore[method-assign]


def test_disable_fastapi_telemetry() -> None:
    app = FastAPI()
    config = getattr(app, "_telemetry", None)
    assert isinstance(config, dict) and {"tracing", "metrics", "operation_spans"} <= set(config), (
        "fastapi: FastAPI._telemetry (tracing/metrics/operation_spans) is gone"
    )
    assert _compat.disable_fastapi_telemetry(app)
    assert config["tracing"] is False
    assert config["metrics"] is False
    assert config["operation_spans"] is False
    assert not _compat.disable_fastapi_telemetry(object())


def test_exclude_from_fastapi_telemetry() -> None:
    """The predicate is FastAPI's ``exclude``, beside the app's own."""
    app = FastAPI(telemetry={"exclude": lambda scope: scope["path"] == "/own"})
    config = getattr(app, "_telemetry", None)
    assert isinstance(config, dict) and "exclude" in config, (
        "fastapi: FastAPI._telemetry['exclude'] is gone"
    )
    assert _compat.exclude_from_fastapi_telemetry(app, lambda scope: scope["path"] == "/ours")
    exclude = config["exclude"]
    assert [exclude({"path": p}) for p in ("/own", "/ours", "/items")] == [True, True, False]
    assert not _compat.exclude_from_fastapi_telemetry(object(), lambda scope: True)


def test_fastapi_telemetry_metrics_on() -> None:
    config = getattr(FastAPI(), "_telemetry", None)
    assert isinstance(config, dict) and config.get("metrics") is True, (
        "fastapi: FastAPI._telemetry['metrics'] is gone"
    )
    assert _compat.fastapi_telemetry_metrics_on(FastAPI())
    assert not _compat.fastapi_telemetry_metrics_on(FastAPI(telemetry={"metrics": False}))
    assert not _compat.fastapi_telemetry_metrics_on(object())


def _app_with_included_router() -> FastAPI:
    app = FastAPI()
    router = APIRouter()

    @router.get("/items/{item_id}")
    def item(item_id: int) -> int:
        return item_id

    app.include_router(router, prefix="/v1")
    return app


def test_matchable_routes() -> None:
    from fastapi import routing

    assert callable(getattr(routing, "iter_route_contexts", None)), (
        "fastapi: fastapi.routing.iter_route_contexts is gone"
    )
    routes = list(_compat.matchable_routes(_app_with_included_router().routes))
    assert "/v1/items/{item_id}" in [getattr(r, "path", None) for r in routes]


def test_original_route() -> None:
    context = next(
        r
        for r in _compat.matchable_routes(_app_with_included_router().routes)
        if getattr(r, "path", None) == "/v1/items/{item_id}"
    )
    assert hasattr(context, "original_route"), "fastapi: RouteContext.original_route is gone"
    assert isinstance(_compat.original_route(context), fastapi.routing.APIRoute)
    plain = Route("/p", lambda request: None)
    assert _compat.original_route(plain) is plain


def test_set_request_body() -> None:
    async def no_stream() -> dict[str, Any]:
        raise AssertionError("the body was read from the stream again")

    async def read(has_json: bool) -> tuple[bytes, Any]:
        request = Request({"type": "http", "method": "POST", "headers": []}, no_stream)
        _compat.set_request_body(request, b'{"a": 1}', {"a": 2}, has_json=has_json)
        body = await request.body()
        assert hasattr(request, "_body"), "starlette: Request._body is gone"
        return body, await request.json() if has_json else None

    assert asyncio.run(read(True)) == (b'{"a": 1}', {"a": 2})  # the JSON handed over is reused
    assert asyncio.run(read(False)) == (b'{"a": 1}', None)


@pytest.mark.parametrize("name", _compat.__all__)
def test_every_name_is_tested(name: str) -> None:
    tested = {n.removeprefix("test_") for n in globals() if n.startswith("test_")}
    if name.startswith("Sdk"):  # types re-exported for the aggregation hook
        assert isinstance(getattr(_compat, name), type)
        return
    key = "base_configurator" if name == "BaseConfigurator" else name
    assert key in tested, f"otel_monitoring._compat.{name} has no test here"
