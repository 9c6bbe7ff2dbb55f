"""Alert rules: thresholds with pending and keep-firing periods and hysteresis, SLO burn
rates, and anomalies from the streaming detector.

Rules come from Python (``instrument_app(app, rules=[...])``) or from a TOML file named by
``OTEL_MONITORING_RULES_FILE``; a bad rule fails at start with its name and the problem.
Without configured rules the defaults apply: p95 latency above 1000 ms on a route, a DB
statement above 500 ms, and an error rate above 5 % with at least 20 requests.

Example file::

    [[threshold]]
    name = "checkout-slow"
    statistic = "latency_p95"      # ms
    above = 800.0
    recover_below = 600.0          # hysteresis
    for = "2m"                     # pending period
    keep_firing_for = "5m"
    route = "/checkout"
    severity = "critical"

    [[slo]]
    name = "availability"
    objective = 0.999              # 99.9 % over 30 days
    kind = "availability"

    [[anomaly]]
    name = "latency-anomaly"
    statistic = "latency_p95"
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from otel_monitoring.config import parse_duration_s
from otel_monitoring.errors import ConfigError
from otel_monitoring.types import Window

__all__ = [
    "AnomalyRule",
    "Rule",
    "Scope",
    "SloRule",
    "Statistic",
    "ThresholdRule",
    "default_rules",
    "load_rules_file",
    "parse_rules",
]


class Statistic(StrEnum):
    """What a threshold rule watches, and its unit."""

    LATENCY_P50 = "latency_p50"
    LATENCY_P95 = "latency_p95"
    LATENCY_P99 = "latency_p99"
    LATENCY_AVG = "latency_avg"
    ERROR_RATE = "error_rate"
    THROUGHPUT = "throughput"
    REQUESTS = "requests"
    DB_MAX = "db_max"
    DB_P95 = "db_p95"

    @property
    def unit(self) -> str:
        """``ms``, ``%``, ``rpm`` or ``requests``."""
        return {
            Statistic.ERROR_RATE: "%",
            Statistic.THROUGHPUT: "rpm",
            Statistic.REQUESTS: "requests",
        }.get(self, "ms")

    @property
    def is_db(self) -> bool:
        return self in (Statistic.DB_MAX, Statistic.DB_P95)


class Scope(StrEnum):
    """Per route (one alert per route and method), per DB statement, or service-wide."""

    ROUTE = "route"
    STATEMENT = "statement"
    SERVICE = "service"


def _check_name(name: str) -> None:
    if not name or len(name) > 100:
        raise ValueError("a rule needs a name of 1 to 100 characters")


@dataclass(frozen=True, slots=True)
class ThresholdRule:
    """Fire when ``statistic`` is beyond ``above`` (or under ``below``) over ``window``.

    The alert is pending for ``for_s`` seconds before it fires, resolves only once the value
    is back past ``recover`` (hysteresis; default: the threshold itself), and keeps firing
    ``keep_firing_for_s`` seconds after recovery, so a noisy value does not flap.
    """

    name: str
    statistic: Statistic
    threshold: float
    above: bool = True
    recover: float | None = None
    for_s: float = 0.0
    keep_firing_for_s: float = 0.0
    scope: Scope = Scope.ROUTE
    route: str | None = None
    method: str | None = None
    window: Window = Window.M5
    min_requests: int = 5
    severity: str = "warning"

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.statistic.is_db and self.scope is Scope.ROUTE:
            object.__setattr__(self, "scope", Scope.STATEMENT)
        if self.scope is Scope.STATEMENT and not self.statistic.is_db:
            raise ValueError(f"scope 'statement' needs a db statistic, not {self.statistic.value}")
        recover = self.threshold if self.recover is None else self.recover
        if not (math.isfinite(self.threshold) and math.isfinite(recover)):
            raise ValueError("the threshold and recovery values must be finite numbers")
        if (self.above and recover > self.threshold) or (
            not self.above and recover < self.threshold
        ):
            raise ValueError("the recovery value must be on the healthy side of the threshold")
        if self.for_s < 0 or self.keep_firing_for_s < 0 or self.min_requests < 0:
            raise ValueError("for, keep_firing_for and min_requests must be >= 0")
        if self.severity not in ("info", "warning", "critical"):
            raise ValueError("severity must be info, warning or critical")

    @property
    def recovery(self) -> float:
        """The value past which the alert resolves."""
        return self.threshold if self.recover is None else self.recover


@dataclass(frozen=True, slots=True)
class BurnWindow:
    """Fire when the burn rate exceeds ``factor`` over both ``long_s`` and ``short_s``."""

    long_s: float
    short_s: float
    factor: float
    severity: str


#: The multi-window, multi-burn-rate pair for a 30-day objective (Google SRE workbook).
DEFAULT_BURN_WINDOWS = (
    BurnWindow(3600.0, 300.0, 14.4, "critical"),
    BurnWindow(6 * 3600.0, 1800.0, 6.0, "warning"),
)


@dataclass(frozen=True, slots=True)
class SloRule:
    """An objective over ``period_days``: availability (non-error requests) or latency
    (requests faster than ``latency_threshold_ms``), alerting on error-budget burn rates.

    ``min_requests`` guards low traffic: a window with fewer requests never fires.
    """

    name: str
    objective: float
    kind: str = "availability"
    latency_threshold_ms: float = 1000.0
    route: str | None = None
    method: str | None = None
    period_days: float = 30.0
    min_requests: int = 50
    windows: tuple[BurnWindow, ...] = DEFAULT_BURN_WINDOWS

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not 0.5 <= self.objective < 1.0:
            raise ValueError("objective must be in [0.5, 1), e.g. 0.999")
        if self.kind not in ("availability", "latency"):
            raise ValueError("kind must be availability or latency")
        if (
            not 0 < self.latency_threshold_ms < math.inf
            or not 0 < self.period_days < math.inf
            or self.min_requests < 1
        ):
            raise ValueError(
                "latency_threshold_ms and period_days must be positive and finite,"
                " min_requests >= 1"
            )

    @property
    def error_budget(self) -> float:
        """The allowed bad fraction, ``1 - objective``."""
        return 1.0 - self.objective


@dataclass(frozen=True, slots=True)
class AnomalyRule:
    """Fire when the streaming detector flags the statistic's newest point; resolve after
    ``quiet_points`` points without an alarm.

    ``resolution``: the chart watched, ``finest`` (one point per collection, 10 s by default:
    quickest, noisiest) or ``minute`` (1-min points: about 1 minute later, and on pure noise
    several times fewer false alarms at medium and high; docs/alerts.md).
    """

    name: str
    statistic: Statistic = Statistic.LATENCY_P95
    route: str | None = None
    method: str | None = None
    sensitivity: str = "medium"
    quiet_points: int = 30
    severity: str = "warning"
    resolution: str = "finest"

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.statistic.is_db or self.statistic is Statistic.REQUESTS:
            raise ValueError(f"anomaly rules watch HTTP charts, not {self.statistic.value}")
        if self.sensitivity not in ("low", "medium", "high"):
            raise ValueError("sensitivity must be low, medium or high")
        if self.quiet_points < 1:
            raise ValueError("quiet_points must be >= 1")
        if self.resolution not in ("finest", "minute"):
            raise ValueError("resolution must be finest or minute")


Rule = ThresholdRule | SloRule | AnomalyRule


def default_rules(
    latency_threshold_ms: float = 1000.0, db_threshold_ms: float = 500.0
) -> tuple[Rule, ...]:
    """The built-in rules (see the module docstring)."""
    return (
        ThresholdRule("high_latency", Statistic.LATENCY_P95, latency_threshold_ms),
        ThresholdRule("slow_db_query", Statistic.DB_MAX, db_threshold_ms, min_requests=1),
        ThresholdRule(
            "high_error_rate",
            Statistic.ERROR_RATE,
            5.0,
            scope=Scope.SERVICE,
            min_requests=20,
            severity="critical",
        ),
    )


_THRESHOLD_KEYS = {
    "name", "statistic", "above", "below", "recover_below", "recover_above", "for",
    "keep_firing_for", "scope", "route", "method", "window", "min_requests", "severity",
}  # fmt: skip
_SLO_KEYS = {
    "name", "objective", "kind", "latency_threshold_ms", "route", "method", "period_days",
    "min_requests",
}  # fmt: skip
_ANOMALY_KEYS = {
    "name", "statistic", "route", "method", "sensitivity", "quiet_points", "severity",
    "resolution",
}  # fmt: skip


def _threshold(spec: Mapping[str, Any]) -> ThresholdRule:
    if ("above" in spec) == ("below" in spec):
        raise ValueError("give exactly one of 'above' or 'below'")
    above = "above" in spec
    recover = spec.get("recover_below" if above else "recover_above")
    return ThresholdRule(
        name=str(spec["name"]),
        statistic=Statistic(spec["statistic"]),
        threshold=float(spec["above" if above else "below"]),
        above=above,
        recover=None if recover is None else float(recover),
        for_s=parse_duration_s(str(spec.get("for", "0s"))),
        keep_firing_for_s=parse_duration_s(str(spec.get("keep_firing_for", "0s"))),
        scope=Scope(spec.get("scope", "route")),
        route=spec.get("route"),
        method=spec.get("method"),
        window=Window(spec.get("window", "5m")),
        min_requests=int(spec.get("min_requests", 5)),
        severity=str(spec.get("severity", "warning")),
    )


def parse_rules(document: Mapping[str, Any]) -> tuple[Rule, ...]:
    """Rules from a parsed TOML document with ``threshold``, ``slo`` and ``anomaly`` tables.

    Raises:
        ConfigError: a rule is invalid; the message names the rule and the problem.
    """
    unknown = set(document) - {"threshold", "slo", "anomaly"}
    if unknown:
        raise ConfigError(f"unknown rule kinds {sorted(unknown)}: use threshold, slo or anomaly")
    rules: list[Rule] = []
    names: set[str] = set()
    for kind, allowed in (
        ("threshold", _THRESHOLD_KEYS),
        ("slo", _SLO_KEYS),
        ("anomaly", _ANOMALY_KEYS),
    ):
        specs = document.get(kind, [])
        if not isinstance(specs, list):
            raise ConfigError(f"'{kind}' must be an array of tables ([[{kind}]])")
        for position, spec in enumerate(specs, 1):
            name = spec.get("name", f"{kind} #{position}") if isinstance(spec, dict) else kind
            try:
                if not isinstance(spec, dict):
                    raise ValueError("must be a table")
                extra = set(spec) - allowed
                if extra:
                    raise ValueError(f"unknown keys {sorted(extra)}")
                if "name" not in spec:
                    raise ValueError("missing 'name'")
                rule: Rule
                if kind == "threshold":
                    rule = _threshold(spec)
                elif kind == "slo":
                    rule = SloRule(**{k: v for k, v in spec.items()})
                else:
                    fields: dict[str, Any] = dict(spec)
                    if "statistic" in fields:
                        fields["statistic"] = Statistic(fields["statistic"])
                    rule = AnomalyRule(**fields)
            except (ValueError, TypeError, KeyError) as exc:
                raise ConfigError(f"invalid {kind} rule {name!r}: {exc}") from None
            if rule.name in names:
                raise ConfigError(f"duplicate rule name {rule.name!r}")
            names.add(rule.name)
            rules.append(rule)
    return tuple(rules)


def load_rules_file(path: str | Path) -> tuple[Rule, ...]:
    """Rules from a TOML file (see the module docstring).

    Raises:
        ConfigError: the file is missing, not TOML, or holds an invalid rule.
    """
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"OTEL_MONITORING_RULES_FILE {str(path)!r} is not UTF-8 text (byte {exc.start}):"
            " save it as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read OTEL_MONITORING_RULES_FILE {str(path)!r}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"OTEL_MONITORING_RULES_FILE {str(path)!r} is not TOML: {exc}") from None
    return parse_rules(document)


def check_rules(rules: Sequence[Rule]) -> tuple[Rule, ...]:
    """Validate a Python list of rules (types and unique names)."""
    names: set[str] = set()
    for rule in rules:
        if not isinstance(rule, ThresholdRule | SloRule | AnomalyRule):
            raise ConfigError(f"not a rule: {rule!r}")
        if rule.name in names:
            raise ConfigError(f"duplicate rule name {rule.name!r}")
        names.add(rule.name)
    return tuple(rules)
