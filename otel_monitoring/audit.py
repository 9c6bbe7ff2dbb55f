"""Append-only audit trail of mutating calls: who, when, what, why, and the result.

Records are never edited or removed through the API. In memory the trail keeps the most
recent ``max_records`` (and counts what it dropped); a persistent store keeps them all.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from otel_monitoring.clock import Clock

__all__ = ["AuditLog", "AuditRecord"]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One mutating call. ``who`` names the API key (never its secret) or the client."""

    id: int
    at_s: float
    who: str
    action: str
    target: str
    reason: str
    result: str


class AuditLog:
    """Thread-safe, append-only, bounded in memory."""

    def __init__(self, clock: Clock, max_records: int = 10_000) -> None:
        self.clock = clock
        self._records: deque[AuditRecord] = deque(maxlen=max_records)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.dropped = 0
        #: Called with each new record (a persistent store); failures are the sink's concern.
        self.sinks: list[Callable[[AuditRecord], None]] = []
        #: Where :meth:`records` reads from when set (a store shared by several workers).
        self.source: Callable[[int], list[AuditRecord]] | None = None

    def append(
        self, *, who: str, action: str, target: str, reason: str, result: str
    ) -> AuditRecord:
        """Add a record and return it."""
        with self._lock:
            if len(self._records) == self._records.maxlen:
                self.dropped += 1
            record = AuditRecord(
                id=next(self._ids),
                at_s=self.clock.now_s(),
                who=who,
                action=action,
                target=target,
                reason=reason,
                result=result,
            )
            self._records.append(record)
        for sink in self.sinks:
            sink(record)
        return record

    def records(self, limit: int = 100) -> list[AuditRecord]:
        """The most recent records, newest first."""
        if self.source is not None:
            return self.source(limit)
        with self._lock:
            return list(self._records)[::-1][:limit]
