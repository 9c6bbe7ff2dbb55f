import pytest

from otel_monitoring.config import ENV_VARS, Settings, parse_duration_s
from otel_monitoring.errors import ConfigError


def test_defaults_and_precedence() -> None:
    env = {"OTEL_MONITORING_PORT": "9999", "OTEL_MONITORING_INTERVAL": "5s"}
    settings = Settings.from_env(env, port=9001)
    assert settings.port == 9001  # argument beats env
    assert settings.interval_s == 5.0  # env beats default
    assert settings.retention_s == 86400.0  # default


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OTEL_MONITORING_PORT", "http"),
        ("OTEL_MONITORING_PORT", "70000"),
        ("OTEL_MONITORING_INTERVAL", "soon"),
        ("OTEL_MONITORING_SERVER_TIMING", "maybe"),
        ("OTEL_MONITORING_PREFIX", "monitoring/"),
        ("OTEL_MONITORING_HOST", "not a host"),
        ("OTEL_MONITORING_TYPO", "1"),
        ("OTEL_MONITORING_TIMEZONE", "Mars/Olympus"),
        ("OTEL_MONITORING_TIMEZONE", "../../etc/passwd"),
    ],
)
def test_bad_env_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_unknown_argument_is_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.from_env({}, no_such_thing=1)


def test_durations() -> None:
    assert parse_duration_s("500ms") == 0.5
    assert parse_duration_s("24h") == 86400
    assert parse_duration_s("2") == 2
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration_s("-1s")


def test_env_var_names_are_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    missing = [name for name in ENV_VARS if name not in doc]
    assert not missing


def test_standard_metric_export_interval_is_honoured() -> None:
    assert Settings.from_env({"OTEL_METRIC_EXPORT_INTERVAL": "2500"}).interval_s == 2.5
    both = {"OTEL_METRIC_EXPORT_INTERVAL": "2500", "OTEL_MONITORING_INTERVAL": "1s"}
    assert Settings.from_env(both).interval_s == 1.0  # ours wins when both are set
    with pytest.raises(ConfigError, match="OTEL_METRIC_EXPORT_INTERVAL='soon'"):
        Settings.from_env({"OTEL_METRIC_EXPORT_INTERVAL": "soon"})


@pytest.mark.parametrize(
    ("otel_ms", "interval_s", "line"),
    [
        ("7200000", 3600.0, "OTEL_METRIC_EXPORT_INTERVAL=7200000 (2h) is longer than 1h"),
        ("inf", 3600.0, "OTEL_METRIC_EXPORT_INTERVAL=inf (inf) is longer than 1h"),
        ("10", 0.05, "OTEL_METRIC_EXPORT_INTERVAL=10 (10ms) is shorter than 50ms"),
        ("3600000", 3600.0, None),
        ("50", 0.05, None),
    ],
)
def test_standard_metric_export_interval_beyond_ours_takes_the_nearest_bound(
    otel_ms: str, interval_s: float, line: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK takes any positive interval; the package's reader the nearest of 50ms..1h,
    said in one line (it refused to start, naming OTEL_MONITORING_INTERVAL)."""
    with caplog.at_level("WARNING", logger="otel_monitoring"):
        assert Settings.from_env({"OTEL_METRIC_EXPORT_INTERVAL": otel_ms}).interval_s == interval_s
    said = [
        r.getMessage() for r in caplog.records if "OTEL_METRIC_EXPORT_INTERVAL" in r.getMessage()
    ]
    assert len(said) == (line is not None) and (line is None or line in said[0]), said


@pytest.mark.parametrize("otel_ms", ["0", "-5", "nan"])
def test_standard_metric_export_interval_must_be_positive(otel_ms: str) -> None:
    with pytest.raises(ConfigError, match=f"OTEL_METRIC_EXPORT_INTERVAL='{otel_ms}'"):
        Settings.from_env({"OTEL_METRIC_EXPORT_INTERVAL": otel_ms})


def test_a_mistyped_variable_names_the_closest_one() -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"OTEL_MONITORING_API_KEYS": "x"})
    assert str(raised.value) == (
        "unknown environment variable OTEL_MONITORING_API_KEYS; did you mean"
        " OTEL_MONITORING_API_KEY?"
    )
