"""The service's local wall clock, for the phase of daily and weekly cycles.

A service's traffic, its latency and its nightly jobs follow the local clock of the people and
crons behind them. Where that clock moves for daylight saving time, every one of them happens an
hour earlier or later in UTC overnight, and a detector that learnt its cycles by UTC hour met a
shifted day for weeks: in the production suite (``benchmarks/production.py --timezone``) a
spring change raised the false alarms from 0.024 to 0.111 per chart-day. Given the zone, the
count tests place each time by its local hour (of the day and of the week) and keep measuring
durations in seconds of UTC.

Guarantees: :meth:`LocalClock.phase` is O(1) (the zone's offset is looked up once per 15 minutes
of time: every zone's changes fall on a quarter hour of UTC) and has no state but that cache;
``None`` is UTC, exactly ``t``.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from analyzers.errors import InvalidInputError

__all__ = ["LocalClock"]

_QUARTER_S = 900.0


class LocalClock:
    """UTC seconds to the seconds of the local wall clock of ``timezone`` (an IANA name such as
    ``"Europe/Paris"``; ``None``: UTC). Only the phase is meant: the local clock repeats an hour
    in autumn, so its seconds do not increase everywhere."""

    __slots__ = ("_hi", "_lo", "_offset", "_zone", "timezone")

    def __init__(self, timezone: str | None) -> None:
        self.timezone = timezone
        self._zone: zoneinfo.ZoneInfo | None = None
        if timezone is not None:
            try:
                self._zone = zoneinfo.ZoneInfo(timezone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise InvalidInputError(
                    f"unknown time zone {timezone!r} (an IANA name, e.g. Europe/Paris): {exc}"
                ) from None
        self._lo = self._hi = 0.0  # the quarter hour the cached offset holds for
        self._offset = 0.0

    def phase(self, t: float) -> float:
        """Local wall-clock seconds (since the epoch, as if the local clock were UTC) at UTC
        time ``t`` (seconds)."""
        zone = self._zone
        if zone is None:
            return t
        if not self._lo <= t < self._hi:
            self._lo = (t // _QUARTER_S) * _QUARTER_S
            self._hi = self._lo + _QUARTER_S
            when = dt.datetime.fromtimestamp(self._lo, dt.UTC).astimezone(zone)
            offset = when.utcoffset()
            self._offset = offset.total_seconds() if offset is not None else 0.0
        return t + self._offset
