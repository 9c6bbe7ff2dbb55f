"""Alerts as pure data: states, events, alerts, findings, and their JSON form.

Nothing here computes or imports beyond the standard library, so the store (which persists
alerts) and the API (which renders them) can use it without the engine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Alert",
    "AlertEvent",
    "AlertState",
    "Finding",
    "alert_from_json",
    "alert_to_json",
]


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
class Finding:
    """A rule's verdict on one subject now.

    ``breach``: the condition holds. ``recovered``: the value is back past the recovery
    value. Neither: the value sits in the hysteresis band and the state is kept.
    """

    rule: str
    severity: str
    labels: tuple[tuple[str, str], ...]
    value: float
    threshold: float
    summary: str
    breach: bool
    recovered: bool
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0

    @property
    def fingerprint(self) -> str:
        text = self.rule + "|" + "|".join(f"{k}={v}" for k, v in sorted(self.labels))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


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
