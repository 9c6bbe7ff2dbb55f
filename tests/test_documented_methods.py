"""Pins the Monitor's documented methods: each exists and is a one-line delegation.

The README names the original ``MetricsCollector`` / ``AnalyticsEngine`` operations that live
on the monitor; the docs call ``monitor.<name>(...)``. Every such analysis or recording method
must stay on :class:`~otel_monitoring.Monitor` as one statement handing the call to the
:class:`~otel_monitoring.analysis.service.Analysis` service, the
:class:`~otel_monitoring.capture.recording.Recorder` or the local statistics, so that the Python API
and the HTTP API compute each answer in one place.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from unittest.mock import MagicMock

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from otel_monitoring.analysis.service import Analysis
from otel_monitoring.capture.recording import Recorder
from otel_monitoring.config import Settings
from otel_monitoring.monitor import Monitor

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: Methods the Monitor runs itself (the composition root's own work), not delegations.
OWN_WORK = {"shutdown", "drain", "flush", "collect", "instrument_engine"}
#: Analysis methods the brief and the module docs name besides the README's list.
ANALYSIS = {"chart", "finest", "insights"}
#: Where a delegation may go.
TARGETS = {"analysis", "recorder", "stats"}


def documented() -> set[str]:
    """The README's list of old names, and every ``monitor.<name>(`` in the docs."""
    names: set[str] = set(ANALYSIS)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    listed = re.search(r"under their\s+old names:(.*?)\.\n", readme, re.S)
    assert listed is not None, "README no longer lists the original operations"
    names |= set(re.findall(r"`([a-z_]+)`", listed.group(1)))
    for doc in DOCS:
        names |= set(re.findall(r"\bmonitor\.([a-z_]+)\(", doc.read_text(encoding="utf-8")))
    return names


def test_readme_lists_the_original_operations() -> None:
    assert {"record_request", "get_alerts", "detect_latency_anomalies"} <= documented()


@pytest.mark.parametrize("name", sorted(documented()))
def test_documented_method_exists_on_monitor(name: str) -> None:
    assert callable(getattr(Monitor, name, None)), f"Monitor.{name} is documented"
    assert name in Monitor.__dict__, f"Monitor.{name} must be defined on Monitor itself"


@pytest.mark.parametrize("name", sorted(documented() - OWN_WORK))
def test_documented_method_is_one_line_delegation(name: str) -> None:
    source = textwrap.dedent(inspect.getsource(Monitor.__dict__[name]))
    function = ast.parse(source).body[0]
    assert isinstance(function, ast.FunctionDef)
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    assert len(body) == 1, f"Monitor.{name} should be one delegating statement"
    statement = body[0]
    assert isinstance(statement, ast.Return | ast.Expr) and statement.value is not None
    call = statement.value
    assert isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
    owner = call.func.value
    assert isinstance(owner, ast.Attribute) and isinstance(owner.value, ast.Name)
    assert owner.value.id == "self" and owner.attr in TARGETS, ast.unparse(call)


@pytest.fixture
def monitor() -> Iterator[Monitor]:
    found = Monitor(
        Settings(interval_s=3600.0),
        env={},
        tracer_provider=TracerProvider(),
        meter_provider=MeterProvider(),
        span_exporters=(),
        metric_exporters=(),
    )
    try:
        yield found
    finally:
        found.shutdown(1.0)


def test_monitor_methods_reach_the_service(monitor: Monitor) -> None:
    """The delegations pass their arguments through unchanged."""
    analysis = MagicMock(spec=Analysis)
    recorder = MagicMock(spec=Recorder)
    monitor.analysis, monitor.recorder = analysis, recorder
    monitor.get_alerts("resolved")
    analysis.alerts.assert_called_once_with("resolved")
    monitor.detect_latency_anomalies("/a", "GET", "5m", "high", "finest")
    analysis.detect_latency_anomalies.assert_called_once_with("/a", "GET", "5m", "high", "finest")
    monitor.calculate_trend("throughput", "/a", None, "1h")
    analysis.calculate_trend.assert_called_once_with("throughput", "/a", None, "1h", "chart")
    monitor.detect_correlation("24h")
    analysis.detect_correlation.assert_called_once_with("24h")
    monitor.cleanup_old_metrics(60.0, who="ops", reason="disk")
    analysis.cleanup.assert_called_once_with(60.0, who="ops", reason="disk")
    monitor.get_recommendations("5m")
    analysis.recommendations.assert_called_once_with("5m")
    monitor.get_performance_insights("5m")
    analysis.performance_insights.assert_called_once_with("5m")
    monitor.get_health_status()
    analysis.local_health.assert_called_once_with()
    monitor.record_request("get", "/a", 200, 12.5, 100)
    recorder.record_request.assert_called_once_with("get", "/a", 200, 12.5, 100)
    monitor.record_cache_hit("products", hit=False)
    recorder.record_cache.assert_called_once_with(False, "products")
    monitor.record_database_query("SELECT 1", 3.0, system="sqlite")
    recorder.record_database_query.assert_called_once_with(
        "SELECT 1", 3.0, system="sqlite", error=None
    )


def test_service_answers_the_monitor_and_the_api_alike(monitor: Monitor) -> None:
    """One service: the monitor's answers are the service's (no second implementation)."""
    assert monitor.view is monitor.analysis.view is monitor.stats
    assert monitor.chart_scores is monitor.live_scores
    assert monitor.get_alerts("all") == monitor.analysis.alerts("all") == []
    with pytest.raises(ValueError, match="unknown state"):
        monitor.get_alerts("sleeping")
    result = monitor.cleanup_old_metrics(60.0, who="test", reason="check")
    assert result.buckets_removed == 0
    assert monitor.audit.records(1)[0].action == "cleanup"
