"""Fleet mode end to end: two shop instances, a real Prometheus scraping both every second.

The fleet's numbers read back through ``FleetStats`` must equal what was sent, exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml
from opentelemetry.sdk.metrics import MeterProvider

from otel_monitoring.alerting.evaluate import Evaluator
from otel_monitoring.alerting.rules import SloRule
from otel_monitoring.errors import ConfigError
from otel_monitoring.fleet import (
    FleetStats,
    PrometheusClient,
    PrometheusQueryError,
    PrometheusUnavailableError,
    exact_increase,
)
from otel_monitoring.fleet.exposition import (
    MAX_CACHE_S,
    SECONDS_BUCKETS,
    PrometheusExposition,
    prometheus_export_requested,
)
from otel_monitoring.self_telemetry import Guard
from otel_monitoring.stats.timeseries import TimeseriesMetric
from otel_monitoring.testing import offline_monitor

ROOT = Path(__file__).resolve().parents[2]
FLEET_DIR = Path(__file__).resolve().parent

# What each instance receives: (path, times) per instance.
TRAFFIC_A = [("/items/1", 37), ("/items/999", 5), ("/boom", 3), ("/items", 4), ("/slow?ms=300", 10)]
TRAFFIC_B = [("/items/2", 23), ("/orders-missing", 2), ("/items", 6), ("/slow?ms=300", 10)]
SECOND_BATCH_B = [("/items/3", 11)]


def _send(base_url: str, traffic: list[tuple[str, int]]) -> int:
    """Send the traffic (10 concurrent clients); return the number of responses.

    Each request on its own connection, announced with ``Connection: close`` so neither side
    reuses it: uvicorn closes a connection after an unhandled exception (``/boom``), and a
    pooled client shared by threads could write the next request onto that closing
    connection (a reset, seen now and then on a loaded machine). A retry is no cure: the
    server may have recorded the request, and the counts below must be exact.
    """
    paths = [path for path, times in traffic for _ in range(times)]

    def get(path: str) -> int:
        return httpx.get(base_url + path, timeout=10.0, headers={"Connection": "close"}).status_code

    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(get, paths))
    assert len(statuses) == len(paths)
    return len(paths)


def _recorded(base_url: str) -> float:
    """Requests an instance has recorded, read from its own ``/metrics``."""
    text = httpx.get(base_url + "/metrics", timeout=10.0).text
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("http_server_request_duration_seconds_count{")
    )


def _wait_recorded(expected: dict[str, int]) -> float:
    """Bounded polling until each instance (base URL) has recorded its requests; returns the
    Unix time after which a scrape shows them all.

    A response reaches the client before the server's middleware records it, so on a loaded
    machine the last requests may be recorded some time after the client saw their answers.
    """
    deadline = time.monotonic() + 60.0
    while True:
        seen = {url: _recorded(url) for url in expected}
        if all(seen[url] >= n for url, n in expected.items()):
            return time.time()
        if time.monotonic() >= deadline:
            raise TimeoutError(f"instances recorded {seen} requests, not {expected}, in 60 s")
        time.sleep(0.1)


def _wait_scraped(prom: PrometheusClient, after_s: float, instances: int) -> None:
    """Bounded polling until every target has a successful scrape that began after
    ``after_s`` (Unix seconds) and after the exposition's cache of a rendering made before
    then ran out, so Prometheus holds each instance's final counters."""
    after_s += MAX_CACHE_S
    deadline = time.monotonic() + 60.0
    last = "no answer"
    # timestamp() of a plain selector is the scrape time (of an expression: the query time).
    while time.monotonic() < deadline:
        scrapes = prom.query('timestamp(up{job="shop"})')
        healthy = prom.query('up{job="shop"} == 1')
        stamps = [s.value for s in scrapes]
        if len(healthy) == len(stamps) == instances and min(stamps) > after_s:
            return
        last = f"scrapes began at {stamps}, {len(healthy)} of {instances} targets up"
        time.sleep(0.2)
    raise TimeoutError(f"Prometheus did not scrape every instance after {after_s} in 60 s: {last}")


