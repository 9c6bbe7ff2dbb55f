"""The shared vocabulary of series labels: the unmatched route and HTTP status classes.

Capture, ingestion, the fleet's PromQL and the API all name these the same way; they are
defined here once.
"""

from __future__ import annotations

__all__ = ["UNMATCHED_ROUTE", "status_class"]

#: The route label of requests that matched no route (bounded cardinality: one series).
UNMATCHED_ROUTE = "<unmatched>"


def status_class(status: object) -> str:
    """``"2xx"`` for 200..299 and so on (an int, or its decimal string as Prometheus labels
    hold it); ``"unknown"`` when absent or outside 100..599."""
    if isinstance(status, int) and 100 <= status <= 599:
        return f"{status // 100}xx"
    if isinstance(status, str) and status.isdigit():
        return status_class(int(status))
    return "unknown"
