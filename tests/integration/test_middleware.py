"""What the app's own middleware answers is the app's traffic, in every mode, under a real
uvicorn (``middleware_app``: CORS, an ``@app.middleware("http")`` API-key check, an
exception handler of its own, background tasks, a slow stream, a slow handler).

A browser's CORS preflight, a 401 of the API-key check and an exception it raises never reach
a route, yet each targets one: counted under that route's template and its own method, with
its exact status (4xx apart from errors; HEAD and a wrong method are 405s of the route),
whether the app was instrumented before or after its middleware was added; the app answers
exactly as it would unmonitored. A request's latency is the key check's time and the
handler's, at most what the client waited; a client that goes away is counted once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from app_modes import APP_MODES, api_until, raised

APP = "tests.integration.middleware_app:app"
ORIGIN = "https://shop.example"  # middleware_app.ORIGIN
AUTH_MS = 200.0  # middleware_app.AUTH_S
JOB_MS = 500.0  # middleware_app.JOB_S
STREAM_MS = 1000.0  # middleware_app.CHUNKS x CHUNK_GAP_S
SLOW_MS = 2000.0  # middleware_app.SLOW_S
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
APP_MODULE = "tests.integration.middleware_app"

#: (route, method) -> (requests, errors, client errors) after :func:`_send`
EXPECTED: dict[tuple[str, str], tuple[int, int, int]] = {
    ("/items", "OPTIONS"): (3, 0, 1),  # two preflights, one from an origin not allowed (400)
    ("/items/{item_id}", "OPTIONS"): (2, 0, 1),  # a preflight; a plain OPTIONS (405)
    ("/items/{item_id}", "GET"): (3, 1, 0),  # the middleware raised for one
    ("/private/orders", "GET"): (4, 0, 2),  # two without a key (401)
    ("/db-down", "GET"): (1, 1, 0),  # 503 from the app's exception handler
    ("/items/{item_id}", "HEAD"): (1, 0, 1),  # FastAPI answers HEAD on a GET route with 405
    ("/items/{item_id}", "DELETE"): (1, 0, 1),  # 405
    ("/signup", "POST"): (2, 0, 0),
}
#: (route, status, exception type) of /monitoring/errors
ERRORS = {
    ("/db-down", 503, f"{APP_MODULE}.UnavailableError"),
    ("/items/{item_id}", 500, f"{APP_MODULE}.RefusedError"),
}


@pytest.fixture(
    params=[
        ("code", "last"),
        ("code", "first"),
        ("code", "startup"),
        ("code-spans", "last"),
        ("zero-code", "last"),
    ],
    ids=[
        "code",
        "code-instrumented-first",
        "code-instrumented-at-startup",
        "code-spans",
        "zero-code",
    ],
)
def served(request: pytest.FixtureRequest, serve_app: Callable[..., Any]) -> Any:
    """The app in each mode; in code mode instrumented after its middleware is added or
    before (then the middleware wraps what ``instrument_app`` added)."""
    mode, when = request.param
    return serve_app(APP, mode, {"MIDDLEWARE_APP_INSTRUMENT": when}, "/healthz")


def _timed(client: httpx.Client, method: str, path: str, **kwargs: Any) -> tuple[Any, float]:
    """The response and the milliseconds the client waited for it."""
    start = time.perf_counter()
    response = client.request(method, path, **kwargs)
    return response, (time.perf_counter() - start) * 1000.0


def _send(base: str) -> dict[str, float]:
    """The traffic of :data:`EXPECTED`, checking each answer is the app's own; returns the
    slowest client-side time (ms) of ``/signup`` and of the slow key check."""
    waited: dict[str, float] = {}
    with httpx.Client(base_url=base, timeout=10) as client:
        for _ in range(2):
            answer = client.options("/items", headers=PREFLIGHT)
            assert answer.status_code == 200, answer.text
            assert answer.headers["access-control-allow-origin"] == ORIGIN
        answer = client.options("/items", headers={**PREFLIGHT, "Origin": "https://evil.example"})
        assert answer.status_code == 400, answer.text
        preflight = {**PREFLIGHT, "Access-Control-Request-Method": "GET"}
        assert client.options("/items/3", headers=preflight).status_code == 200
        assert client.options("/items/3").status_code == 405
        for _ in range(2):
            answer = client.get("/items/3", headers={"Origin": ORIGIN})
            assert answer.json() == {"item": 3}
            assert answer.headers["access-control-allow-origin"] == ORIGIN
            assert answer.headers["x-served-by"] == "shop"
        for _ in range(2):
            answer = client.get("/private/orders")
            assert (answer.status_code, answer.json()) == (401, {"detail": "no key"})
        assert client.get("/private/orders", headers={"x-api-key": "k"}).json() == [1]
        answer, waited["auth"] = _timed(
            client, "GET", "/private/orders", headers={"x-api-key": "k", "x-slow-auth": "1"}
        )
        assert answer.json() == [1]
        assert client.head("/items/3").status_code == 405
        assert client.delete("/items/3").status_code == 405
        for _ in range(2):
            answer, signup_ms = _timed(client, "POST", "/signup")
            assert answer.json() == {"ok": True}
            waited["signup"] = max(waited.get("signup", 0.0), signup_ms)
    # uvicorn closes the connection after an exception: a connection each
    answer = httpx.get(base + "/db-down", timeout=10)
    assert (answer.status_code, answer.json()) == (503, {"detail": "UnavailableError"})
    answer = httpx.get(base + "/items/4", headers={"x-boom": "1"}, timeout=10)
    assert (answer.status_code, answer.json()) == (500, {"detail": "RefusedError"})
    return waited


def test_what_the_apps_middleware_answers_is_counted_under_its_route(served: Any) -> None:
    waited = _send(served.url)
    total = sum(requests for requests, _, _ in EXPECTED.values())
    rows = api_until(
        served.api,
        "/monitoring/endpoints",
        lambda rows: sum(r["requests"] for r in rows) >= total,
        {"window": "5m"},
    )
    by_route = {(r["route"], r["method"]): r for r in rows}
    counted = {key: (r["requests"], r["errors"], r["client_errors"]) for key, r in by_route.items()}
    assert counted == EXPECTED
    errors = api_until(served.api, "/monitoring/errors", lambda e: len(e) >= 2, {"window": "5m"})
    assert {(e["route"], e["status_code"], e["exception_type"]) for e in errors} == ERRORS
    # the key check's time is the request's; the sign-up's e-mail, sent after, is not
    auth = by_route[("/private/orders", "GET")]["latency"]["max_ms"]
    assert AUTH_MS <= auth <= waited["auth"], (auth, waited)
    signup = by_route[("/signup", "POST")]["latency"]["max_ms"]
    assert signup <= min(waited["signup"], JOB_MS / 2), (signup, waited)
    health = api_until(served.api, "/monitoring/health", lambda h: True)
    assert health["self_telemetry"]["internal_errors"] == 0, health
    assert raised(served.output()) == {type_name for _, _, type_name in ERRORS}


@pytest.mark.parametrize("mode", APP_MODES)
def test_a_client_that_goes_away_is_counted_once(mode: str, serve_app: Callable[..., Any]) -> None:
    """A client that closes a slow stream after its first chunk, and one that gives up on a
    2-s handler after 0.3 s: each request counted once, as the server answered it (200),
    without an exception in the server's log; the requests that follow are counted."""
    served = serve_app(APP, mode, {}, "/healthz")
    with httpx.Client(base_url=served.url, timeout=10) as client:
        with client.stream("GET", "/stream") as stream:
            assert next(stream.iter_raw()).startswith(b"chunk 00")
        with pytest.raises(httpx.ReadTimeout):
            client.get("/slow", timeout=0.3)
    rows = api_until(
        served.api,
        "/monitoring/endpoints",
        lambda rows: any(r["route"] == "/slow" for r in rows),  # its handler ran to its end
        {"window": "5m"},
    )
    assert httpx.get(served.url + "/items/5", timeout=10).json() == {"item": 5}
    rows = api_until(
        served.api,
        "/monitoring/endpoints",
        lambda rows: sum(r["requests"] for r in rows) >= 3,
        {"window": "5m"},
    )
    by_route = {r["route"]: r for r in rows}
    counted = {
        route: (r["method"], r["requests"], r["errors"], r["status_classes"])
        for route, r in by_route.items()
    }
    assert counted == {
        "/stream": ("GET", 1, 0, [["2xx", 1]]),
        "/slow": ("GET", 1, 0, [["2xx", 1]]),
        "/items/{item_id}": ("GET", 1, 0, [["2xx", 1]]),
    }
    # the stream ended when its client left (all of it takes 1 s); the handler ran its 2 s
    assert by_route["/stream"]["latency"]["max_ms"] < STREAM_MS / 2, by_route["/stream"]
    assert SLOW_MS <= by_route["/slow"]["latency"]["max_ms"] < SLOW_MS + 500, by_route["/slow"]
    if mode == "zero-code":  # the contrib's in-flight gauge is back to 0
        metrics = api_until(served.api, "/monitoring/metrics", lambda m: True, {"window": "5m"})
        active = [m for m in metrics if m["name"] == "http.server.active_requests"]
        assert active and sum(m["value"] for m in active) == 0, active
    health = api_until(served.api, "/monitoring/health", lambda h: True)
    assert health["self_telemetry"]["internal_errors"] == 0, health
    assert raised(served.output()) == set(), served.output()
