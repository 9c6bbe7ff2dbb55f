"""Alert notifications: Alertmanager-compatible webhooks and OTel log records.

Webhooks get the Alertmanager webhook JSON (version 4) on firing and on resolve, from a
worker thread with a bounded queue (the oldest notification is dropped and counted when it is
full), retries with exponential backoff, and never on the request path. A receiver URL is
the textbook SSRF: every URL must match the allow-list (host names, or addresses and networks
checked against the resolved address at send time), and redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from otel_monitoring.alerting.model import Alert, AlertState
from otel_monitoring.clock import iso
from otel_monitoring.errors import ConfigError
from otel_monitoring.forks import redo_in_forked_child
from otel_monitoring.self_telemetry import Guard

__all__ = ["AlertLogEmitter", "WebhookNotifier", "alertmanager_payload", "check_allowed"]

_logger = logging.getLogger("otel_monitoring")
_QUEUE = 1000
_ATTEMPTS = 5


def _allowed(host: str, allow: Sequence[str]) -> bool:
    """Whether ``host`` (a name or an address) is on the allow-list; addresses of a name are
    resolved and every one must be allowed by a network entry (or the name listed)."""
    host = host.lower().strip("[]")
    if host in (a.lower() for a in allow):
        return True
    networks = []
    for entry in allow:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue
    if not networks:
        return False
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(
        any(ipaddress.ip_address(a) in net for net in networks) for a in addresses
    )


def check_allowed(urls: Sequence[str], allow: Sequence[str]) -> None:
    """Fail at start when a receiver URL is not http(s) or not on the allow-list.

    Raises:
        ConfigError: names the URL and the variable to change.
    """
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"invalid OTEL_MONITORING_WEBHOOK_URLS entry {url!r}: not an http(s) URL"
            )
        if not _allowed(parts.hostname, allow):
            raise ConfigError(
                f"webhook receiver {url!r} is not allowed: add its host or network to"
                " OTEL_MONITORING_WEBHOOK_ALLOW"
            )


def alertmanager_payload(alert: Alert, receiver: str, external_url: str = "") -> dict[str, Any]:
    """The Alertmanager webhook body (version 4) for one alert."""
    status = "resolved" if alert.state is AlertState.RESOLVED else "firing"
    labels = {"alertname": alert.rule, "severity": alert.severity, **dict(alert.labels)}
    annotations = {
        "summary": alert.summary,
        "value": f"{alert.value:g}",
        "threshold": f"{alert.threshold:g}",
    }
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{alert.rule}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {"alertname": alert.rule},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url,
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": iso(alert.started_s),
                "endsAt": iso(alert.resolved_s) if alert.resolved_s else "0001-01-01T00:00:00Z",
                "generatorURL": external_url,
                "fingerprint": alert.fingerprint,
            }
        ],
    }


class WebhookNotifier:
    """Listener of the alert engine that posts to webhook receivers in the background."""

    def __init__(
        self,
        urls: Sequence[str],
        allow: Sequence[str],
        *,
        guard: Guard,
        is_flapping: Callable[[str], bool] = lambda _: False,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
    ) -> None:
        check_allowed(urls, allow)
        self.urls = list(urls)
        self.allow = list(allow)
        self.guard = guard
        self.is_flapping = is_flapping
        self.backoff_s = backoff_s
        self.sent = 0
        self.failed = 0
        self.held = 0
        self.timeout_s = timeout_s
        self._stop = False
        self._start()
        redo_in_forked_child(self, WebhookNotifier._start)

    def _start(self) -> None:
        """A new queue, HTTP client and delivery thread (at start, and in a forked child,
        which inherits no thread and must not share the parent's connections)."""
        self._queue: deque[Alert] = deque()
        self._ready = threading.Condition()
        self._client = httpx.Client(timeout=self.timeout_s, follow_redirects=False)
        self._thread = threading.Thread(
            target=self._run, name="otel-monitoring-webhooks", daemon=True
        )
        if not self._stop:
            self._thread.start()

    def __call__(self, alert: Alert) -> None:
        if alert.state is AlertState.PENDING:
            return
        if self.is_flapping(alert.fingerprint):
            self.held += 1
            return
        with self._ready:
            if len(self._queue) >= _QUEUE:
                self._queue.popleft()
                self.guard.drop()
            self._queue.append(alert)
            self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._stop:
                    self._ready.wait()
                if self._stop and not self._queue:
                    return
                alert = self._queue.popleft()
            for url in self.urls:
                self._deliver(url, alert)

    def _deliver(self, url: str, alert: Alert) -> None:
        host = urlsplit(url).hostname or ""
        if not _allowed(host, self.allow):  # re-checked at send time (DNS may change)
            self.failed += 1
            _logger.warning("otel-monitoring: webhook %s refused: host no longer allowed", host)
            return
        body = alertmanager_payload(alert, receiver=host)
        delay = self.backoff_s
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                response = self._client.post(url, json=body)
                if response.status_code < 300:
                    self.sent += 1
                    return
                if 300 <= response.status_code < 400 or response.status_code in (
                    400,
                    401,
                    403,
                    404,
                ):
                    break  # a redirect is not followed; a client error will not heal by retrying
            except httpx.HTTPError as exc:
                if attempt == _ATTEMPTS:
                    self.guard.error(f"webhook {host}", exc)
            if attempt < _ATTEMPTS and not self._stop:
                time.sleep(delay)
                delay *= 2
        self.failed += 1

    def close(self, timeout_s: float = 2.0) -> None:
        """Deliver what is queued (up to ``timeout_s``) and stop."""
        with self._ready:
            self._stop = True
            self._ready.notify()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        self._client.close()


class AlertLogEmitter:
    """Listener that emits each alert change as an OTel log record (any backend sees it)."""

    def __init__(self, logger_provider: Any | None = None) -> None:
        from opentelemetry import _logs

        provider = logger_provider or _logs.get_logger_provider()
        self._logger = provider.get_logger("otel_monitoring.alerts")

    def __call__(self, alert: Alert) -> None:
        from opentelemetry._logs import LogRecord, SeverityNumber

        severity = {
            "critical": SeverityNumber.ERROR,
            "warning": SeverityNumber.WARN,
        }.get(alert.severity, SeverityNumber.INFO)
        if alert.state is AlertState.RESOLVED:
            severity = SeverityNumber.INFO
        self._logger.emit(
            LogRecord(
                timestamp=int(alert.updated_s * 1e9),
                severity_number=severity,
                severity_text=severity.name,
                body=f"alert {alert.state.value}: {alert.summary}",
                attributes={
                    "alert.id": alert.id,
                    "alert.rule": alert.rule,
                    "alert.state": alert.state.value,
                    "alert.fingerprint": alert.fingerprint,
                    "alert.value": alert.value,
                    "alert.threshold": alert.threshold,
                    **{f"alert.label.{k}": v for k, v in alert.labels},
                },
            )
        )
