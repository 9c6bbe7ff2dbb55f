"""Pins the public surface: a change here is a change users see."""

import otel_monitoring


def test_public_names() -> None:
    assert sorted(otel_monitoring.__all__) == sorted(
        [
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
    )
    for name in otel_monitoring.__all__:
        assert hasattr(otel_monitoring, name), name


def test_import_does_not_pull_scipy() -> None:
    import subprocess
    import sys

    code = "import sys, otel_monitoring; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
