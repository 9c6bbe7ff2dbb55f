"""The standard OTel export interval coarser than the finest buckets.

``OTEL_METRIC_EXPORT_INTERVAL`` sets the collection interval when ``OTEL_MONITORING_INTERVAL``
is not set, and a collection's requests land in the finest bucket of its time: at 60 s, the
10-s buckets hold one aggregate a minute and the 10-s charts are not scored live. The monitor
says so at start, with the setting that keeps them; at the default interval it says nothing.
"""

from __future__ import annotations

import logging

import pytest

from otel_monitoring import Settings
from otel_monitoring.stats.timeseries import TimeseriesMetric
from otel_monitoring.testing import FakeClock, offline_monitor

THROUGHPUT = TimeseriesMetric.THROUGHPUT


def test_a_coarse_otel_export_interval_is_said_at_start(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(1767571200.0)
    with caplog.at_level(logging.WARNING, logger="otel_monitoring"):
        monitor = offline_monitor(
            Settings.from_env({"OTEL_METRIC_EXPORT_INTERVAL": "60000"}), clock=clock
        )
    try:
        assert "OTEL_MONITORING_INTERVAL=10s" in caplog.text
        for _ in range(20):  # 20 minutes, a collection a minute, 10 requests each 10 s
            for _ in range(6):
                for _ in range(10):
                    monitor.record_request("GET", "/x", 200, 20.0)
                clock.advance(10.0)
            monitor.flush()
        live = monitor.live_scores
        # what it warns of: the 1-min chart is scored, the 10-s one is not
        assert live.history(THROUGHPUT, "/x", "GET", 60.0) is not None
        assert live.history(THROUGHPUT, "/x", "GET", 10.0) is None
    finally:
        monitor.shutdown()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="otel_monitoring"):
        offline_monitor(Settings.from_env({}), clock=clock).shutdown()
    assert "OTEL_MONITORING_INTERVAL" not in caplog.text
