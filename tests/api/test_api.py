"""The monitoring API in process: security, limits, audit, alerts, bad input."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider

import otel_monitoring
from otel_monitoring import Monitor
from otel_monitoring.demo.shop import create_app, create_engine_for
from otel_monitoring.testing import FakeClock

ADMIN = {"Authorization": "Bearer admin-secret-123"}
READER = {"Authorization": "Bearer reader-secret-123"}
KEYS = (("admin-secret-123", "admin"), ("reader-secret-123", "read"))


class Api:
    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.clock = FakeClock()
        engine = create_engine_for(str(tmp_path / "shop.db"))
        self.app = create_app(engine)
        self.monitor: Monitor = otel_monitoring.instrument_app(
            self.app,
            engine=engine,
            tracer_provider=TracerProvider(),
            span_exporters=[],
            metric_exporters=[],
            clock=self.clock,
            **settings,
        )
        self.client = TestClient(self.app, raise_server_exceptions=False)

    def close(self) -> None:
        self.monitor.shutdown()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    instance = Api(tmp_path, api_keys=KEYS, latency_threshold_ms=20.0)
    yield instance
    instance.close()


@pytest.fixture
def open_api(tmp_path: Path) -> Iterator[Api]:
    instance = Api(tmp_path)
    yield instance
    instance.close()


# -- authentication ---------------------------------------------------------------------------
def test_keys_guard_everything_but_health(api: Api) -> None:
    c = api.client
    assert c.get("/monitoring/health").status_code == 200
    refused = c.get("/monitoring/endpoints")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in refused.json()["detail"]
    wrong = c.get("/monitoring/endpoints", headers={"Authorization": "Bearer nope-nope-nope"})
    assert wrong.status_code == 401 and "invalid" in wrong.json()["detail"]
    assert c.get("/monitoring/endpoints", headers=READER).status_code == 200
    assert c.get("/monitoring/dashboard", headers=ADMIN).status_code == 200


def test_mutating_needs_an_admin_key(api: Api) -> None:
    c = api.client
    body = {"reason": "planned maintenance"}
    assert c.post("/monitoring/cleanup", json=body).status_code == 401
    denied = c.post("/monitoring/cleanup", json=body, headers=READER)
    assert denied.status_code == 403 and "admin" in denied.json()["detail"]
    assert c.post("/monitoring/cleanup", json=body, headers=ADMIN).status_code == 200


def test_mutating_disabled_without_admin_key_says_how_to_enable(open_api: Api) -> None:
    response = open_api.client.post("/monitoring/cleanup", json={"reason": "x"})
    assert response.status_code == 403
    assert "OTEL_MONITORING_API_KEY" in response.json()["detail"]
    detect = open_api.client.post("/monitoring/anomalies/detect", json={})
    assert detect.status_code == 403
    # reads stay open when no key is configured
    assert open_api.client.get("/monitoring/endpoints").status_code == 200


def test_keys_never_reach_logs_or_audit(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api.client.get("/monitoring/endpoints", headers={"Authorization": "Bearer wrong-secret-999"})
    api.client.post("/monitoring/cleanup", json={"reason": "r"}, headers=ADMIN)
    (record,) = api.monitor.audit.records()
    assert record.who.startswith("key:") and "admin-secret" not in record.who
    assert "admin-secret-123" not in caplog.text and "wrong-secret-999" not in caplog.text
    assert "admin-secret-123" not in repr(api.monitor.settings)


# -- rate limits ------------------------------------------------------------------------------
def test_rate_limit_answers_429_with_headers(tmp_path: Path) -> None:
    api = Api(tmp_path, rate_limits=(("health", "3/minute"),))
    try:
        c = api.client
        first = c.get("/monitoring/health")
        assert first.headers["x-ratelimit-limit"] == "3"
        assert first.headers["x-ratelimit-remaining"] == "2"
        assert [c.get("/monitoring/health").status_code for _ in range(2)] == [200, 200]
        limited = c.get("/monitoring/health")
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["x-ratelimit-remaining"] == "0"
        assert "rate limit" in limited.json()["detail"]
        api.clock.advance(20.0)  # one request's worth of tokens back (3 per minute)
        assert c.get("/monitoring/health").status_code == 200
    finally:
        api.close()


def test_limits_key_on_route_template_and_client(tmp_path: Path) -> None:
    api = Api(tmp_path, api_keys=KEYS, rate_limits=(("resolve", "2/minute"),))
    try:
        c = api.client
        codes = [
            c.post(
                f"/monitoring/alerts/{n}/resolve", json={"reason": "r"}, headers=ADMIN
            ).status_code
            for n in ("a1", "a2", "a3")
        ]
        assert codes == [404, 404, 429]  # /alerts/a1 and /alerts/a2 share one limit
        other = c.post("/monitoring/alerts/a4/resolve", json={"reason": "r"}, headers=READER)
        assert other.status_code == 403  # another client has its own budget
    finally:
        api.close()


@pytest.mark.parametrize("step_s", [-3600.0, 3600.0], ids=["backward", "forward"])
def test_clock_steps_neither_lock_out_nor_reset(tmp_path: Path, step_s: float) -> None:
    api = Api(tmp_path, rate_limits=(("health", "2/minute"),))
    try:
        c = api.client
        assert [c.get("/monitoring/health").status_code for _ in range(3)] == [200, 200, 429]
        api.clock.step_wall(step_s)
        assert c.get("/monitoring/health").status_code == 429  # not reset early
        api.clock.advance(30.0)
        assert c.get("/monitoring/health").status_code == 200  # nor locked out
    finally:
        api.close()


def test_forwarded_for_only_from_trusted_proxies(tmp_path: Path) -> None:
    api = Api(tmp_path, rate_limits=(("health", "1/minute"),), trusted_proxies=("127.0.0.0/8",))
    try:
        c = api.client  # TestClient's peer is "testclient": not a trusted proxy
        assert (
            c.get("/monitoring/health", headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 200
        )
        spoofed = c.get("/monitoring/health", headers={"X-Forwarded-For": "2.2.2.2"})
        assert spoofed.status_code == 429  # the header was not believed
    finally:
        api.close()


# -- alerts, audit, cleanup ---------------------------------------------------------------------
def test_alert_lifecycle_and_audit(api: Api) -> None:
    c = api.client
    for _ in range(6):
        assert c.get("/slow", params={"ms": 40}).status_code == 200
    api.monitor.flush()
    (alert,) = c.get("/monitoring/alerts", headers=READER).json()
    assert alert["state"] == "firing" and alert["rule"] == "high_latency"
    assert alert["labels"] == {"method": "GET", "route": "/slow"}
    assert alert["value"] > 20.0

    resolved = c.post(
        f"/monitoring/alerts/{alert['id']}/resolve",
        json={"reason": "deploy rolled back"},
        headers=ADMIN,
    ).json()
    assert resolved["state"] == "resolved" and resolved["resolution_reason"] == "deploy rolled back"
    assert resolved["resolved_by"].startswith("key:")
    assert [h["state"] for h in resolved["history"]] == ["firing", "resolved"]
    again = c.post(f"/monitoring/alerts/{alert['id']}/resolve", json={"reason": "x"}, headers=ADMIN)
    assert again.status_code == 409

    api.monitor.flush()  # the condition still holds, but the alert was acknowledged
    assert c.get("/monitoring/alerts", headers=READER).json() == []
    history = c.get("/monitoring/alerts", params={"state": "resolved"}, headers=READER).json()
    assert [a["id"] for a in history] == [alert["id"]]

    audit = c.get("/monitoring/audit", headers=READER).json()
    actions = [(r["action"], r["target"], r["result"]) for r in audit]
    assert ("resolve_alert", alert["id"], "resolved") in actions
    assert ("resolve_alert", alert["id"], "already resolved") in actions


def test_alert_resolves_by_itself_when_condition_clears(api: Api) -> None:
    for _ in range(6):
        api.client.get("/slow", params={"ms": 40})
    api.monitor.flush()
    assert [a.state.value for a in api.monitor.get_alerts()] == ["firing"]
    api.clock.advance(400.0)  # the slow requests leave the 5-minute window
    api.monitor.flush()
    assert api.monitor.get_alerts() == []
    (closed,) = api.monitor.get_alerts("resolved")
    assert closed.resolved_by == "auto"


def test_cleanup_removes_old_data_and_reports_it(api: Api) -> None:
    for i in range(5):
        api.client.get(f"/items/{i + 1}")
    api.monitor.flush()
    api.clock.advance(7200.0)
    kept = api.client.post(
        "/monitoring/cleanup", json={"max_age": "3h", "reason": "test"}, headers=ADMIN
    ).json()
    assert kept["buckets_removed"] == 0
    removed = api.client.post(
        "/monitoring/cleanup", json={"max_age": "1h", "reason": "test"}, headers=ADMIN
    ).json()
    assert removed["buckets_removed"] > 0
    assert api.monitor.stats.endpoints("24h") == []


@pytest.mark.parametrize("max_age_s", [float("nan"), float("inf"), 1e12, -1.0])
def test_cleanup_in_python_refuses_an_unusable_age_before_acting(
    api: Api, max_age_s: float
) -> None:
    with pytest.raises(ValueError, match="max_age_s must be between 0 and"):
        api.monitor.cleanup_old_metrics(max_age_s)
    assert api.monitor.audit.records(10) == []


def test_dashboard_error_rate_is_a_percentage(open_api: Api) -> None:
    monitor = open_api.monitor
    for i in range(10_000):
        monitor.record_request("GET", "/orders/{id}", 500 if i < 50 else 200, 12.0)
    body = open_api.client.get("/monitoring/dashboard").json()
    health = body["health"]
    assert health["total_requests"] == 10_000 and health["total_errors"] == 50
    assert health["error_rate"] == 0.5
    assert set(body) >= {"health", "top_endpoints", "active_alerts", "insights", "timestamp"}
    assert body["top_endpoints"][0]["route"] == "/orders/{id}"


def test_timeseries_points_hold_the_traffic(open_api: Api) -> None:
    for i in range(12):
        open_api.client.get(f"/items/{1 + i % 5}")
    body = open_api.client.get(
        "/monitoring/timeseries/throughput", params={"window": "5m", "route": "/items/{item_id}"}
    ).json()
    assert body["unit"] == "rpm" and body["step_s"] == 10.0
    assert sum(p["count"] for p in body["points"]) == 12
    assert len(body["points"]) == 30


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("get", "/monitoring/endpoints", {"params": {"window": "7y"}}, 422),
        ("get", "/monitoring/endpoints", {"params": {"sort": "random"}}, 422),
        ("get", "/monitoring/endpoints", {"params": {"limit": 100000}}, 422),
        ("get", "/monitoring/endpoints", {"params": {"limit": "many"}}, 422),
        ("get", "/monitoring/endpoints/%2Fnope", {}, 404),
        ("get", "/monitoring/timeseries/temperature", {}, 422),
        ("get", "/monitoring/alerts", {"params": {"state": "sleeping"}}, 422),
        ("post", "/monitoring/alerts/nope/resolve", {"json": {"reason": "r"}}, 404),
        ("post", "/monitoring/alerts/x/resolve", {"json": {}}, 422),
        ("post", "/monitoring/alerts/x/resolve", {"json": {"reason": "r", "extra": 1}}, 422),
        ("post", "/monitoring/cleanup", {"json": {"max_age": "yesterday"}}, 422),
        (
            "post",
            "/monitoring/cleanup",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            422,
        ),
        ("post", "/monitoring/anomalies/detect", {"json": {"metric": "temperature"}}, 422),
        ("post", "/monitoring/anomalies/detect", {"json": {"sensitivity": "extreme"}}, 422),
    ],
)
def test_bad_input_gets_a_4xx_with_a_reason(
    api: Api, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    headers = {**ADMIN, **kwargs.pop("headers", {})}
    response = getattr(api.client, method)(path, headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["detail"]


def test_oversized_bodies_get_413(api: Api) -> None:
    big = b'{"reason": "' + b"x" * 70_000 + b'"}'
    declared = api.client.post(
        "/monitoring/cleanup", content=big, headers={**ADMIN, "content-type": "application/json"}
    )
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    streamed = api.client.post(
        "/monitoring/cleanup",
        content=chunks(),
        headers={**ADMIN, "content-type": "application/json"},
    )
    assert streamed.status_code == 413
    assert "larger than 65536 bytes" in streamed.json()["detail"]


def test_openapi_can_hide_the_api(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shown = Api(tmp_path / "a", openapi=True)
    hidden = Api(tmp_path / "b")  # the default: the app's own schema stays the app's
    try:
        assert "/monitoring/endpoints" in shown.client.get("/openapi.json").json()["paths"]
        assert not any(
            p.startswith("/monitoring") for p in hidden.client.get("/openapi.json").json()["paths"]
        )
    finally:
        shown.close()
        hidden.close()


def test_recommendations_cite_a_latency_regression(open_api: Api) -> None:
    monitor, clock = open_api.monitor, open_api.clock
    for step in range(60):  # an hour of 1-minute steps: p95 jumps from ~20 ms to ~200 ms
        latency = 20.0 if step < 30 else 200.0
        for _ in range(5):
            monitor.record_request("GET", "/search", 200, latency + (step % 3))
        monitor.flush()
        clock.advance(60.0)
    found = open_api.client.get("/monitoring/recommendations").json()
    regression = [i for i in found if i["kind"] == "regression"]
    assert regression, found
    assert regression[0]["route"] == "/search"
    evidence = {e["name"]: e["value"] for e in regression[0]["evidence"]}
    assert evidence["before_p95"] < 50 < 150 < evidence["after_p95"]
