"""Old import path, kept working: alert rules are :mod:`otel_monitoring.alerting.rules`."""

from otel_monitoring.alerting.rules import (
    AnomalyRule,
    Rule,
    Scope,
    SloRule,
    Statistic,
    ThresholdRule,
    default_rules,
    load_rules_file,
    parse_rules,
)

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
