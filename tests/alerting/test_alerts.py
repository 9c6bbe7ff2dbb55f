"""Alert rules and lifecycle: pending, hysteresis, keep-firing, flapping, SLO burn rates,
anomaly alerts, rules files, webhooks and OTel log records."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from otel_monitoring import ConfigError, Monitor, Settings
from otel_monitoring.alerting.engine import AlertEngine
from otel_monitoring.alerting.model import AlertState, Finding
from otel_monitoring.alerting.notify import WebhookNotifier, alertmanager_payload
from otel_monitoring.alerting.rules import (
    AnomalyRule,
    SloRule,
    Statistic,
    ThresholdRule,
    load_rules_file,
)
from otel_monitoring.testing import FakeClock, offline_monitor


class Source:
    """A findings source the test sets by hand."""

    def __init__(self) -> None:
        self.value: float | None = None
        self.rule = ThresholdRule("slow", Statistic.LATENCY_P95, 100.0, recover=80.0, for_s=60.0)
        self.keep_s = 0.0

    def __call__(self) -> list[Finding]:
        if self.value is None:
            return []
        return [
            Finding(
                rule="slow",
                severity="warning",
                labels=(("route", "/x"),),
                value=self.value,
                threshold=100.0,
                summary=f"p95 {self.value}",
                breach=self.value > 100.0,
                recovered=self.value <= 80.0,
                for_s=60.0,
                keep_firing_for_s=self.keep_s,
            )
        ]


@pytest.fixture
def engine() -> tuple[AlertEngine, Source, FakeClock]:
    clock, source = FakeClock(), Source()
    return AlertEngine(source, clock), source, clock


def test_pending_then_firing_after_the_for_period(
    engine: tuple[AlertEngine, Source, FakeClock],
) -> None:
    alerts, source, clock = engine
    source.value = 150.0
    alerts.evaluate()
    assert [a.state for a in alerts.active()] == [AlertState.PENDING]
    clock.advance(30.0)
    alerts.evaluate()
    assert alerts.active()[0].state is AlertState.PENDING
    clock.advance(31.0)
    alerts.evaluate()
    (firing,) = alerts.active()
    assert firing.state is AlertState.FIRING
    assert [e.state for e in firing.history] == [AlertState.PENDING, AlertState.FIRING]


def test_pending_that_clears_never_fires(engine: tuple[AlertEngine, Source, FakeClock]) -> None:
    alerts, source, clock = engine
    source.value = 150.0
    alerts.evaluate()
    source.value = 50.0
    clock.advance(10.0)
    alerts.evaluate()
    assert alerts.active() == [] and alerts.resolved() == []


def test_hysteresis_keeps_firing_between_recovery_and_threshold(
    engine: tuple[AlertEngine, Source, FakeClock],
) -> None:
    alerts, source, clock = engine
    source.value = 150.0
    alerts.evaluate()
    clock.advance(61.0)
    alerts.evaluate()
    source.value = 90.0  # below the threshold but above the recovery value
    clock.advance(10.0)
    alerts.evaluate()
    assert alerts.active()[0].state is AlertState.FIRING
    source.value = 70.0
    clock.advance(10.0)
    alerts.evaluate()
    assert alerts.active() == []
    assert alerts.resolved()[0].resolved_by == "auto"


def test_keep_firing_for(engine: tuple[AlertEngine, Source, FakeClock]) -> None:
    alerts, source, clock = engine
    source.keep_s = 120.0
    source.value = 150.0
    alerts.evaluate()
    clock.advance(61.0)
    alerts.evaluate()
    source.value = 10.0
    clock.advance(60.0)
    alerts.evaluate()
    assert alerts.active(), "still inside keep_firing_for"
    clock.advance(61.0)
    alerts.evaluate()
    assert alerts.active() == []


def test_flapping_holds_notifications(engine: tuple[AlertEngine, Source, FakeClock]) -> None:
    alerts, source, clock = engine
    fingerprint = ""
    for _ in range(3):
        source.value = 150.0
        alerts.evaluate()
        clock.advance(61.0)
        alerts.evaluate()
        fingerprint = alerts.active()[0].fingerprint
        source.value = 10.0
        clock.advance(5.0)
        alerts.evaluate()
    assert alerts.is_flapping(fingerprint)
    assert len(alerts.resolved()) == 3


def test_rules_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        """
[[threshold]]
name = "checkout-slow"
statistic = "latency_p95"
above = 800.0
recover_below = 600.0
for = "2m"
keep_firing_for = "5m"
route = "/checkout"
severity = "critical"

[[slo]]
name = "availability"
objective = 0.999

