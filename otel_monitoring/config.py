"""Settings: argument > ``OTEL_MONITORING_*`` environment variable > default.

Every setting is validated when :meth:`Settings.from_env` runs, so a bad value fails at start
with a :class:`~otel_monitoring.errors.ConfigError` naming the variable. The variables are
documented in ``docs/configuration.md``; :data:`ENV_VARS` is the single list of their names.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from otel_monitoring.errors import ConfigError
from otel_monitoring.export_interval import MAX_INTERVAL_S, MIN_INTERVAL_S, interval_from_otel
from otel_monitoring.export_interval import VARIABLE as OTEL_INTERVAL_VARIABLE

__all__ = ["DEFAULT_EXCLUDED_URLS", "ENV_PREFIX", "ENV_VARS", "Settings", "parse_duration_s"]

ENV_PREFIX = "OTEL_MONITORING_"

DEFAULT_EXCLUDED_URLS: tuple[str, ...] = (
    "/health",
    "/healthz",
    "/livez",
    "/readyz",
    "/ping",
    "/metrics",
    "/favicon.ico",
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration_s(text: str) -> float:
    """Parse ``"10"``, ``"10s"``, ``"500ms"``, ``"5m"``, ``"24h"`` or ``"30d"`` into seconds.

    Raises:
        ValueError: the text is not a non-negative number with an optional unit.
    """
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (examples: 10s, 500ms, 5m, 24h, 30d)")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean (use true or false)")


def _parse_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an integer") from None


def _parse_float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def _parse_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _parse_str(text: str) -> str:
    return text.strip()


def _parse_api_keys(text: str) -> tuple[tuple[str, str], ...]:
    from otel_monitoring.api.auth import parse_api_keys

    return parse_api_keys(text)


def _parse_rate_limits(text: str) -> tuple[tuple[str, str], ...]:
    from otel_monitoring.api.ratelimit import DEFAULT_LIMITS, parse_rate

    pairs = []
    for entry in _parse_list(text):
        name, sep, rate = entry.partition("=")
        name = name.strip()
        if not sep or name not in DEFAULT_LIMITS:
            raise ValueError(
                f"{entry!r}: use NAME=RATE with NAME one of {', '.join(sorted(DEFAULT_LIMITS))}"
            )
        parse_rate(rate.strip())
        pairs.append((name, rate.strip()))
    return tuple(pairs)


def _parse_store(text: str) -> str:
    from otel_monitoring.store.sqlite.url import parse_store_url

    directory = parse_store_url(text.strip()).parent
    if not directory.is_dir():
        raise ValueError(f"the directory {str(directory)!r} does not exist; create it first")
    return text.strip()


# field name -> (env suffix, parser)
_ENV: dict[str, tuple[str, Callable[[str], Any]]] = {
    "enabled": ("ENABLED", _parse_bool),
    "stats_enabled": ("STATS", _parse_bool),
    "prefix": ("PREFIX", _parse_str),
    "host": ("HOST", _parse_str),
    "port": ("PORT", _parse_int),
    "mount": ("MOUNT", _parse_bool),
    "interval_s": ("INTERVAL", parse_duration_s),
    "retention_s": ("RETENTION", parse_duration_s),
    "resolution_s": ("RESOLUTION", parse_duration_s),
    "fine_history_s": ("FINE_HISTORY", parse_duration_s),
    "shutdown_timeout_s": ("SHUTDOWN_TIMEOUT", parse_duration_s),
    "excluded_urls": ("EXCLUDED_URLS", _parse_list),
    "max_series": ("MAX_SERIES", _parse_int),
    "server_timing": ("SERVER_TIMING", _parse_bool),
    "slow_traces_per_route": ("SLOW_TRACES", _parse_int),
    "error_samples": ("ERROR_SAMPLES", _parse_int),
    "n_plus_one_threshold": ("N_PLUS_ONE_THRESHOLD", _parse_int),
    "latency_threshold_ms": ("LATENCY_THRESHOLD_MS", _parse_float),
    "db_threshold_ms": ("DB_THRESHOLD_MS", _parse_float),
    "gc_freeze": ("GC_FREEZE", _parse_bool),
    "api_keys": ("API_KEY", _parse_api_keys),
    "trusted_proxies": ("TRUSTED_PROXIES", _parse_list),
    "rate_limits": ("RATE_LIMITS", _parse_rate_limits),
    "openapi": ("OPENAPI", _parse_bool),
    "rules_file": ("RULES_FILE", _parse_str),
    "webhook_urls": ("WEBHOOK_URLS", _parse_list),
    "webhook_allow": ("WEBHOOK_ALLOW", _parse_list),
    "store_url": ("STORE", _parse_store),
    "prometheus_export": ("PROMETHEUS_EXPORT", _parse_bool),
    "prometheus_url": ("PROMETHEUS_URL", _parse_str),
    "prometheus_selector": ("PROMETHEUS_SELECTOR", _parse_str),
    "prometheus_timeout_s": ("PROMETHEUS_TIMEOUT", parse_duration_s),
    "timezone": ("TIMEZONE", _parse_str),
}

_SECRET_FIELDS = frozenset({"api_keys"})

ENV_VARS: tuple[str, ...] = tuple(ENV_PREFIX + suffix for suffix, _ in _ENV.values())


@dataclass(frozen=True, slots=True)
class Settings:
    """All settings of the package, validated.

    Durations are seconds, thresholds milliseconds (the unit people read). Build with
    :meth:`from_env` to honour environment variables; the constructor alone validates too.
    """

    enabled: bool = True
    stats_enabled: bool = True
    prefix: str = "/monitoring"
    host: str = "127.0.0.1"
    port: int = 9478
    mount: bool = False
    interval_s: float = 10.0
    retention_s: float = 24 * 3600.0
    resolution_s: float = 10.0
    fine_history_s: float = 0.0
    shutdown_timeout_s: float = 5.0
    excluded_urls: tuple[str, ...] = DEFAULT_EXCLUDED_URLS
    max_series: int = 2000
    server_timing: bool = True
    slow_traces_per_route: int = 5
    error_samples: int = 100
    n_plus_one_threshold: int = 5
    latency_threshold_ms: float = 1000.0
    db_threshold_ms: float = 500.0
    gc_freeze: bool = False
    api_keys: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    trusted_proxies: tuple[str, ...] = ()
    rate_limits: tuple[tuple[str, str], ...] = ()
    openapi: bool = False
    rules_file: str | None = None
    webhook_urls: tuple[str, ...] = ()
    webhook_allow: tuple[str, ...] = ()
    store_url: str | None = None
    prometheus_export: bool = False
    prometheus_url: str | None = None
    prometheus_selector: str = ""
    prometheus_timeout_s: float = 5.0
    timezone: str | None = None

    def __post_init__(self) -> None:
        def bad(name: str, reason: str) -> ConfigError:
            suffix = _ENV[name][0] if name in _ENV else name.upper()
            value = getattr(self, name)
            return ConfigError(
                f"invalid setting {ENV_PREFIX}{suffix} (argument {name}={value!r}): {reason}"
            )

        if self.timezone is not None:
            try:
                zoneinfo.ZoneInfo(self.timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise bad(
                    "timezone", "not a time zone: an IANA name such as Europe/Paris"
                ) from None
        if not self.prefix.startswith("/") or self.prefix.endswith("/") or " " in self.prefix:
            raise bad("prefix", "must start with '/' and not end with '/', e.g. /monitoring")
        if not 1 <= self.port <= 65535:
            raise bad("port", "must be a TCP port between 1 and 65535")
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            if self.host != "localhost":
                raise bad("host", "must be an IP address such as 127.0.0.1") from None
        if not MIN_INTERVAL_S <= self.interval_s <= MAX_INTERVAL_S:
            raise bad("interval_s", "must be between 50ms and 1h")
        if not 60 <= self.retention_s <= 30 * 86400:
            raise bad("retention_s", "must be between 1m and 30d")
        if not 0.1 <= self.resolution_s <= 10:
            raise bad("resolution_s", "must be between 100ms and 10s")
        if not 0 <= self.fine_history_s <= 86400:
            raise bad("fine_history_s", "must be at most 24h (0: as long as the finest tier)")
        if self.fine_history_s / self.resolution_s > 8640.5:
            raise bad(
                "fine_history_s",
                f"keeps at most 8640 finest points per chart: at most"
                f" {8640 * self.resolution_s:g}s at a resolution of {self.resolution_s:g}s",
            )
        if not 0 < self.shutdown_timeout_s <= 300:
            raise bad("shutdown_timeout_s", "must be more than 0 and at most 300s")
        for url in self.excluded_urls:
            if not url.startswith("/"):
                raise bad("excluded_urls", f"{url!r} must be a path starting with '/'")
        if not 10 <= self.max_series <= 1_000_000:
            raise bad("max_series", "must be between 10 and 1000000")
        if not 0 <= self.slow_traces_per_route <= 100:
            raise bad("slow_traces_per_route", "must be between 0 and 100")
        if not 0 <= self.error_samples <= 10_000:
            raise bad("error_samples", "must be between 0 and 10000")
        if not 2 <= self.n_plus_one_threshold <= 10_000:
            raise bad("n_plus_one_threshold", "must be between 2 and 10000")
        if not 0 < self.latency_threshold_ms < math.inf:  # refuses NaN too
            raise bad("latency_threshold_ms", "must be a positive, finite number of ms")
        if not 0 < self.db_threshold_ms < math.inf:
            raise bad("db_threshold_ms", "must be a positive, finite number of ms")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise bad("trusted_proxies", f"{proxy!r} is not an address or network") from None
        if self.store_url is not None:
            try:
                _parse_store(self.store_url)
            except ValueError as exc:
                raise bad("store_url", str(exc)) from None
        if self.prometheus_url is not None and not self.prometheus_url.startswith(
            ("http://", "https://")
        ):
            raise bad("prometheus_url", "must be an http(s) URL such as http://127.0.0.1:9090")
        if not 0 < self.prometheus_timeout_s <= 300:
            raise bad("prometheus_timeout_s", "must be more than 0 and at most 300s")
        for name, rate in self.rate_limits:
            try:
                _parse_rate_limits(f"{name}={rate}")
            except ValueError as exc:
                raise bad("rate_limits", str(exc)) from None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``OTEL_MONITORING_*`` variables, then apply ``overrides``.

        An override of ``None`` means "not given". Unknown ``OTEL_MONITORING_*`` names are
        rejected so that a typo does not silently fall back to a default.

        Raises:
            ConfigError: a variable or argument has a bad value; the message names it.
        """
        env = os.environ if env is None else env
        known = {field_.name for field_ in dataclasses.fields(cls)}
        for key in overrides:
            if key not in known:
                raise ConfigError(f"unknown setting {key!r}; known: {sorted(known)}")
        values: dict[str, Any] = {}
        blank_key = env.get(ENV_PREFIX + "API_KEY")
        if blank_key is not None and not blank_key.strip() and "api_keys" not in overrides:
            # Most likely an unset secret in a template: never silently run without keys.
            raise ConfigError(
                f"{ENV_PREFIX}API_KEY is set but empty; give a key (SECRET[:read|admin]) or"
                " unset the variable to run without keys"
            )
        for name, (suffix, parse) in _ENV.items():
            raw = env.get(ENV_PREFIX + suffix)
            if raw is None or raw.strip() == "":
                continue
            try:
                values[name] = parse(raw)
            except ValueError as exc:
                shown = "<hidden>" if name in _SECRET_FIELDS else repr(raw)
                raise ConfigError(f"invalid {ENV_PREFIX}{suffix}={shown}: {exc}") from None
        if "interval_s" not in values and (otel_ms := env.get(OTEL_INTERVAL_VARIABLE)):
            # The standard OTel export interval (milliseconds) when ours is not set.
            values["interval_s"] = interval_from_otel(otel_ms)
        unknown = sorted(key for key in env if key.startswith(ENV_PREFIX) and key not in ENV_VARS)
        if unknown:
            close = difflib.get_close_matches(unknown[0], ENV_VARS, n=1)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(ENV_VARS)}"
            raise ConfigError(f"unknown environment variable {unknown[0]}; {hint}")
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)