def test_fleet_counts_equal_the_sum_sent_to_both_instances(
    fleet: tuple[list[str], str],
) -> None:
    (url_a, url_b), prom_url = fleet
    n1 = _send(url_a, TRAFFIC_A)
    n2 = _send(url_b, TRAFFIC_B)
    recorded_s = _wait_recorded({url_a: n1, url_b: n2})
    with PrometheusClient(prom_url) as prom:
        _wait_scraped(prom, recorded_s + 0.2, instances=2)
        stats = FleetStats(prom, selector='job="shop"')

        for window in ("5m", "all"):
            service = stats.service(window)
            assert service.requests == n1 + n2
            assert service.errors == 3  # /boom: PaymentGatewayError -> 500
            assert service.client_errors == 5 + 2  # unknown item, unknown path
            assert service.endpoints_count == 5  # /items/{id}, /boom, /items, /slow, <unmatched>

        by_route = {(e.route, e.method): e for e in stats.endpoints("5m")}
        assert by_route["/items/{item_id}", "GET"].requests == 37 + 5 + 23
        assert by_route["/items/{item_id}", "GET"].client_errors == 5
        assert by_route["/items/{item_id}", "GET"].status_classes == (("2xx", 60), ("4xx", 5))
        assert by_route["/items", "GET"].requests == 10
        assert by_route["/boom", "GET"].errors == 3
        assert by_route["/boom", "GET"].error_rate == 100.0
        assert by_route["<unmatched>", "GET"].requests == 2
        slow = by_route["/slow", "GET"]
        assert slow.requests == 20
        # 20 requests of 300 ms: p95 interpolated inside the true value's bucket (250, 500].
        assert slow.latency.p95_ms is not None and 250.0 < slow.latency.p95_ms <= 500.0
        assert slow.latency.avg_ms is not None and 300.0 <= slow.latency.avg_ms < 400.0
        assert slow.latency.max_ms is None  # not in Prometheus histograms
        assert [e.route for e in stats.endpoint("/slow", "get", "5m")] == ["/slow"]
        assert stats.top_endpoints("5m", limit=1)[0].route == "/boom"

        db = {s.summary: s for s in stats.db_statements("5m")}
        assert db["SELECT items"].count == 10  # one query per GET /items
        assert db["SELECT items"].system == "sqlite"

        # SLO rules read the fleet: exact counts; "slower than" from the explicit buckets
        assert stats.slo_counts(300.0) == (n1 + n2, 3)
        slow_over = {
            ms: stats.slo_counts(300.0, route="/slow", method="GET", latency_threshold_ms=ms)
            for ms in (250.0, 375.0, 500.0)
        }
        # every /slow request took 300-500 ms: all slower than the 250 ms boundary, none than
        # the 500 ms one, half of the (250, 500] bucket interpolated at 375 ms
        assert slow_over == {250.0: (20, 20), 375.0: (20, 10), 500.0: (20, 0)}
        rule = SloRule("fleet-availability", objective=0.99, min_requests=50)
        local = offline_monitor()  # this process served nothing: the fleet decides
        try:
            findings = Evaluator(local.stats, [rule], Guard(), view=stats)()
        finally:
            local.shutdown()
        assert [f.value for f in findings] == [round(3 / (n1 + n2) / 0.01, 3)] * 2
        assert all(not f.breach for f in findings)  # 3.3x is under the 14.4x and 6x factors

        health = stats.health(active_alerts=0)
        assert health.total_requests == n1 + n2
        assert health.status.value == "degraded"  # 3 errors in 90 requests: >= 1 %
        assert health.uptime_seconds > 0

        # A second batch: the window that starts between the batches counts it exactly
        # (the "last sample minus the sample at the window's start" path of exact_increase).
        middle_s = time.time()
        n3 = _send(url_b, SECOND_BATCH_B)
        recorded_again_s = _wait_recorded({url_a: n1, url_b: n2 + n3})
        _wait_scraped(prom, recorded_again_s + 0.2, instances=2)
        now_s = time.time()
        count = 'http_server_request_duration_seconds_count{job="shop"}'
        since_middle = prom.query_value(f"sum({exact_increase(count, now_s - middle_s)})", now_s)
        assert since_middle == n3
        assert stats.service("5m").requests == n1 + n2 + n3

        series = stats.timeseries(TimeseriesMetric.THROUGHPUT, window_s=120, step_s=5)
        assert sum(point.count for point in series.points) == n1 + n2 + n3
        p95 = stats.timeseries("latency_p95", window_s=120, step_s=5, route="/slow")
        assert any(p.value is not None and 250 < p.value <= 500 for p in p95.points)


def test_unreachable_prometheus_raises_a_clear_error(another_port: Callable[[], int]) -> None:
    url = f"http://127.0.0.1:{another_port()}"
    with PrometheusClient(url, timeout_s=2.0) as prom:
        stats = FleetStats(prom)
        with pytest.raises(PrometheusUnavailableError, match=r"Prometheus at .* is unreachable"):
            stats.service("5m")
        assert prom.ready() is False


