"""A deploy seen through a SQLite store: regressions name the ``service.version`` they began
with. Two monitors in turn (the old release, then the new one) share one file on a fake clock.
"""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_monitoring import Monitor, Settings
from otel_monitoring.analysis.bridge import version_labels
from otel_monitoring.store.sqlite import SqliteStore
from otel_monitoring.testing import FakeClock, offline_monitor


def release(path: Path, clock: FakeClock, version: str, latency_ms: float) -> Monitor:
    """Run ``version`` for half an hour of 10-s collections at ``latency_ms``."""
    monitor = offline_monitor(
        Settings(interval_s=3600.0, store_url=f"sqlite:///{path}"),
        clock=clock,
        tracer_provider=TracerProvider(resource=Resource.create({"service.version": version})),
    )
    for step in range(180):
        for _ in range(5):
            monitor.record_request("GET", "/search", 200, latency_ms + step % 3)
        clock.advance(10.0)
        monitor.flush()
    return monitor


def test_a_regression_names_the_version_it_began_with(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "monitoring.db"
    old = release(path, clock, "1.4.0", 20.0)
    old.shutdown()
    deployed_s = clock.now_s()
    new = release(path, clock, "1.5.0", 200.0)
    try:
        assert [v for _, v in new.store.versions()] == ["1.4.0", "1.5.0"]
        assert new.store.versions()[1][0] == deployed_s
        # the chart holds both processes' buckets (the old release's come from the file)
        chart = new.chart("latency_p95", "/search", "GET", "1h")
        observed = [p.value for p in chart.points if p.value is not None]
        assert len(observed) >= 355 and min(observed) < 25 and max(observed) > 195
        found = new.insights("1h").recommendations
        regressions = [i for i in found if i.kind.value == "regression"]
        assert regressions, found
        assert "since version 1.5.0" in regressions[0].title
        evidence = {e.name: e.value for e in regressions[0].evidence}
        assert evidence["version_before"] == "1.4.0"
        assert evidence["version_after"] == "1.5.0"
    finally:
        new.shutdown()
    # a third process reads the versions from the file
    reader = SqliteStore(path)
    try:
        assert [v for _, v in reader.versions()] == ["1.4.0", "1.5.0"]
    finally:
        reader.close()


def test_version_labels() -> None:
    versions = [(100.0, "a"), (200.0, "b")]
    assert version_labels([50.0, 100.0, 150.0, 200.0, 250.0], versions) == (
        "unknown",
        "a",
        "a",
        "b",
        "b",
    )
    assert version_labels([120.0, 130.0], versions) is None  # one version: nothing to name
    assert version_labels([1.0], []) is None
