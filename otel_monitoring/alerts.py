"""Alerts from the built-in thresholds, with a lifecycle and a history.

Built-in rules, evaluated over the last 5 minutes after each collection:

* ``high_latency``: a route's p95 latency above ``latency_threshold_ms`` (default 1000 ms),
  with at least ``min_requests`` requests;
* ``slow_db_query``: a statement summary's slowest execution above ``db_threshold_ms``
  (default 500 ms);
* ``high_error_rate``: the service's error rate above 5 % with at least 20 requests.

An alert is identified by its fingerprint (rule plus labels): a condition that stays true
updates one alert rather than creating many. It resolves by itself when the condition
clears, or by hand with a reason and who did it; a hand-resolved alert does not fire again
until its condition has cleared once (it was acknowledged).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections import deque
from dataclasses import dataclass, replace
from enum import StrEnum

from otel_monitoring.clock import Clock
from otel_monitoring.stats import Stats
from otel_monitoring.types import Window

__all__ = [
    "Alert",
    "AlertEngine",
    "AlertEvent",
    "AlertState",
    "Condition",
    "alert_from_json",
    "alert_to_json",
]

_HISTORY = 1000


class AlertState(StrEnum):
    """Lifecycle states."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A state change: when (Unix seconds), the new state and a note."""

    at_s: float
    state: AlertState
    note: str


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert and its history. ``value`` and ``threshold`` share the rule's unit."""

    id: str
    fingerprint: str
    rule: str
    severity: str
    state: AlertState
    summary: str
    labels: tuple[tuple[str, str], ...]
    value: float
    threshold: float
    started_s: float
    updated_s: float
    resolved_s: float | None = None
    resolved_by: str | None = None
    resolution_reason: str | None = None
    history: tuple[AlertEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class Condition:
    """A rule's finding for one subject at evaluation time."""

    rule: str
    severity: str
    labels: tuple[tuple[str, str], ...]
    value: float
    threshold: float
    summary: str

    @property
    def fingerprint(self) -> str:
        text = self.rule + "|" + "|".join(f"{k}={v}" for k, v in sorted(self.labels))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class AlertEngine:
    """Evaluates the built-in rules and keeps alerts; thread-safe."""

    def __init__(
        self,
        stats: Stats,
        clock: Clock,
        *,
        latency_threshold_ms: float = 1000.0,
        db_threshold_ms: float = 500.0,
        error_rate_pct: float = 5.0,
        min_requests: int = 5,
    ) -> None:
        self.stats = stats
        self.clock = clock
        self.latency_threshold_ms = latency_threshold_ms
        self.db_threshold_ms = db_threshold_ms
        self.error_rate_pct = error_rate_pct
        self.min_requests = min_requests
        self._active: dict[str, Alert] = {}
        self._acknowledged: set[str] = set()
        self._resolved: deque[Alert] = deque(maxlen=_HISTORY)
        self._seq = 0
        self._lock = threading.Lock()

    # -- rules -------------------------------------------------------------------------------
    def conditions(self) -> list[Condition]:
        """What is wrong now, according to the built-in rules."""
        found = []
        for endpoint in self.stats.endpoints(Window.M5):
            p95 = endpoint.latency.p95_ms
            if endpoint.requests >= self.min_requests and p95 and p95 > self.latency_threshold_ms:
                found.append(
                    Condition(
                        rule="high_latency",
                        severity="warning",
                        labels=(("method", endpoint.method), ("route", endpoint.route)),
                        value=p95,
                        threshold=self.latency_threshold_ms,
                        summary=(
                            f"{endpoint.method} {endpoint.route}: p95 latency {p95:.0f} ms over"
                            f" 5 min (threshold {self.latency_threshold_ms:.0f} ms,"
                            f" {endpoint.requests} requests)"
                        ),
                    )
                )
        for statement in self.stats.db_statements(Window.M5):
            worst = statement.max_ms
            if worst is not None and worst > self.db_threshold_ms:
                found.append(
                    Condition(
                        rule="slow_db_query",
                        severity="warning",
                        labels=(("statement", statement.summary), ("system", statement.system)),
                        value=worst,
                        threshold=self.db_threshold_ms,
                        summary=(
                            f"{statement.summary}: slowest execution {worst:.0f} ms over 5 min"
                            f" (threshold {self.db_threshold_ms:.0f} ms)"
                        ),
                    )
                )
        service = self.stats.service(Window.M5)
        if service.requests >= 20 and service.error_rate > self.error_rate_pct:
            found.append(
                Condition(
                    rule="high_error_rate",
                    severity="critical",
                    labels=(("scope", "service"),),
                    value=service.error_rate,
                    threshold=self.error_rate_pct,
                    summary=(
                        f"error rate {service.error_rate:.2f}% over 5 min (threshold"
                        f" {self.error_rate_pct:.0f}%, {service.requests} requests)"
                    ),
                )
            )
        return found

    # -- lifecycle ---------------------------------------------------------------------------
    def evaluate(self) -> None:
        """Apply the current conditions: fire, update or resolve alerts."""
        conditions = {c.fingerprint: c for c in self.conditions()}
        now = self.clock.now_s()
        with self._lock:
            self._acknowledged &= set(conditions)
            for fingerprint, condition in conditions.items():
                current = self._active.get(fingerprint)
                if current is None:
                    if fingerprint in self._acknowledged:
                        continue
                    self._seq += 1
                    self._active[fingerprint] = Alert(
                        id=f"{fingerprint[:8]}-{self._seq}",
                        fingerprint=fingerprint,
                        rule=condition.rule,
                        severity=condition.severity,
                        state=AlertState.FIRING,
                        summary=condition.summary,
                        labels=condition.labels,
                        value=condition.value,
                        threshold=condition.threshold,
                        started_s=now,
                        updated_s=now,
                        history=(AlertEvent(now, AlertState.FIRING, condition.summary),),
                    )
                else:
                    self._active[fingerprint] = replace(
                        current, value=condition.value, summary=condition.summary, updated_s=now
                    )
            for fingerprint in [f for f in self._active if f not in conditions]:
                self._close(fingerprint, now, "auto", "condition cleared")

    def resolve(self, alert_id: str, *, who: str, reason: str) -> Alert | None:
        """Resolve an active alert by hand; ``None`` if no active alert has that id."""
        now = self.clock.now_s()
        with self._lock:
            for fingerprint, alert in self._active.items():
                if alert.id == alert_id:
                    self._acknowledged.add(fingerprint)
                    return self._close(fingerprint, now, who, reason)
        return None

    def _close(self, fingerprint: str, now: float, who: str, reason: str) -> Alert:
        alert = self._active.pop(fingerprint)
        note = f"resolved by {who}: {reason}"
        closed = replace(
            alert,
            state=AlertState.RESOLVED,
            updated_s=now,
            resolved_s=now,
            resolved_by=who,
            resolution_reason=reason,
            history=(*alert.history, AlertEvent(now, AlertState.RESOLVED, note)),
        )
        self._resolved.append(closed)
        return closed

    # -- queries -----------------------------------------------------------------------------
    def active(self) -> list[Alert]:
        """Pending and firing alerts, newest first."""
        with self._lock:
            return sorted(self._active.values(), key=lambda a: a.started_s, reverse=True)

    def resolved(self, limit: int = 100) -> list[Alert]:
        """Resolved alerts, most recently resolved first."""
        with self._lock:
            return list(self._resolved)[::-1][:limit]

    def get(self, alert_id: str) -> Alert | None:
        """An alert by id, active or resolved."""
        with self._lock:
            for alert in (*self._active.values(), *self._resolved):
                if alert.id == alert_id:
                    return alert
        return None

    def clear_resolved_before(self, t_s: float) -> int:
        """Drop resolved alerts older than ``t_s``; returns how many went."""
        with self._lock:
            kept = [a for a in self._resolved if (a.resolved_s or 0) >= t_s]
            removed = len(self._resolved) - len(kept)
            self._resolved.clear()
            self._resolved.extend(kept)
        return removed


def alert_to_json(alert: Alert) -> str:
    """Serialise an alert (for persistence); :func:`alert_from_json` reverses it exactly."""
    return json.dumps(dataclasses.asdict(alert), sort_keys=True)


def alert_from_json(text: str) -> Alert:
    """Rebuild an alert serialised by :func:`alert_to_json`.

    Raises:
        ValueError: the text is not a serialised alert.
    """
    try:
        data = json.loads(text)
        data["state"] = AlertState(data["state"])
        data["labels"] = tuple(tuple(pair) for pair in data["labels"])
        data["history"] = tuple(
            AlertEvent(event["at_s"], AlertState(event["state"]), event["note"])
            for event in data["history"]
        )
        return Alert(**data)
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a serialised alert: {exc}") from None
