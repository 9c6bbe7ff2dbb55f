"""Bad settings: one clear line naming the variable, at start, never later as a 500."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from otel_monitoring.alerting.rules import load_rules_file
from otel_monitoring.api.side_server import exposure_warning
from otel_monitoring.config import Settings
from otel_monitoring.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("OTEL_MONITORING_RATE_LIMITS", "health=0/minute", "allows no request"),
        ("OTEL_MONITORING_RATE_LIMITS", "cleanup=0/second", "allows no request"),
        ("OTEL_MONITORING_LATENCY_THRESHOLD_MS", "inf", "finite"),
        ("OTEL_MONITORING_LATENCY_THRESHOLD_MS", "nan", "finite"),
        ("OTEL_MONITORING_DB_THRESHOLD_MS", "Infinity", "finite"),
        ("OTEL_MONITORING_STORE", "sqlite:////no/such/directory/m.db", "does not exist"),
        ("OTEL_MONITORING_API_KEY", "", "set but empty"),
        ("OTEL_MONITORING_API_KEY", "   ", "set but empty"),
    ],
)
def test_a_bad_setting_is_refused_in_one_line_naming_it(name: str, value: str, reason: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({name: value})
    message = str(raised.value)
    assert name in message and reason in message
    assert "\n" not in message


def test_a_store_in_a_missing_directory_is_refused_as_an_argument_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"OTEL_MONITORING_STORE.*does not exist"):
        Settings(store_url=f"sqlite:///{tmp_path}/missing/m.db")
    assert Settings(store_url=f"sqlite:///{tmp_path}/m.db").store_url


def test_a_rules_file_that_is_not_utf8_is_refused_naming_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(b'[[threshold]]\nname = "caf\xe9"\nstatistic = "latency_p95"\nabove = 9\n')
    with pytest.raises(ConfigError, match=r"OTEL_MONITORING_RULES_FILE .* is not UTF-8") as raised:
        load_rules_file(path)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize(
    "rule",
    [
        'above = nan\nstatistic = "latency_p95"',
        'above = inf\nstatistic = "latency_p95"',
        'below = -inf\nstatistic = "throughput"',
        'above = 10.0\nrecover_below = nan\nstatistic = "latency_p95"',
    ],
)
def test_non_finite_thresholds_are_refused(tmp_path: Path, rule: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(f'[[threshold]]\nname = "odd"\n{rule}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"invalid threshold rule 'odd'.*finite"):
        load_rules_file(path)


def test_a_non_finite_slo_latency_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        '[[slo]]\nname = "fast"\nobjective = 0.99\nkind = "latency"\nlatency_threshold_ms = nan\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"invalid slo rule 'fast'.*finite"):
        load_rules_file(path)


def test_exposing_the_side_port_without_a_key_warns_naming_the_variable() -> None:
    exposed = exposure_warning(Settings(host="0.0.0.0"))
    assert exposed is not None and "OTEL_MONITORING_HOST=0.0.0.0" in exposed
    assert "OTEL_MONITORING_API_KEY" in exposed
    assert exposure_warning(Settings(host="::")) is not None
    assert exposure_warning(Settings(host="127.0.0.1")) is None
    assert exposure_warning(Settings(host="::1")) is None
    assert exposure_warning(Settings(host="0.0.0.0", api_keys=(("s3cret-key", "admin"),))) is None


SHOP = "otel_monitoring.demo.shop:app"


def test_a_zero_rate_limit_stops_the_start_naming_the_variable(
    tmp_path: Path, port: int, shop_env: dict[str, str], uvicorn_cmd: Any
) -> None:
    env = {**os.environ, **shop_env, "SHOP_INSTRUMENT": "1"}
    env["OTEL_MONITORING_RATE_LIMITS"] = "health=0/minute"
    done = subprocess.run(
        uvicorn_cmd(SHOP, port), env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "OTEL_MONITORING_RATE_LIMITS" in last and "allows no request" in last, last


def test_a_prefix_over_the_apps_routes_is_named_in_a_warning(
    start_server: Callable[..., Any], port: int, shop_env: dict[str, str], uvicorn_cmd: Any
) -> None:
    env = {**shop_env, "SHOP_INSTRUMENT": "1", "OTEL_MONITORING_PREFIX": "/items"}
    shop = start_server(uvicorn_cmd(SHOP, port), env, port)
    assert httpx.get(shop.url + "/items/1", timeout=10).status_code == 200
    warnings = [line for line in shop.output().splitlines() if "OTEL_MONITORING_PREFIX" in line]
    assert len(warnings) == 1, shop.output()
    assert "/items/{item_id}" in warnings[0] and "/items/health" not in warnings[0]
