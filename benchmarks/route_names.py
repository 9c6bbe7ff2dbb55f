"""Cost of naming requests by their full route template, per kind of request (in process).

Two comparisons, each measured in the same run with interleaved repeats:

* code mode: microseconds per request through the bare app and through ``instrument_app``
  (discarding exporters), for an API route, a route of a mounted FastAPI app, a
  ``StaticFiles`` file, ``/openapi.json`` and a path that matches nothing (404);
* zero-code mode: microseconds per call of the contrib FastAPI instrumentation's own route
  lookup (``_get_route_details``, what it used before) and of
  :func:`otel_monitoring.capture.routes.route_template` (what it uses now), on the same requests.

Usage::

    python benchmarks/route_names.py [--requests 2000] [--repeats 9]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from opentelemetry.sdk.trace import TracerProvider

Scope = dict[str, Any]

PATHS = {
    "api route": "/items/3",
    "mounted app": "/v2/pong",
    "static file": "/static/a.txt",
    "openapi.json": "/openapi.json",
    "404": "/nothing-here",
}


def make_app(static: Path) -> FastAPI:
    off: dict[str, Any] = {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    try:
        app, v2 = FastAPI(**off), FastAPI(**off)
    except TypeError:  # FastAPI without built-in telemetry
        app, v2 = FastAPI(), FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @v2.get("/pong")
    async def pong() -> dict[str, str]:
        return {"pong": "v2"}

    app.mount("/v2", v2)
    app.mount("/static", StaticFiles(directory=static), name="static")
    return app


def instrumented(static: Path) -> FastAPI:
    import otel_monitoring

    app = make_app(static)
    otel_monitoring.instrument_app(
        app, tracer_provider=TracerProvider(), span_exporters=[], metric_exporters=[]
    )
    return app


def scope_for(path: str) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def drive(app: FastAPI, path: str, count: int) -> float:
    """us per request for ``count`` GET ``path`` through the ASGI app."""

    async def send(message: dict[str, Any]) -> None:
        return None

    template = scope_for(path)
    began = time.perf_counter()
    for _ in range(count):
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:  # FileResponse waits for the disconnect
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}

        await app(dict(template), receive, send)
    return (time.perf_counter() - began) / count * 1e6


def per_call(function: Callable[[Scope], object], scope: Scope, count: int) -> float:
    began = time.perf_counter()
    for _ in range(count):
        function(scope)
    return (time.perf_counter() - began) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per repeat")
    parser.add_argument("--repeats", type=int, default=9, help="interleaved repeats")
    args = parser.parse_args()

    from opentelemetry.instrumentation.fastapi import _get_route_details

    from otel_monitoring.capture.routes import route_template

    with tempfile.TemporaryDirectory() as tmp:
        static = Path(tmp)
        (static / "a.txt").write_text("a")
        apps = {"bare": make_app(static), "otel-monitoring": instrumented(static)}
        loop = asyncio.new_event_loop()
        code: dict[tuple[str, str], list[float]] = {}
        for app in apps.values():  # warm up
            for path in PATHS.values():
                loop.run_until_complete(drive(app, path, 200))
        for _ in range(args.repeats):
            for kind, path in PATHS.items():
                for name, app in apps.items():
                    gc.collect()
                    us = loop.run_until_complete(drive(app, path, args.requests))
                    code.setdefault((kind, name), []).append(us)

        lookup: dict[tuple[str, str], list[float]] = {}
        bare = apps["bare"]
        functions: dict[str, Callable[[Scope], object]] = {
            "contrib _get_route_details": _get_route_details,
            "route_template": lambda scope: route_template(scope["app"], scope),
        }
        for _ in range(args.repeats):
            for kind, path in PATHS.items():
                scope = {**scope_for(path), "app": bare}
                for name, function in functions.items():
                    lookup.setdefault((kind, name), []).append(
                        per_call(function, scope, args.requests)
                    )

    print("code mode: median us per request")
    print(f"{'request':14} {'bare':>8} {'otel-monitoring':>16} {'overhead':>9} {'x bare':>7}")
    for kind in PATHS:
        b = statistics.median(code[(kind, "bare")])
        m = statistics.median(code[(kind, "otel-monitoring")])
        print(f"{kind:14} {b:8.1f} {m:16.1f} {m - b:9.1f} {m / b:7.2f}")
    print("\nzero-code mode: median us per route lookup, and the route each returns")
    print(f"{'request':14} {'contrib':>8} {'ours':>8} {'ours/contrib':>13}  contrib -> ours")
    for kind, path in PATHS.items():
        c = statistics.median(lookup[(kind, "contrib _get_route_details")])
        o = statistics.median(lookup[(kind, "route_template")])
        scope = {**scope_for(path), "app": apps["bare"]}
        names = f"{_get_route_details(scope)} -> {route_template(scope['app'], scope)}"
        print(f"{kind:14} {c:8.1f} {o:8.1f} {o / c:13.2f}  {names}")


if __name__ == "__main__":
    main()
