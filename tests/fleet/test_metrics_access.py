"""``GET /metrics`` (Prometheus export) behind the API key, rate-limited, one collection per
interval however many scrapers ask."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.registry import Collector

from otel_monitoring.fleet.exposition import PrometheusExposition

KEY = "scrape-reader-key-1"


class CountingCollector(Collector):
    """Counts collections of the registry (one per rendering)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            self.count += 1
        yield GaugeMetricFamily("collections", "renderings so far", value=self.count)


def _scrape_concurrently(exposition: PrometheusExposition, scrapers: int) -> set[bytes]:
    barrier = threading.Barrier(scrapers)

    def scrape(_: int) -> bytes:
        barrier.wait(timeout=30)
        return exposition.render()[0]

    with ThreadPoolExecutor(scrapers) as pool:
        return set(pool.map(scrape, range(scrapers)))


@pytest.mark.parametrize(("cache_s", "collections"), [(3600.0, 1), (0.0, 20)])
def test_concurrent_scrapes_share_one_collection_per_interval(
    cache_s: float, collections: int
) -> None:
    exposition = PrometheusExposition(process_metrics=False, cache_s=cache_s)
    MeterProvider(metric_readers=[exposition.reader])
    counter = CountingCollector()
    exposition.registry.register(counter)  # collects once to describe the collector
    before = counter.count
    bodies = _scrape_concurrently(exposition, 20)
    assert counter.count - before == collections
    assert len(bodies) == (1 if collections == 1 else 20)
    openmetrics = exposition.render("application/openmetrics-text; version=1.0.0")
    assert openmetrics[1].startswith("application/openmetrics-text")  # cached per format


def test_metrics_needs_the_key_and_prometheus_scrapes_with_it(
    start_server: Callable[..., Any],
    start_prometheus: Callable[..., Any],
    port: int,
    shop_env: dict[str, str],
    uvicorn_cmd: Callable[..., list[str]],
    tmp_path: Path,
) -> None:
    env = {
        **shop_env,
        "SHOP_INSTRUMENT": "1",
        "OTEL_MONITORING_PROMETHEUS_EXPORT": "true",
        "OTEL_MONITORING_API_KEY": f"{KEY}:read",
    }
    shop = start_server(uvicorn_cmd("otel_monitoring.demo.shop:app", port), env, port)
    assert httpx.get(shop.url + "/items/1", timeout=10).status_code == 200
    refused = httpx.get(shop.url + "/metrics", timeout=10)
    assert refused.status_code == 401 and "Bearer" in refused.json()["detail"]
    wrong = httpx.get(shop.url + "/metrics", headers={"Authorization": "Bearer wrong-key-1"})
    assert wrong.status_code == 401
    scraped = httpx.get(shop.url + "/metrics", headers={"Authorization": f"Bearer {KEY}"})
    assert scraped.status_code == 200 and scraped.headers["X-RateLimit-Limit"] == "600"
    assert "http_server_request_duration_seconds_count" in scraped.text

    prometheus = start_prometheus([shop.url.removeprefix("http://")], bearer=KEY)
    deadline_polls = 600  # 0.1 s each: bounded
    up: list[Any] = []
    for _ in range(deadline_polls):
        up = httpx.get(prometheus.url + "/api/v1/query", params={"query": "up"}).json()
        up = up["data"]["result"]
        if up and up[0]["value"][1] == "1":
            break
        threading.Event().wait(0.1)
    assert up and up[0]["value"][1] == "1", (up, prometheus.output())
    assert "Traceback" not in shop.output()
