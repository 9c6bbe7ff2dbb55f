"""``OTEL_METRIC_EXPORT_INTERVAL`` as the package's interval (when ``OTEL_MONITORING_INTERVAL``
is unset): milliseconds, any positive value the SDK accepts.

The package's own setting takes 50 ms to 1 h (:data:`MIN_INTERVAL_S`, :data:`MAX_INTERVAL_S`).
The standard variable is the team's, set for its exporters: a value beyond those bounds (a
2-h export interval, a 10-ms one, ``inf`` for exports only on flush) turned the monitoring
off, with an error naming ``OTEL_MONITORING_INTERVAL``, which the team had not set. It is now
taken at the nearest bound, said in one warning line. Only the package's reader uses it:
collections into the statistics happen every finest bucket (10 s) or sooner whatever it is,
and beside ``opentelemetry-distro`` the distro's reader exports at the variable's own value.
"""

from __future__ import annotations

import logging
import math

from otel_monitoring.errors import ConfigError

__all__ = ["MAX_INTERVAL_S", "MIN_INTERVAL_S", "VARIABLE", "interval_from_otel"]

VARIABLE = "OTEL_METRIC_EXPORT_INTERVAL"
#: Bounds of the package's interval (``OTEL_MONITORING_INTERVAL``), seconds.
MIN_INTERVAL_S = 0.05
MAX_INTERVAL_S = 3600.0

_logger = logging.getLogger("otel_monitoring")


def _shown(seconds: float) -> str:
    """``7200.0`` -> ``"2h"``, ``0.01`` -> ``"10ms"``: the largest whole unit."""
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size:
            return f"{seconds / size:g}{unit}"
    return f"{seconds * 1000:g}ms"


def interval_from_otel(raw: str) -> float:
    """The package's interval in seconds from ``OTEL_METRIC_EXPORT_INTERVAL=raw`` (ms),
    within 50 ms..1 h: a value beyond is taken at the nearest bound, with one warning line.

    Raises:
        ConfigError: ``raw`` is not a number, or not a positive one (the SDK refuses those
            too); the message names the variable.
    """
    try:
        ms = float(raw.strip())
    except ValueError:
        raise ConfigError(f"invalid {VARIABLE}={raw!r}: {raw!r} is not a number") from None
    if math.isnan(ms) or ms <= 0:
        raise ConfigError(f"invalid {VARIABLE}={raw!r}: must be a positive number of milliseconds")
    seconds = ms / 1000.0
    bound = min(max(seconds, MIN_INTERVAL_S), MAX_INTERVAL_S)
    if bound != seconds:
        shown = "inf" if math.isinf(seconds) else _shown(seconds)
        _logger.warning(
            "otel-monitoring: %s=%s (%s) is %s than %s, the %s interval the package's reader"
            " takes: it uses %s (statistics are collected every finest bucket or sooner"
            " regardless; beside opentelemetry-distro the distro's reader exports %s, as"
            " set)",
            VARIABLE,
            raw.strip(),
            shown,
            "longer" if seconds > bound else "shorter",
            _shown(bound),
            "longest" if seconds > bound else "shortest",
            _shown(bound),
            "only when flushed" if math.isinf(seconds) else f"every {shown}",
        )
    return bound
