"""Store URLs: where the monitoring data lives (``OTEL_MONITORING_STORE``)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["parse_store_url"]

_PREFIX = "sqlite:///"


def parse_store_url(text: str) -> Path:
    """The file path of a ``sqlite:///`` URL, as SQLAlchemy spells them.

    ``sqlite:///monitoring.db`` is relative to the working directory and
    ``sqlite:////var/lib/app/monitoring.db`` (four slashes) is absolute.

    Raises:
        ValueError: anything else (another scheme, no path, an in-memory database, query
            parameters); the message says what is accepted.
    """
    stripped = text.strip()
    hint = (
        f"OTEL_MONITORING_STORE={text!r} is not a store URL; expected sqlite:///relative.db"
        " or sqlite:////absolute/path.db"
    )
    if not stripped.startswith(_PREFIX):
        raise ValueError(hint)
    path = stripped[len(_PREFIX) :]
    if not path or path.endswith("/") or "?" in path or "#" in path:
        raise ValueError(hint)
    if path == ":memory:":
        raise ValueError(
            f"{hint} (an in-memory database cannot be shared between processes; leave the"
            " variable unset to keep the store in memory)"
        )
    return Path(path)