def test_a_non_prometheus_url_says_so(fleet: tuple[list[str], str]) -> None:
    (url_a, _), prom_url = fleet
    with (
        PrometheusClient(url_a + "/nothing-here") as wrong,
        pytest.raises(PrometheusUnavailableError, match="base URL"),
    ):
        wrong.query("up")
    with PrometheusClient(prom_url) as prom, pytest.raises(PrometheusQueryError, match="bad_data"):
        prom.query("sum(")


@pytest.mark.parametrize("url", ["", "127.0.0.1:9090", "ftp://host", "http://h:9090/?q=1"])
def test_bad_prometheus_url_fails_at_start(url: str) -> None:
    with pytest.raises(ConfigError, match="OTEL_MONITORING_PROMETHEUS_URL"):
        PrometheusClient(url)


@pytest.mark.parametrize("selector", ['{job="shop"}', "job=shop", 'job="a" or 1'])
def test_bad_selector_fails_at_start(selector: str) -> None:
    with (
        PrometheusClient("http://127.0.0.1:9") as prom,
        pytest.raises(ConfigError, match="OTEL_MONITORING_PROMETHEUS_SELECTOR"),
    ):
        FleetStats(prom, selector=selector)


def test_exposition_uses_unit_buckets_and_cumulative_counts() -> None:
    exposition = PrometheusExposition(process_metrics=False)
    provider = MeterProvider(metric_readers=[exposition.reader])
    meter = provider.get_meter("test")
    duration = meter.create_histogram("http.server.request.duration", unit="s")
    size = meter.create_histogram("http.server.response.body.size", unit="By")
    for _ in range(3):
        duration.record(0.3, {"http.route": "/x"})
        size.record(1000, {"http.route": "/x"})
    body, content_type = exposition.render()
    text = body.decode()
    assert content_type.startswith("text/plain")
    for _ in range(2):  # cumulative: a second scrape still shows every measurement
        text = exposition.render()[0].decode()
    assert 'http_server_request_duration_seconds_count{http_route="/x"' in text
    bounds = {
        float(line.split('le="')[1].split('"')[0])
        for line in text.splitlines()
        if line.startswith("http_server_request_duration_seconds_bucket")
    }
    assert bounds == {*SECONDS_BUCKETS, math.inf}
    assert 'http_server_response_body_size_bytes_bucket{http_route="/x",le="1024.0"' in text
    provider.shutdown()
    exposition.shutdown()
    exposition.shutdown()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"OTEL_MONITORING_PROMETHEUS_EXPORT": "true"}, True),
        ({"OTEL_MONITORING_PROMETHEUS_EXPORT": "0"}, False),
        ({"OTEL_METRICS_EXPORTER": "otlp, prometheus"}, True),
        ({"OTEL_METRICS_EXPORTER": "otlp"}, False),
    ],
)
def test_prometheus_export_requested(env: dict[str, str], expected: bool) -> None:
    assert prometheus_export_requested(env) is expected


def test_prometheus_export_rejects_a_non_boolean() -> None:
    with pytest.raises(ValueError, match="OTEL_MONITORING_PROMETHEUS_EXPORT"):
        prometheus_export_requested({"OTEL_MONITORING_PROMETHEUS_EXPORT": "maybe"})


def test_collector_config_parses_and_wires_the_pipelines() -> None:
    config = yaml.safe_load((ROOT / "collector-config.yaml").read_text())
    receivers = config["receivers"]["otlp"]["protocols"]
    assert receivers["grpc"]["endpoint"].startswith("127.0.0.1:")
    assert receivers["http"]["endpoint"].startswith("127.0.0.1:")
    pipelines = config["service"]["pipelines"]
    metrics = pipelines["metrics"]
    assert metrics["receivers"] == ["otlp"]
    processors = metrics["processors"]
    assert processors.index("batch") < processors.index("deltatocumulative")
    assert "prometheusremotewrite" in metrics["exporters"]
    assert "otlphttp" in metrics["exporters"]
    assert pipelines["traces"]["exporters"] == ["otlphttp"]
    for pipeline in pipelines.values():
        for kind in ("receivers", "processors", "exporters"):
            for name in pipeline.get(kind, []):
                assert name in config[kind], f"{kind[:-1]} {name} is used but not defined"


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> PrometheusClient:
    return PrometheusClient("http://prom.test:9090", transport=httpx.MockTransport(handler))


def test_a_slow_prometheus_times_out_with_a_clear_error() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with _client(hang) as prom, pytest.raises(PrometheusUnavailableError, match="within 5 s"):
        prom.query("up")


