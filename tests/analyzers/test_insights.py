from __future__ import annotations

import numpy as np
import pytest

from analyzers import (
    CacheSummary,
    EndpointSummary,
    InsightKind,
    InvalidInputError,
    LatencySeries,
    QuerySummary,
    Severity,
    Thresholds,
    insights,
    recommend,
)


def _endpoint(**kw: object) -> EndpointSummary:
    base: dict[str, object] = dict(
        route="/orders/{id}",
        method="GET",
        requests=500,
        errors=2,
        error_rate=0.004,
        p50_ms=40.0,
        p95_ms=120.0,
        p99_ms=300.0,
        slowest_trace_ids=("a" * 32,),
    )
    base.update(kw)
    return EndpointSummary(**base)  # type: ignore[arg-type]


def test_healthy_inputs_give_no_advice() -> None:
    assert (
        insights(
            [_endpoint()],
            [QuerySummary("SELECT 1", 10, 1.0, 2.0, 3.0)],
            [CacheSummary("users", 95, 5)],
        )
        == ()
    )


def test_slow_endpoint_cites_numbers_route_and_trace_ids() -> None:
    (ins,) = insights([_endpoint(p95_ms=2500.0, p99_ms=4000.0)])
    assert ins.kind is InsightKind.SLOW_ENDPOINT and ins.severity is Severity.CRITICAL
    assert ins.route == "/orders/{id}" and ins.trace_ids == ("a" * 32,)
    assert "2500 ms" in ins.message and "/orders/{id}" in ins.message
    values = {e.name: e.value for e in ins.evidence}
    assert values["p95"] == 2500.0 and values["trace_id"] == "a" * 32


def test_error_hot_spot_and_too_little_traffic() -> None:
    found = insights(
        [
            _endpoint(errors=60, error_rate=0.12),
            _endpoint(route="/b", requests=5, errors=5, error_rate=1.0),
        ]
    )
    assert [i.kind for i in found] == [InsightKind.ERROR_HOT_SPOT]
    assert found[0].severity is Severity.WARNING
    assert "60 errors" in found[0].message


def test_slow_and_n_plus_one_queries() -> None:
    q = QuerySummary(
        "SELECT * FROM items WHERE order_id = ?", 900, 300.0, 800.0, 2100.0, ("t1", "t2")
    )
    kinds = {i.kind: i for i in insights(queries=[q])}
    assert set(kinds) == {InsightKind.SLOW_QUERY, InsightKind.N_PLUS_ONE}
    assert kinds[InsightKind.N_PLUS_ONE].trace_ids == ("t1", "t2")


def test_n_plus_one_in_unsampled_requests_is_counted_not_cited() -> None:
    """A request whose trace was not sampled has no trace id (""): it counts, uncited."""
    q = QuerySummary("SELECT * FROM items WHERE order_id = ?", 60, 1.0, 2.0, 3.0, ("", "t2", ""))
    (ins,) = insights(queries=[q])
    assert ins.kind is InsightKind.N_PLUS_ONE and ins.trace_ids == ("t2",)
    assert "in 3 request(s)" in ins.message
    evidence = [(e.name, e.value) for e in ins.evidence]
    assert ("requests", 3) in evidence and [v for n, v in evidence if n == "trace_id"] == ["t2"]


def test_low_cache_hit_ratio_needs_enough_lookups() -> None:
    (ins,) = insights(caches=[CacheSummary("sessions", 30, 70), CacheSummary("tiny", 1, 9)])
    assert ins.kind is InsightKind.LOW_CACHE_HIT_RATIO and "30.0 %" in ins.message


def test_regression_since_version_and_slo_trend() -> None:
    rng = np.random.default_rng(0)
    ts = tuple(float(t) for t in 1_700_000_000 + 600.0 * np.arange(120))
    p95 = tuple(
        float(v) for v in np.r_[np.full(60, 200.0), np.full(60, 320.0)] + rng.normal(0, 5, 120)
    )
    versions = tuple(["1.0"] * 60 + ["1.1"] * 60)
    found = insights(latency_series=[LatencySeries("/pay", "POST", ts, p95, versions)])
    reg = [i for i in found if i.kind is InsightKind.REGRESSION]
    assert reg and "since version 1.1" in reg[0].title
    trend = tuple(float(v) for v in 300.0 + 20.0 * np.arange(120) / 6)  # +20 ms/h
    found = insights(latency_series=[LatencySeries("/pay", "POST", ts, trend)])
    slo = [i for i in found if i.kind is InsightKind.SLO_TREND]
    assert slo and {e.name for e in slo[0].evidence} >= {"slope", "eta"}


def test_recommend_filters_by_severity_and_orders() -> None:
    eps = [_endpoint(p95_ms=1500.0), _endpoint(route="/x", p95_ms=5000.0)]
    recs = recommend(eps, min_severity=Severity.CRITICAL)
    assert [r.route for r in recs] == ["/x"]
    assert [r.severity for r in recommend(eps)] == [Severity.CRITICAL, Severity.WARNING]


def test_bad_thresholds() -> None:
    with pytest.raises(InvalidInputError):
        Thresholds(error_rate=0.0)
