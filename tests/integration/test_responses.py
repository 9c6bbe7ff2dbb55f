"""What a response is measured as, in code mode (lean and with spans) and in zero-code mode
(the contrib middleware), under a real uvicorn: its ``BackgroundTasks``, which run after it
is sent inside the same ASGI call, are not its latency; its size is its own."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from app_modes import APP_MODES, api_until

APP = "tests.integration.responses_app:app"
JOB_MS = 600.0  # responses_app.JOB_S


@pytest.fixture(params=APP_MODES)
def served(request: pytest.FixtureRequest, serve_app: Callable[..., Any]) -> Any:
    """The responses app under uvicorn, in each of the three modes."""
    return serve_app(APP, request.param, {}, "/jobs")


def _endpoints(api: str, route: str, requests: int) -> dict[str, Any]:
    """The route's row of ``/monitoring/endpoints`` once it counts ``requests``."""

    def counted(rows: list[dict[str, Any]]) -> bool:
        return any(r["route"] == route and r["requests"] == requests for r in rows)

    rows = api_until(api, "/monitoring/endpoints", counted, {"window": "5m"})
    return next(dict(r) for r in rows if r["route"] == route)


def test_background_tasks_are_not_the_requests_latency(served: Any) -> None:
    with httpx.Client(base_url=served.url, timeout=10) as app_client:
        for _ in range(3):
            assert app_client.post("/signup").status_code == 201
        deadline = time.monotonic() + 10
        while app_client.get("/jobs").json()["done"] < 3:  # the jobs ran, after the answers
            assert time.monotonic() < deadline
            time.sleep(0.1)
    latency = _endpoints(served.api, "/signup", 3)["latency"]
    # each answer took a few milliseconds; with its job counted it took 600 ms or more
    assert latency["max_ms"] < JOB_MS / 2, latency
    assert "Traceback" not in served.output(), served.output()


def test_each_response_is_counted_at_its_own_size(served: Any) -> None:
    """A streamed response (no ``content-length``) after a sized one is not counted at the
    sized one's size (the contrib kept one value for every request)."""
    with httpx.Client(base_url=served.url, timeout=10) as app_client:
        for _ in range(2):
            assert len(app_client.get("/report").content) == 10_000
            assert app_client.get("/events").content == b"abcde"
    report = _endpoints(served.api, "/report", 2)
    assert report["response_size_max_bytes"] == 10_000, report
    events = _endpoints(served.api, "/events", 2)
    # code mode counts the bytes streamed; the contrib only a content-length, and none came
    assert events["response_size_max_bytes"] in (5, None), events
    assert "Traceback" not in served.output(), served.output()
