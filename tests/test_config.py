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
