"""Fleet mode: statistics of many instances, read from a Prometheus-compatible query API.

Each instance exposes ``/metrics`` (:mod:`otel_monitoring.fleet.exposition`) or sends OTLP to a
Collector that writes to Prometheus (``collector-config.yaml``); with
``OTEL_MONITORING_PROMETHEUS_URL`` set, :class:`FleetStats` answers the API's statistics for
the whole fleet. See ``docs/fleet.md``.
"""

from __future__ import annotations

from otel_monitoring.fleet.prometheus import (
    PrometheusClient,
    PrometheusError,
    PrometheusQueryError,
    PrometheusUnavailableError,
)
from otel_monitoring.fleet.stats import FleetMetricNames, FleetStats, exact_increase

__all__ = [
    "FleetMetricNames",
    "FleetStats",
    "PrometheusClient",
    "PrometheusError",
    "PrometheusQueryError",
    "PrometheusUnavailableError",
    "exact_increase",
]