[[anomaly]]
name = "latency-anomaly"
statistic = "latency_p95"
resolution = "minute"
"""
    )
    threshold, slo, anomaly = load_rules_file(path)
    assert isinstance(threshold, ThresholdRule) and threshold.for_s == 120.0
    assert threshold.recovery == 600.0 and threshold.keep_firing_for_s == 300.0
    assert isinstance(slo, SloRule) and slo.error_budget == pytest.approx(0.001)
    assert isinstance(anomaly, AnomalyRule) and anomaly.resolution == "minute"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[threshold]]\nname = "a"\nstatistic = "latency_p95"\n', "exactly one of 'above'"),
        ('[[threshold]]\nname = "b"\nstatistic = "speed"\nabove = 1\n', "'b'"),
        (
            '[[threshold]]\nname = "c"\nstatistic = "latency_p95"\nabove = 5\nrecover_below = 9\n',
            "healthy side",
        ),
        ('[[slo]]\nname = "d"\nobjective = 2.0\n', "objective"),
        ('[[threshold]]\nname = "e"\nstatistic = "error_rate"\nabove = 1\nfor = "soon"\n', "'e'"),
        (
            '[[threshold]]\nname = "f"\nstatistic = "error_rate"\nabove = 1\ncolour = "red"\n',
            "unknown keys",
        ),
        ("[[page]]\nname = 'g'\n", "unknown rule kinds"),
        ('[[anomaly]]\nname = "h"\nresolution = "1s"\n', "resolution must be finest or minute"),
        ("not toml at all [", "not TOML"),
    ],
)
def test_bad_rules_fail_with_name_and_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_rules_file(path)


def _monitor(rules: Any, logger_provider: Any = None, **settings: Any) -> Monitor:
    return offline_monitor(Settings(**settings), rules=rules, logger_provider=logger_provider)


def test_slo_burn_rate_fires_on_both_windows_and_guards_low_traffic() -> None:
    slo = SloRule("availability", objective=0.99, min_requests=50)
    monitor = _monitor(rules=[slo])
    try:
        for _ in range(20):  # 20 requests, all failing: too few to judge
            monitor.record_request("GET", "/pay", 500, 10.0)
        monitor.flush()
        assert monitor.alerts.active() == []
        for i in range(200):  # 1h error ratio ~ 25 %: burn 25x > 14.4x on 1h and 5m
            monitor.record_request("GET", "/pay", 500 if i % 5 == 0 else 200, 10.0)
        monitor.flush()
        firing = {dict(a.labels)["window"]: a for a in monitor.alerts.active()}
        assert firing["1h"].severity == "critical" and firing["1h"].value > 14.4
        assert firing["6h"].severity == "warning"
    finally:
        monitor.shutdown()


def test_latency_slo_counts_slow_requests() -> None:
    slo = SloRule(
        "fast", objective=0.95, kind="latency", latency_threshold_ms=100.0, min_requests=50
    )
    monitor = _monitor(rules=[slo])
    try:
        for i in range(100):
            monitor.record_request("GET", "/a", 200, 500.0 if i < 60 else 20.0)
        monitor.flush()
        (alert, *_) = monitor.alerts.active()
        assert alert.rule == "fast" and alert.value == pytest.approx(0.6 / 0.05, rel=0.01)
    finally:
        monitor.shutdown()


def test_anomaly_alert_from_the_streaming_detector() -> None:
    monitor = _monitor(rules=[AnomalyRule("lat", Statistic.LATENCY_P95, sensitivity="high")])
    clock = monitor.clock
    assert isinstance(clock, FakeClock)
    try:
        for step in range(240):  # 40 minutes of 10-s buckets, then a jump
            latency = 20.0 + (step % 3) if step < 230 else 900.0
            monitor.record_request("GET", "/a", 200, latency)
            monitor.flush()
            clock.advance(10.0)
        monitor.flush()
        (alert,) = monitor.alerts.active()
        assert alert.rule == "lat" and alert.value == pytest.approx(900.0, rel=0.01)
    finally:
        monitor.shutdown()


def test_anomaly_alert_on_the_minute_chart() -> None:
    rule = AnomalyRule("lat", Statistic.LATENCY_P95, sensitivity="high", resolution="minute")
    monitor = _monitor(rules=[rule])
    clock = monitor.clock
    assert isinstance(clock, FakeClock)
    try:
        for step in range(200 * 6):  # 200 minutes of 10-s collections, then a jump
            latency = 20.0 + (step % 3) if step < 190 * 6 else 900.0
            monitor.record_request("GET", "/a", 200, latency)
            monitor.flush()
            clock.advance(10.0)
            if step == 190 * 6 + 3:  # the 10-s chart has jumped; the minute is not over yet
                assert monitor.alerts.active() == []
        (alert,) = monitor.alerts.active()
        assert alert.rule == "lat" and alert.value == pytest.approx(900.0, rel=0.01)
    finally:
        monitor.shutdown()


def test_alerts_are_emitted_as_otel_log_records() -> None:
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    rule = ThresholdRule("boom", Statistic.ERROR_RATE, 10.0, min_requests=1)
    monitor = _monitor(rules=[rule], logger_provider=provider)
    try:
        monitor.record_request("GET", "/a", 500, 5.0)
        monitor.flush()
        (record,) = exporter.get_finished_logs()
        attributes = dict(record.log_record.attributes or {})
        assert attributes["alert.rule"] == "boom" and attributes["alert.state"] == "firing"
        assert "alert firing" in str(record.log_record.body)
    finally:
        monitor.shutdown()


class Receiver:
    """A webhook receiver on loopback: records bodies; can answer with a status or redirect."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.statuses = statuses or []
        self.event = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                receiver.paths.append(self.path)
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                if status in (301, 302, 307):
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.event.set()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    instance = Receiver()
    yield instance
    instance.server.shutdown()


