"""``record_cache(hit, cache="name")``: count cache look-ups from anywhere in the app."""

from __future__ import annotations

from otel_monitoring.monitor import active_monitor

__all__ = ["record_cache"]


def record_cache(hit: bool, cache: str = "default") -> None:
    """Count one look-up of the named cache as a hit or a miss.

    Goes to the active monitor (the one :func:`instrument_app` or zero-code mode created);
    does nothing when none is active. Never raises.

    Example::

        value = cache.get(key)
        otel_monitoring.record_cache(value is not None, cache="products")
    """
    monitor = active_monitor()
    if monitor is not None:
        monitor.record_cache(hit, cache)
