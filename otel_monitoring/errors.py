"""Exceptions raised at set-up time. After set-up nothing raises into the host app."""

from __future__ import annotations

__all__ = ["ConfigError", "MonitoringError"]


class MonitoringError(Exception):
    """Base class of the errors this package raises on purpose."""


class ConfigError(MonitoringError, ValueError):
    """A setting is invalid. The message names the setting (env var or argument) and the value."""