def test_webhook_gets_alertmanager_json_on_firing_and_resolve(receiver: Receiver) -> None:
    rule = ThresholdRule("errors", Statistic.ERROR_RATE, 10.0, min_requests=1)
    monitor = _monitor([rule], webhook_urls=(receiver.url,), webhook_allow=("127.0.0.1",))
    clock = monitor.clock
    assert isinstance(clock, FakeClock)
    try:
        monitor.record_request("GET", "/a", 500, 5.0)
        monitor.flush()
        clock.advance(400.0)
        monitor.flush()
        assert monitor.notifier is not None
        monitor.notifier.close(timeout_s=30.0)
        statuses = [body["status"] for body in receiver.bodies]
        assert statuses == ["firing", "resolved"]
        first = receiver.bodies[0]
        assert first["version"] == "4" and first["alerts"][0]["labels"]["alertname"] == "errors"
        assert first["alerts"][0]["annotations"]["summary"]
    finally:
        monitor.shutdown()


def test_webhook_retries_with_backoff_and_never_follows_redirects(receiver: Receiver) -> None:
    engine_clock = FakeClock()
    source = Source()
    alerts = AlertEngine(source, engine_clock)
    receiver.statuses = [503, 503]  # two failures, then success
    notifier = WebhookNotifier([receiver.url], ["127.0.0.1"], guard=alerts.guard, backoff_s=0.01)
    alerts.listeners.append(notifier)
    source.value = 150.0
    alerts.evaluate()
    engine_clock.advance(61.0)
    alerts.evaluate()
    notifier.close(timeout_s=30.0)
    assert len(receiver.bodies) == 3 and notifier.sent == 1

    redirecting = Receiver([302])
    try:
        notifier = WebhookNotifier(
            [redirecting.url], ["127.0.0.1"], guard=alerts.guard, backoff_s=0.01
        )
        notifier(alerts.active()[0])
        notifier.close(timeout_s=30.0)
        assert redirecting.paths == ["/hook"] and notifier.failed == 1  # no second request
    finally:
        redirecting.server.shutdown()


_FORKED_NOTIFIER = """
import os, sys
from otel_monitoring.alerting.model import Alert, AlertState
from otel_monitoring.alerting.notify import WebhookNotifier
from otel_monitoring.self_telemetry import Guard

notifier = WebhookNotifier([sys.argv[1]], ["127.0.0.1"], guard=Guard(), backoff_s=0.01)
pid = os.fork()
if pid == 0:  # a worker forked after the notifier started (gunicorn --preload)
    alert = Alert("a1", "f1", "r", "warning", AlertState.FIRING, "s", (), 1.0, 0.5, 0.0, 0.0)
    notifier(alert)
    notifier.close(timeout_s=10.0)
    os._exit(0 if notifier.sent == 1 else 1)
_, status = os.waitpid(pid, 0)
notifier.close()
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_a_forked_child_delivers_its_own_alerts() -> None:
    """A forked child inherits no delivery thread: it starts its own (and its own client)."""
    receiver = Receiver()
    try:
        argv = [sys.executable, "-W", "ignore::DeprecationWarning", "-c", _FORKED_NOTIFIER]
        done = subprocess.run([*argv, receiver.url], timeout=60, check=False)
        assert done.returncode == 0 and len(receiver.bodies) == 1, receiver.bodies
    finally:
        receiver.server.shutdown()


def test_webhook_allow_list_is_enforced_at_start() -> None:
    with pytest.raises(ConfigError, match="OTEL_MONITORING_WEBHOOK_ALLOW"):
        WebhookNotifier(
            ["http://169.254.169.254/latest"],
            ["127.0.0.1"],
            guard=AlertEngine(list, FakeClock()).guard,
        )
    with pytest.raises(ConfigError, match="not an http"):
        WebhookNotifier(
            ["file:///etc/passwd"], ["127.0.0.1"], guard=AlertEngine(list, FakeClock()).guard
        )


def test_payload_shape_for_resolved_alert(engine: tuple[AlertEngine, Source, FakeClock]) -> None:
    alerts, source, clock = engine
    source.value = 150.0
    alerts.evaluate()
    clock.advance(61.0)
    alerts.evaluate()
    (firing,) = alerts.active()
    resolved = alerts.resolve(firing.id, who="alice", reason="fixed")
    assert resolved is not None
    body = alertmanager_payload(resolved, receiver="pager")
    assert body["status"] == "resolved" and body["alerts"][0]["endsAt"].startswith("20")
