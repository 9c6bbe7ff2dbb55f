"""otel-monitoring: in-process monitoring and analysis for FastAPI services, on OpenTelemetry.

One line in code::

    monitor = otel_monitoring.instrument_app(app, engine=engine)

or none at all: ``opentelemetry-instrument uvicorn shop:app`` with the package installed.

Importing the package is cheap: each public name below loads its module (FastAPI, SQLAlchemy,
the OpenTelemetry SDK, the monitor) on first use (PEP 562 module ``__getattr__``), so the CLI and
tools that only need a part of the package do not pay for the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analyzers._lazy import lazy_names

if TYPE_CHECKING:
    from otel_monitoring.capture.cache import record_cache
    from otel_monitoring.clock import Clock, SystemClock
    from otel_monitoring.config import Settings
    from otel_monitoring.errors import ConfigError, MonitoringError
    from otel_monitoring.instrument import instrument_app
    from otel_monitoring.monitor import Monitor
    from otel_monitoring.stats.local import EndpointSort, Stats
    from otel_monitoring.types import (
        CacheStats,
        DbStatementStats,
        EndpointStats,
        ErrorSample,
        Exemplar,
        ExternalStats,
        HealthState,
        HealthStatus,
        LatencyStats,
        MetricStats,
        NPlusOnePattern,
        SelfTelemetry,
        ServiceStats,
        Window,
    )

__version__ = "0.1.0"

__all__ = [
    "CacheStats",
    "Clock",
    "ConfigError",
    "DbStatementStats",
    "EndpointSort",
    "EndpointStats",
    "ErrorSample",
    "Exemplar",
    "ExternalStats",
    "HealthState",
    "HealthStatus",
    "LatencyStats",
    "MetricStats",
    "Monitor",
    "MonitoringError",
    "NPlusOnePattern",
    "SelfTelemetry",
    "ServiceStats",
    "Settings",
    "Stats",
    "SystemClock",
    "Window",
    "__version__",
    "instrument_app",
    "record_cache",
]

# public name -> submodule that defines it (loaded on first attribute access)
_LAZY: dict[str, str] = {
    "record_cache": "capture.cache",
    "Clock": "clock",
    "SystemClock": "clock",
    "Settings": "config",
    "ConfigError": "errors",
    "MonitoringError": "errors",
    "instrument_app": "instrument",
    "Monitor": "monitor",
    "EndpointSort": "stats.local",
    "Stats": "stats.local",
    **{
        name: "types"
        for name in (
            "CacheStats",
            "DbStatementStats",
            "EndpointStats",
            "ErrorSample",
            "Exemplar",
            "ExternalStats",
            "HealthState",
            "HealthStatus",
            "LatencyStats",
            "MetricStats",
            "NPlusOnePattern",
            "SelfTelemetry",
            "ServiceStats",
            "Window",
        )
    },
}


# Each public name loads its module on first access (PEP 562).
__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)
