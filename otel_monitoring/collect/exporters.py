"""Exporters named by the standard ``OTEL_*`` variables, resolved through entry points.

``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` keep their meaning (comma-separated
names, ``none`` for none). ``otlp`` picks HTTP/protobuf or gRPC from
``OTEL_EXPORTER_OTLP_[SIGNAL_]PROTOCOL`` (default ``http/protobuf``). When the exporter
variable is unset, OTLP is used only if an OTLP endpoint variable is set: the package works
with no backend, and does not retry a collector that nobody runs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any, Literal

from otel_monitoring.errors import ConfigError

__all__ = ["GRPC_EXTRA", "exporters_from_env", "temporality_preference"]

#: What to install for ``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``.
GRPC_EXTRA = "pip install 'otel-monitoring[grpc]'"

_logger = logging.getLogger("otel_monitoring")
_warned_lock = threading.Lock()
_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    """Log ``message`` once per process (traces and metrics would each say it)."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    _logger.warning(message)


Signal = Literal["traces", "metrics"]

_TEMPORALITY_VARIABLE = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
_TEMPORALITIES = ("cumulative", "delta", "lowmemory")


def temporality_preference(env: Mapping[str, str]) -> str | None:
    """``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` in lower case; ``None`` when it
    is unset or unknown (one warning line: as the SDK does, export goes on, here with the
    package's default, delta)."""
    raw = env.get(_TEMPORALITY_VARIABLE, "").strip().lower()
    if not raw:
        return None
    if raw not in _TEMPORALITIES:
        _warn_once(
            _TEMPORALITY_VARIABLE,
            f"otel-monitoring: unknown {_TEMPORALITY_VARIABLE}={raw!r} (known:"
            f" {', '.join(_TEMPORALITIES)}); metrics are exported with delta temporality",
        )
        return None
    return raw


_PROTOCOL_TO_ENTRY = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}


def _exporter_names(signal: Signal, env: Mapping[str, str]) -> list[str]:
    variable = f"OTEL_{signal.upper()}_EXPORTER"
    raw = env.get(variable)
    if raw is None or not raw.strip():
        endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
        return ["otlp"] if any(env.get(name) for name in endpoints) else []
    names = [name.strip() for name in raw.split(",") if name.strip()]
    # "prometheus" is served by the package's own exposition (seconds-sized buckets, mounted
    # on the app); the stock reader would aggregate a second time with unusable buckets.
    return [] if names == ["none"] else [n for n in names if n != "prometheus"]


def _entry_name(name: str, signal: Signal, env: Mapping[str, str]) -> str:
    if name != "otlp":
        return name
    protocol = (
        env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol not in _PROTOCOL_TO_ENTRY:
        raise ConfigError(
            f"invalid OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use http/protobuf or grpc"
        )
    return _PROTOCOL_TO_ENTRY[protocol]


def exporters_from_env(signal: Signal, env: Mapping[str, str]) -> list[Any]:
    """Instantiate the exporters (or pull readers) that ``OTEL_<SIGNAL>_EXPORTER`` names.

    Raises:
        ConfigError: a name has no installed exporter; the message names the variable.
    """
    group = f"opentelemetry_{signal}_exporter"
    found = []
    for name in _exporter_names(signal, env):
        entry = _entry_name(name, signal, env)
        matches = entry_points(group=group, name=entry)
        if entry == "otlp_proto_grpc":
            exporter_class = _grpc_exporter(matches)
            if exporter_class is not None:
                found.append(exporter_class())
            continue
        if not matches:
            raise ConfigError(
                f"invalid OTEL_{signal.upper()}_EXPORTER: no exporter named {name!r} is installed"
                f" (entry point {entry!r} in group {group!r})"
            )
        exporter_class = next(iter(matches)).load()
        found.append(exporter_class())
    return found


def _grpc_exporter(matches: Any) -> Any | None:
    """The gRPC exporter class, or ``None`` (one warning line naming the extra) when it or
    ``grpcio`` is not installed: the local statistics go on without the export."""
    try:
        if matches:
            return next(iter(matches)).load()
    except ImportError:
        pass
    _warn_once(
        "grpc",
        "otel-monitoring: OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs the gRPC exporter, which is"
        f" not installed ({GRPC_EXTRA}); nothing is exported over OTLP, the monitoring API"
        " keeps its local statistics",
    )
    return None
