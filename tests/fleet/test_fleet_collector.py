"""Fleet mode through a Collector: OTLP exponential histograms -> native histograms in Prometheus.

Two real shop instances export OTLP (delta, exponential histograms: the package's own reader)
to :class:`RemoteWriteCollector`, which does what ``collector-config.yaml``'s pipeline does to
them (``deltatocumulative``, then ``prometheusremotewrite``'s translation) and remote-writes
native histograms to the real Debian Prometheus 2.42 started with
``--enable-feature=native-histograms --web.enable-remote-write-receiver``. ``FleetStats``
must read exact counts and percentiles within the stored histogram's bucket.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cramjam
import httpx
import prompb
import pytest
from remote_write_collector import RemoteWriteCollector
from test_fleet import SECOND_BATCH_B, TRAFFIC_A, TRAFFIC_B, _send

from otel_monitoring.fleet import FleetStats, PrometheusClient
from otel_monitoring.fleet.native import WindowHistogram, native_increase
from otel_monitoring.fleet.prometheus import NativeHistogram
from otel_monitoring.stats.timeseries import TimeseriesMetric

DURATION = "http_server_request_duration_seconds"
NATIVE_FLAGS = ("--enable-feature=native-histograms", "--web.enable-remote-write-receiver")


@pytest.fixture
def collector_fleet(
    start_server: Callable[..., object],
    start_prometheus: Callable[..., object],
    shop_env: dict[str, str],
    uvicorn_cmd: Callable[..., list[str]],
    another_port: Callable[[], int],
    tmp_path: Path,
) -> Iterator[tuple[list[str], str, RemoteWriteCollector]]:
    """Prometheus (remote write only), the Collector stand-in, two shops sending OTLP to it."""
    prometheus = start_prometheus([], *NATIVE_FLAGS)
    prom_url: str = prometheus.url  # type: ignore[attr-defined]
    collector = RemoteWriteCollector(prom_url + "/api/v1/write")
    urls = []
    for name in ("a", "b"):
        port = another_port()
        env = {
            **shop_env,
            "SHOP_DB": str(tmp_path / f"shop-{name}.db"),
            "SHOP_INSTRUMENT": "1",
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id=shop-{name}",
        }
        server = start_server(uvicorn_cmd("otel_monitoring.demo.shop:app", port), env, port)
        urls.append(server.url)  # type: ignore[attr-defined]
    yield urls, prom_url, collector
    collector.close()


def _wait_stored(prom: PrometheusClient, collector: RemoteWriteCollector, expected: int) -> None:
    """Bounded polling until the instances exported ``expected`` requests and Prometheus
    holds them (the OTLP export runs every second, then the remote write)."""
    deadline = time.monotonic() + 60.0
    last = "nothing yet"
    while time.monotonic() < deadline:
        assert not collector.errors, collector.errors
        merged = collector.merged(DURATION, job="shop")
        stored = prom.query_value(f'sum(histogram_count({DURATION}{{job="shop"}}))')
        if merged is not None and merged.count == expected and stored == expected:
            return
        last = f"exported {merged.count if merged else 0}, stored {stored}"
        time.sleep(0.2)
    raise TimeoutError(f"expected {expected} requests in Prometheus within 60 s: {last}")


def test_fleet_reads_native_histograms_written_like_the_collector(
    collector_fleet: tuple[list[str], str, RemoteWriteCollector],
) -> None:
    (url_a, url_b), prom_url, collector = collector_fleet
    n1 = _send(url_a, TRAFFIC_A)
    n2 = _send(url_b, TRAFFIC_B)
    with PrometheusClient(prom_url) as prom:
        _wait_stored(prom, collector, n1 + n2)
        # the shape the Collector produces: native histograms only, no classic series
        assert prom.query(f'{DURATION}_count{{job="shop"}}') == []
        stored = prom.query(f'{DURATION}{{job="shop"}}')
        assert stored and all(s.histogram is not None for s in stored)
        assert {s.labels["instance"] for s in stored} == {"shop-a", "shop-b"}
        stats = FleetStats(prom, selector='job="shop"')

        for window in ("5m", "all"):
            service = stats.service(window)
            assert service.requests == n1 + n2
            assert service.errors == 3  # /boom: PaymentGatewayError -> 500
            assert service.client_errors == 5 + 2
            assert service.endpoints_count == 5

        by_route = {(e.route, e.method): e for e in stats.endpoints("5m")}
        assert by_route["/items/{item_id}", "GET"].requests == 37 + 5 + 23
        assert by_route["/items/{item_id}", "GET"].status_classes == (("2xx", 60), ("4xx", 5))
        assert by_route["/boom", "GET"].errors == 3
        assert by_route["<unmatched>", "GET"].requests == 2
        slow = by_route["/slow", "GET"]
        assert slow.requests == 20

        # p95 of /slow lies in the stored histogram's bucket that holds the true p95: the
        # exact merged OTel histogram says which bucket, at the schema Prometheus stored
        exact = collector.merged(DURATION, job="shop", http_route="/slow")
        assert exact is not None and exact.count == 20
        schema = min(exact.scale, 8)
        low, high = exact.bucket_bounds(schema, 0.95 * exact.count)
        assert high / low - 1 <= 2 ** (2**-7) - 1  # schema 7 or 8: within 0.54 %
        assert slow.latency.p95_ms is not None
        assert low * 1000 - 5e-4 <= slow.latency.p95_ms <= high * 1000 + 5e-4  # ms, 3 decimals
        assert slow.latency.avg_ms == round(exact.sum / exact.count * 1000, 3)
        # the client-side quantile equals Prometheus's own histogram_quantile on that data
        server_p95 = prom.query_value(
            f'histogram_quantile(0.95, sum({DURATION}{{job="shop",http_route="/slow"}}))'
        )
        assert server_p95 is not None
        assert slow.latency.p95_ms == pytest.approx(server_p95 * 1000, abs=5e-4)
        service_p95 = prom.query_value(f'histogram_quantile(0.95, sum({DURATION}{{job="shop"}}))')
        assert service_p95 is not None
        assert stats.service("5m").latency.p95_ms == pytest.approx(service_p95 * 1000, abs=5e-4)

        health = stats.health(active_alerts=0)
        assert health.total_requests == n1 + n2
        assert health.total_errors == 3
        assert stats.instances() == []  # nothing is scraped: no `up` series on this route

        db = {s.summary: s for s in stats.db_statements("5m")}
        assert db["SELECT items"].count == 10
        assert db["SELECT items"].p95_ms is not None

        # SLO counts: exact totals; "slower than" from the native buckets
        assert stats.slo_counts(300.0) == (n1 + n2, 3)
        slower_than_250 = sum(
            n for i, n in exact.positive.items() if 2.0 ** (i * 2.0**-exact.scale) >= 0.25
        )
        assert slower_than_250 == 20  # every /slow request slept 300 ms
        assert stats.slo_counts(300.0, route="/slow", method="GET", latency_threshold_ms=250.0) == (
            20,
            20,
        )

        # A second batch: a window that starts between the batches counts it exactly and
        # reads its latencies from the difference of two native histograms (add - sub).
        middle_s = time.time()
        n3 = _send(url_b, [*SECOND_BATCH_B, ("/slow?ms=300", 5)])
        _wait_stored(prom, collector, n1 + n2 + n3)
        window_s = time.time() - middle_s
        assert stats.slo_counts(window_s) == (n3, 0)
        assert stats.slo_counts(
            window_s, route="/slow", method="GET", latency_threshold_ms=250.0
        ) == (5, 5)
        assert stats.slo_counts(
            window_s, route="/items/{item_id}", method="GET", latency_threshold_ms=250.0
        ) == (11, 0)
        assert stats.service("5m").requests == n1 + n2 + n3

        series = stats.timeseries(TimeseriesMetric.THROUGHPUT, window_s=300, step_s=5)
        assert sum(point.count for point in series.points) == n1 + n2 + n3
        p95 = stats.timeseries("latency_p95", window_s=300, step_s=5, route="/slow")
        # each 5 s step's own p95 (from the native histograms' differences): all /slow requests
    # slept 300 ms
    assert any(p.value is not None and 300 <= p.value < 500 for p in p95.points), p95.points


def test_classic_only_reading_ignores_native_histograms(
    collector_fleet: tuple[list[str], str, RemoteWriteCollector],
) -> None:
    (url_a, _), prom_url, collector = collector_fleet
    n = _send(url_a, [("/items/1", 7)])
    with PrometheusClient(prom_url) as prom:
        _wait_stored(prom, collector, n)
        assert FleetStats(prom, selector='job="shop"').service("5m").requests == n
        classic = FleetStats(prom, selector='job="shop"', histograms="classic")
        assert classic.service("5m").requests == 0


def _h(*buckets: tuple[float, float, float]) -> NativeHistogram:
    return NativeHistogram(sum(c for _, _, c in buckets), 0.0, buckets)


def test_window_histogram_subtracts_parts_of_different_schemas() -> None:
    # end of window: schema 0 buckets (0.5, 1] x 6 and (1, 2] x 4; start: schema 1 (finer)
    # (0.5, 0.707] x 2 -> the window holds 4 in (0.5, 1] and 4 in (1, 2]
    end = _h((0.5, 1.0, 6.0), (1.0, 2.0, 4.0))
    start = _h((0.5, 2**-0.5, 2.0))
    window = WindowHistogram(add=(end,), sub=(start,))
    assert window.count == 8
    assert window.below(1.0) == pytest.approx(4.0)
    assert window.below(2.0) == pytest.approx(8.0)
    assert window.quantile(0.75) == pytest.approx(1.5)  # rank 6: half-way through (1, 2]
    assert WindowHistogram().quantile(0.5) is None


def _write(prom_url: str, name: str, counts_ago: list[tuple[int, float]], now_s: float) -> None:
    """Remote-write one native series (all observations in the bucket (0.25, 0.5])."""
    request = prompb.WriteRequest()
    series = request.timeseries.add()
    for label, value in (("__name__", name), ("job", "shop")):
        series.labels.add(name=label, value=value)
    for count, ago_s in counts_ago:
        histogram = series.histograms.add(
            count_int=count,
            sum=0.3 * count,
            schema=0,
            zero_threshold=1e-128,
            zero_count_int=0,
            timestamp=round((now_s - ago_s) * 1000),
        )
        histogram.positive_spans.add(offset=-1, length=1)
        histogram.positive_deltas.append(count)
    response = httpx.post(
        prom_url + "/api/v1/write",
        content=bytes(cramjam.snappy.compress_raw(request.SerializeToString())),
        headers={"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"},
        timeout=10.0,
    )
    assert response.status_code == 204, response.text


def test_native_counts_are_exact_and_a_reset_is_not_read_as_a_small_count(
    start_prometheus: Callable[..., object],
) -> None:
    prom_url: str = start_prometheus([], *NATIVE_FLAGS).url  # type: ignore[attr-defined]
    now_s = time.time()
    _write(prom_url, "steady_seconds", [(10, 90), (40, 60), (55, 30), (70, 5)], now_s)
    # a Collector restart (or a stream dropped after max_stale) between 60 s and 30 s ago:
    # the count climbs back above the window's first value, so end - start would read 2
    _write(prom_url, "reset_seconds", [(10, 90), (40, 60), (5, 30), (12, 5)], now_s)
    with PrometheusClient(prom_url) as prom:
        steady = native_increase('steady_seconds{job="shop"}', 80.0)
        assert prom.query_value(f"sum({steady})", now_s) == 70 - 10  # exact
        total = native_increase('steady_seconds{job="shop"}', 80.0, "histogram_sum")
        assert prom.query_value(f"sum({total})", now_s) == pytest.approx(0.3 * 60)
        reset = native_increase('reset_seconds{job="shop"}', 80.0)
        naive = 'histogram_count(reset_seconds{job="shop"} offset 80s)'
        assert (
            prom.query_value(f'sum(histogram_count(reset_seconds{{job="shop"}}) - {naive})', now_s)
            == 2
        )
        extrapolated = prom.query_value(
            'sum(histogram_count(increase(reset_seconds{job="shop"}[80s])))', now_s
        )
        # the reset is seen: the approximate increase(), not the wrong 2
        assert prom.query_value(f"sum({reset})", now_s) == extrapolated
        assert extrapolated is not None and extrapolated > 12
