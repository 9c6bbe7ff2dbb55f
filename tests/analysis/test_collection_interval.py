"""The standard OTel export interval coarser than the finest buckets.

``OTEL_METRIC_EXPORT_INTERVAL`` sets the export interval when ``OTEL_MONITORING_INTERVAL`` is
not set. The store is still fed every finest bucket (a collection's requests land in the
bucket of its time: at one collection a minute the 10-s buckets held one clump a minute and
the 10-s charts were not scored live); exports go out once per interval, merged
(``tests/collect/test_export_merge.py``; over OTLP beside the distro,
``tests/integration/test_zero_code.py``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from otel_monitoring import Settings
from otel_monitoring.testing import FakeClock, offline_monitor


def test_a_coarse_otel_export_interval_still_collects_every_finest_bucket() -> None:
    clock = FakeClock(1767571200.0)
    monitor = offline_monitor(
        Settings.from_env({"OTEL_METRIC_EXPORT_INTERVAL": "60000"}), clock=clock
    )
    try:
        assert monitor.settings.interval_s == 60.0
        assert (monitor.reader.interval_s, monitor.reader.collect_interval_s) == (60.0, 10.0)
    finally:
        monitor.shutdown()
    fine = offline_monitor(
        Settings.from_env(
            {"OTEL_METRIC_EXPORT_INTERVAL": "60000", "OTEL_MONITORING_RESOLUTION": "2s"}
        ),
        clock=clock,
    )
    try:
        assert fine.reader.collect_interval_s == 2.0
    finally:
        fine.shutdown()
    quick = offline_monitor(Settings.from_env({"OTEL_MONITORING_INTERVAL": "1s"}), clock=clock)
    try:  # an interval finer than the buckets is kept for both
        assert (quick.reader.interval_s, quick.reader.collect_interval_s) == (1.0, 1.0)
    finally:
        quick.shutdown()


def test_a_resolution_a_store_file_cannot_keep_is_said_and_collection_follows_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With a store file the finest buckets are 10 s (the processes sharing it must agree):
    a finer ``OTEL_MONITORING_RESOLUTION`` is said at start, and the collections follow the
    file's buckets rather than the setting."""
    settings = Settings(store_url=f"sqlite:///{tmp_path / 'm.db'}", resolution_s=2.0)
    with caplog.at_level(logging.WARNING, logger="otel_monitoring"):
        monitor = offline_monitor(settings, clock=FakeClock(1767571200.0))
    try:
        assert "OTEL_MONITORING_RESOLUTION=2s is not used with a store file" in caplog.text
        assert monitor.store.tiers[0].width_s == 10.0
        assert monitor.reader.collect_interval_s == 10.0
    finally:
        monitor.shutdown()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="otel_monitoring"):
        offline_monitor(
            Settings(store_url=f"sqlite:///{tmp_path / 'n.db'}"), clock=FakeClock(1767571200.0)
        ).shutdown()
    assert "OTEL_MONITORING_RESOLUTION" not in caplog.text
