"""The arithmetic that local and fleet statistics share (otel_monitoring.stats_view)."""

from __future__ import annotations

from collections.abc import Sequence

from otel_monitoring.stats.view import (
    health_status,
    request_figures,
    window_minutes,
    worst_endpoints,
)
from otel_monitoring.types import (
    EndpointStats,
    HealthState,
    HealthStatus,
    LatencyStats,
    SelfTelemetry,
    ServiceStats,
    Window,
)

_NO_LATENCY = LatencyStats(None, None, None, None, None, None, None)
_TELEMETRY = SelfTelemetry(0, 0, 0, 0, 0, 0, None)


def _latency(p95_ms: float | None) -> LatencyStats:
    return LatencyStats(None, None, None, None, None, p95_ms, None)


def _service(requests: int, errors: int, window: Window = Window.M5) -> ServiceStats:
    return ServiceStats(
        window=window,
        **request_figures(
            requests=requests, errors=errors, client_errors=0, latency=_NO_LATENCY, minutes=5.0
        ),
        endpoints_count=1,
    )


def _endpoint(
    route: str, *, requests: int = 100, errors: int = 0, p95_ms: float | None = None
) -> EndpointStats:
    return EndpointStats(
        route=route,
        method="GET",
        window=Window.M5,
        **request_figures(
            requests=requests,
            errors=errors,
            client_errors=0,
            latency=_latency(p95_ms),
            minutes=5.0,
        ),
        response_size_avg_bytes=None,
        response_size_max_bytes=None,
        status_classes=(),
    )


def _health(
    recent: ServiceStats,
    endpoints: Sequence[EndpointStats] = (),
    *,
    active_alerts: int = 0,
    degraded_by: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> HealthStatus:
    return health_status(
        recent=recent,
        total=_service(1000, 3, Window.ALL),
        endpoints=endpoints,
        latency_threshold_ms=500.0,
        active_alerts=active_alerts,
        uptime_s=12.34567,
        self_telemetry=_TELEMETRY,
        degraded_by=degraded_by,
        notes=notes,
    )


def test_request_figures_give_percentages_and_requests_per_minute() -> None:
    figures = request_figures(
        requests=3, errors=1, client_errors=2, latency=_NO_LATENCY, minutes=2.0
    )
    assert figures["error_rate"] == 33.3333
    assert figures["client_error_rate"] == 66.6667
    assert figures["throughput_rpm"] == 1.5
    assert (
        request_figures(requests=0, errors=0, client_errors=0, latency=_NO_LATENCY, minutes=1.0)[
            "error_rate"
        ]
        == 0.0
    )


def test_window_minutes_is_the_window_cut_to_the_age_and_at_least_one_second() -> None:
    assert window_minutes(300.0, 60.0) == 1.0  # counted for a minute only
    assert window_minutes(300.0, None) == 5.0  # age unknown: the whole window
    assert window_minutes(None, 120.0) == 2.0  # since start
    assert window_minutes(None, 0.0) == 1.0 / 60.0
    assert window_minutes(None, None) == 1.0 / 60.0


def test_worst_endpoints_rank_by_error_rate_then_p95() -> None:
    found = [
        _endpoint("/fast"),
        _endpoint("/slow", p95_ms=900.0),
        _endpoint("/failing", errors=5),
    ]
    assert [e.route for e in worst_endpoints(found, 2)] == ["/failing", "/slow"]


def test_health_is_healthy_with_few_errors_and_fast_routes() -> None:
    health = _health(_service(100, 0), [_endpoint("/a", p95_ms=100.0)])
    assert health.status is HealthState.HEALTHY
    assert health.reasons == ()
    assert (health.total_requests, health.total_errors, health.error_rate) == (1000, 3, 0.3)
    assert health.uptime_seconds == 12.346


def test_health_judges_error_rate_only_from_ten_requests() -> None:
    assert _health(_service(9, 9)).status is HealthState.HEALTHY
    assert _health(_service(10, 1)).status is HealthState.UNHEALTHY
    degraded = _health(_service(100, 1))
    assert degraded.status is HealthState.DEGRADED
    assert degraded.reasons == ("error rate 1.00% over the last 5 min (>= 1%)",)


def test_slow_routes_other_degraders_and_alerts_degrade_in_that_order() -> None:
    health = _health(
        _service(100, 0),
        [_endpoint("/slow", p95_ms=750.0)],
        degraded_by=["1 instance(s) down: a:9100"],
        active_alerts=2,
        notes=["monitoring store failing"],
    )
    assert health.status is HealthState.DEGRADED
    assert health.active_alerts == 2
    assert health.reasons == (
        "GET /slow p95 750 ms over the last 5 min (> 500 ms)",
        "1 instance(s) down: a:9100",
        "2 active alert(s)",
        "monitoring store failing",
    )


def test_alerts_never_soften_unhealthy_and_notes_never_change_the_state() -> None:
    assert _health(_service(100, 50), active_alerts=1).status is HealthState.UNHEALTHY
    noted = _health(_service(100, 0), notes=["monitoring store failing"])
    assert noted.status is HealthState.HEALTHY
    assert noted.reasons == ("monitoring store failing",)
