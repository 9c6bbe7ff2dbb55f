"""Alert lifecycle: pending -> firing -> resolved, with history, hysteresis and flapping.

:class:`AlertEngine` evaluates the rules of :mod:`otel_monitoring.alerting.rules` after each
collection (see :mod:`otel_monitoring.alerting.evaluate` for how each rule turns statistics into
findings). An alert is identified by its fingerprint (rule plus labels), so a condition that
stays true updates one alert rather than creating many. It is pending for the rule's ``for``
period, then fires; it resolves by itself once the value is back past the recovery value and
the keep-firing period has passed, or by hand with a reason and who did it. A hand-resolved
alert does not fire again until its condition has cleared once (it was acknowledged). An
alert that fires and resolves 3 times within an hour is marked flapping, and its
notifications are held until it settles. Every state change goes to the listeners
(notifications, OTel log records, persistence); a failing listener never stops evaluation.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from otel_monitoring.alerting.model import Alert, AlertEvent, AlertState, Finding
from otel_monitoring.clock import Clock
from otel_monitoring.self_telemetry import Guard

__all__ = ["AlertEngine", "Listener"]

_HISTORY = 1000
_FLAP_WINDOW_S = 3600.0
_FLAP_TRANSITIONS = 6


@dataclass(slots=True)
class _Track:
    alert: Alert | None = None
    last_breach_s: float = 0.0
    transitions: deque[float] = dataclasses.field(default_factory=deque)
    flapping: bool = False


Listener = Callable[[Alert], None]


class AlertEngine:
    """Keeps alerts; ``evaluate`` applies the findings of ``source``. Thread-safe."""

    def __init__(
        self,
        source: Callable[[], Sequence[Finding]],
        clock: Clock,
        *,
        guard: Guard | None = None,
        listeners: Sequence[Listener] = (),
    ) -> None:
        self.source = source
        self.clock = clock
        self.guard = guard or Guard()
        self.listeners: list[Listener] = list(listeners)
        self._tracks: dict[str, _Track] = {}
        self._acknowledged: set[str] = set()
        self._resolved: deque[Alert] = deque(maxlen=_HISTORY)
        self._seq = 0
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------
    def evaluate(self) -> None:
        """Apply the current findings: pend, fire, update or resolve alerts."""
        findings = {f.fingerprint: f for f in self.source()}
        now = self.clock.now_s()
        changed: list[Alert] = []
        with self._lock:
            for fingerprint, finding in findings.items():
                track = self._tracks.setdefault(fingerprint, _Track())
                if finding.breach:
                    changed.extend(self._on_breach(fingerprint, track, finding, now))
                elif finding.recovered:
                    changed.extend(self._on_recovery(fingerprint, track, finding, now))
                elif track.alert is not None:  # hysteresis band: keep the state
                    track.alert = replace(track.alert, value=finding.value, updated_s=now)
            for fingerprint, track in list(self._tracks.items()):
                if fingerprint not in findings:  # no data any more: the condition cleared
                    self._acknowledged.discard(fingerprint)
                    if track.alert is not None:
                        changed.extend(self._close(fingerprint, track, now, "auto", "no data"))
                    elif not track.transitions:
                        del self._tracks[fingerprint]
        self._notify(changed)

    def _on_breach(self, fingerprint: str, track: _Track, f: Finding, now: float) -> list[Alert]:
        track.last_breach_s = now
        alert = track.alert
        if alert is None:
            if fingerprint in self._acknowledged:
                return []
            self._seq += 1
            state = AlertState.FIRING if f.for_s <= 0 else AlertState.PENDING
            track.alert = Alert(
                id=f"{fingerprint[:8]}-{self._seq}",
                fingerprint=fingerprint,
                rule=f.rule,
                severity=f.severity,
                state=state,
                summary=f.summary,
                labels=f.labels,
                value=f.value,
                threshold=f.threshold,
                started_s=now,
                updated_s=now,
                history=(AlertEvent(now, state, f.summary),),
            )
            if state is AlertState.FIRING:
                self._transition(track, now)
            return [track.alert]
        if alert.state is AlertState.PENDING and now - alert.started_s >= f.for_s:
            track.alert = replace(
                alert,
                state=AlertState.FIRING,
                value=f.value,
                summary=f.summary,
                updated_s=now,
                history=(*alert.history, AlertEvent(now, AlertState.FIRING, f.summary)),
            )
            self._transition(track, now)
            return [track.alert]
        track.alert = replace(alert, value=f.value, summary=f.summary, updated_s=now)
        return []

    def _on_recovery(self, fingerprint: str, track: _Track, f: Finding, now: float) -> list[Alert]:
        self._acknowledged.discard(fingerprint)
        alert = track.alert
        if alert is None:
            return []
        if alert.state is AlertState.PENDING:  # cleared before it fired: never notified
            track.alert = None
            return []
        if now - track.last_breach_s < f.keep_firing_for_s:
            track.alert = replace(alert, value=f.value, updated_s=now)
            return []
        return self._close(fingerprint, track, now, "auto", "condition cleared")

    def _transition(self, track: _Track, now: float) -> None:
        track.transitions.append(now)
        while track.transitions and now - track.transitions[0] > _FLAP_WINDOW_S:
            track.transitions.popleft()
        track.flapping = len(track.transitions) >= _FLAP_TRANSITIONS

    def resolve(self, alert_id: str, *, who: str, reason: str) -> Alert | None:
        """Resolve an active alert by hand; ``None`` if no active alert has that id."""
        now = self.clock.now_s()
        with self._lock:
            for fingerprint, track in self._tracks.items():
                if track.alert is not None and track.alert.id == alert_id:
                    self._acknowledged.add(fingerprint)
                    (closed,) = self._close(fingerprint, track, now, who, reason)
                    break
            else:
                return None
        self._notify([closed])
        return closed

    def _close(
        self, fingerprint: str, track: _Track, now: float, who: str, reason: str
    ) -> list[Alert]:
        alert = track.alert
        assert alert is not None
        track.alert = None
        self._transition(track, now)
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
        return [closed]

    def _notify(self, changed: list[Alert]) -> None:
        for alert in changed:
            for listener in self.listeners:
                try:
                    listener(alert)
                except Exception as exc:  # a listener must not stop evaluation
                    self.guard.error("alert listener", exc)

    def is_flapping(self, fingerprint: str) -> bool:
        """Whether the alert with this fingerprint fired and resolved 3 times in an hour."""
        with self._lock:
            track = self._tracks.get(fingerprint)
            return bool(track and track.flapping)

    def restore(self, alerts: Sequence[Alert]) -> None:
        """Load alerts kept by a persistent store (after a restart)."""
        with self._lock:
            for alert in sorted(alerts, key=lambda a: a.updated_s):
                if alert.state is AlertState.RESOLVED:
                    self._resolved.append(alert)
                else:
                    self._tracks.setdefault(alert.fingerprint, _Track()).alert = alert
                self._seq = max(self._seq, _sequence_of(alert.id))

    def apply_resolutions(self, stored: Sequence[Alert]) -> None:
        """Apply hand resolutions made by other workers (their webhooks already went out)."""
        resolved = {a.id: a for a in stored if a.state is AlertState.RESOLVED}
        with self._lock:
            for fingerprint, track in self._tracks.items():
                alert = track.alert
                if alert is None or alert.id not in resolved:
                    continue
                done = resolved[alert.id]
                if done.resolved_by != "auto":
                    self._acknowledged.add(fingerprint)
                track.alert = None
                self._transition(track, done.resolved_s or self.clock.now_s())
                self._resolved.append(done)

    def mirror(self, stored: Sequence[Alert]) -> None:
        """Show the alerts another worker evaluates (this worker does not hold the lease)."""
        with self._lock:
            self._tracks = {}
            self._resolved.clear()
            for alert in sorted(stored, key=lambda a: a.updated_s):
                if alert.state is AlertState.RESOLVED:
                    self._resolved.append(alert)
                else:
                    self._tracks[alert.fingerprint] = _Track(alert=alert)
                self._seq = max(self._seq, _sequence_of(alert.id))

    # -- queries -----------------------------------------------------------------------------
    def active(self) -> list[Alert]:
        """Pending and firing alerts, newest first."""
        with self._lock:
            found = [t.alert for t in self._tracks.values() if t.alert is not None]
        return sorted(found, key=lambda a: a.started_s, reverse=True)

    def resolved(self, limit: int = 100) -> list[Alert]:
        """Resolved alerts, most recently resolved first."""
        with self._lock:
            return list(self._resolved)[::-1][:limit]

    def get(self, alert_id: str) -> Alert | None:
        """An alert by id, active or resolved."""
        for alert in (*self.active(), *self.resolved(_HISTORY)):
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


def _sequence_of(alert_id: str) -> int:
    tail = alert_id.rpartition("-")[2]
    return int(tail) if tail.isdigit() else 0
