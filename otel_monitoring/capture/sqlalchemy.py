"""SQLAlchemy cursor events: ``db.client.operation.duration`` and N+1 bookkeeping.

Recorded from cursor events rather than spans, so DB counts do not depend on trace sampling
(and keep working when a contrib instrumentation version records nothing). Each execution
costs two event callbacks and one histogram record; statement texts are summarised and
normalised through bounded caches, never stored with parameter values.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from otel_monitoring.capture.instruments import Instruments
from otel_monitoring.capture.spans import TraceFindings, current_trace_id
from otel_monitoring.capture.sql_summary import normalize_statement, summarize_statement
from otel_monitoring.self_telemetry import Guard

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["DbListener", "sync_engine_of"]

_STARTS = "otel_monitoring.starts"


def sync_engine_of(engine: Engine | AsyncEngine) -> Engine:
    """The engine whose cursor events fire: an ``AsyncEngine``'s ``sync_engine`` (SQLAlchemy
    has no asynchronous events; its async engines run the sync engine's), else ``engine``."""
    sync: Engine | None = getattr(engine, "sync_engine", None)
    return sync if sync is not None else engine  # type: ignore[return-value]


class DbListener:
    """Listens to one engine (or to every engine, given the ``Engine`` class)."""

    def __init__(self, instruments: Instruments, findings: TraceFindings, guard: Guard) -> None:
        self.instruments = instruments
        self.findings = findings
        self.guard = guard
        self._targets: list[Engine | type[Engine]] = []
        self.examples: dict[str, str] = {}

    def attach(self, target: Engine | type[Engine]) -> None:
        """Start listening (idempotent per target)."""
        if any(t is target for t in self._targets):
            return
        event.listen(target, "before_cursor_execute", self._before)
        event.listen(target, "after_cursor_execute", self._after)
        event.listen(target, "handle_error", self._error)
        self._targets.append(target)

    def detach(self) -> None:
        """Stop listening to every target."""
        for target in self._targets:
            for name, fn in (
                ("before_cursor_execute", self._before),
                ("after_cursor_execute", self._after),
                ("handle_error", self._error),
            ):
                if event.contains(target, name, fn):
                    event.remove(target, name, fn)
        self._targets.clear()

    def _before(self, conn: Connection, *_: Any) -> None:
        try:
            conn.info.setdefault(_STARTS, []).append(time.perf_counter())
        except Exception as exc:  # instrumentation boundary
            self.guard.error("db before_cursor_execute", exc)

    def _after(self, conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        try:
            starts = conn.info.get(_STARTS)
            if not starts:
                return
            self._record(conn, statement, time.perf_counter() - starts.pop(), None)
        except Exception as exc:  # instrumentation boundary
            self.guard.error("db after_cursor_execute", exc)

    def _error(self, context: Any) -> None:
        try:
            conn = context.connection
            starts = conn.info.get(_STARTS) if conn is not None else None
            if not starts:
                return
            error_type = type(context.original_exception).__qualname__
            self._record(
                conn, context.statement or "", time.perf_counter() - starts.pop(), error_type
            )
        except Exception as exc:  # instrumentation boundary
            self.guard.error("db handle_error", exc)

    def _record(
        self, conn: Connection, statement: str, duration_s: float, error: str | None
    ) -> None:
        summary, operation = summarize_statement(statement)
        normalized = normalize_statement(statement)
        if summary not in self.examples and len(self.examples) < 1000:
            self.examples[summary] = normalized
        attributes: dict[str, str] = {
            "db.system.name": conn.dialect.name,
            "db.query.summary": summary,
            "db.operation.name": operation,
        }
        if error is not None:
            attributes["error.type"] = error
        self.instruments.db_duration.record(duration_s, attributes)
        trace_id = current_trace_id()
        if trace_id:
            self.findings.note_statement(trace_id, normalized)
