"""otel-monitoring: in-process monitoring and analysis for FastAPI services, on OpenTelemetry.

One line in code::

    monitor = otel_monitoring.instrument_app(app, engine=engine)

or none at all: ``opentelemetry-instrument uvicorn shop:app`` with the package installed.
"""

from __future__ import annotations

from otel_monitoring.cache import record_cache
from otel_monitoring.clock import Clock, SystemClock
from otel_monitoring.config import Settings
from otel_monitoring.errors import ConfigError, MonitoringError
from otel_monitoring.instrument import instrument_app
from otel_monitoring.monitor import Monitor
from otel_monitoring.stats import EndpointSort, Stats
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