def test_a_failing_prometheus_is_unavailable_not_a_query_error() -> None:
    def overloaded(request: httpx.Request) -> httpx.Response:
        body = {"status": "error", "errorType": "unavailable", "error": "too many queries"}
        return httpx.Response(503, json=body)

    with _client(overloaded) as prom, pytest.raises(PrometheusUnavailableError, match="too many"):
        prom.query("up")


def test_scalar_and_range_results_are_parsed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/query":
            return httpx.Response(
                200,
                json={"status": "success", "data": {"resultType": "scalar", "result": [1, "NaN"]}},
            )
        matrix = [{"metric": {"job": "shop"}, "values": [[10, "1"], [20, "+Inf"]]}]
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "matrix", "result": matrix}}
        )

    with _client(answer) as prom:
        assert prom.query_value("time()") is None  # NaN: no data
        (series,) = prom.query_range("up", start_s=10, end_s=20, step_s=10)
        assert series.labels == {"job": "shop"}
        assert series.points == ((10.0, 1.0), (20.0, math.inf))


def test_the_api_reads_the_fleet_from_prometheus(
    fleet: tuple[list[str], str],
    start_server: Callable[..., object],
    shop_env: dict[str, str],
    uvicorn_cmd: Callable[..., list[str]],
    another_port: Callable[[], int],
    tmp_path: Path,
) -> None:
    (url_a, url_b), prom_url = fleet
    n1 = _send(url_a, TRAFFIC_A)
    n2 = _send(url_b, TRAFFIC_B)
    recorded_s = _wait_recorded({url_a: n1, url_b: n2})
    with PrometheusClient(prom_url) as prom:
        _wait_scraped(prom, recorded_s + 0.2, instances=2)
    port = another_port()
    env = {
        **shop_env,
        "SHOP_DB": str(tmp_path / "shop-api.db"),
        "SHOP_INSTRUMENT": "1",
        "OTEL_MONITORING_PROMETHEUS_URL": prom_url,
        "OTEL_MONITORING_PROMETHEUS_SELECTOR": 'job="shop"',
    }
    api = start_server(uvicorn_cmd("otel_monitoring.demo.shop:app", port), env, port)
    base = api.url  # type: ignore[attr-defined]
    health = httpx.get(f"{base}/monitoring/health", timeout=10).json()
    assert health["total_requests"] == n1 + n2
    endpoints = httpx.get(
        f"{base}/monitoring/endpoints", params={"window": "5m"}, timeout=10
    ).json()
    assert sum(e["requests"] for e in endpoints) == n1 + n2
    # the charts are the fleet's too (this API instance served none of those requests)
    chart = httpx.get(
        f"{base}/monitoring/timeseries/throughput",
        params={"window": "5m", "route": "/slow"},
        timeout=10,
    ).json()
    assert sum(p["count"] for p in chart["points"]) == 20
    assert chart["step_s"] >= 10.0
    finest = httpx.get(
        f"{base}/monitoring/trends/latency_p95", params={"resolution": "finest"}, timeout=10
    ).json()
    assert finest["available"] is False and "fleet mode" in finest["reason"]


def test_an_unreachable_prometheus_answers_503_with_a_reason(
    start_server: Callable[..., object],
    shop_env: dict[str, str],
    uvicorn_cmd: Callable[..., list[str]],
    another_port: Callable[[], int],
) -> None:
    port, dead = another_port(), another_port()
    env = {
        **shop_env,
        "SHOP_INSTRUMENT": "1",
        "OTEL_MONITORING_PROMETHEUS_URL": f"http://127.0.0.1:{dead}",
        "OTEL_MONITORING_PROMETHEUS_TIMEOUT": "2s",
    }
    api = start_server(uvicorn_cmd("otel_monitoring.demo.shop:app", port), env, port)
    response = httpx.get(f"{api.url}/monitoring/endpoints", timeout=10)  # type: ignore[attr-defined]
    assert response.status_code == 503
    assert "fleet statistics unavailable" in response.json()["detail"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.05, 2.0),  # below the first boundary: linear from 0
        (0.1, 4.0),  # a boundary: exact
        (0.175, 7.0),  # inside (0.1, 0.25]: 4 + (10 - 4) * 0.5
        (0.25, 10.0),
        (100.0, 12.0),  # beyond the last finite boundary: what is known to be below it
    ],
)
def test_counts_below_a_latency_threshold_from_cumulative_buckets(
    value: float, expected: float
) -> None:
    from otel_monitoring.fleet.stats import _cumulative_at

    buckets = [(0.1, 4.0), (0.25, 10.0), (60.0, 12.0), (math.inf, 15.0)]
    assert _cumulative_at(buckets, value) == pytest.approx(expected)
    assert _cumulative_at([], value) == 0.0
