"""The shared label vocabulary: one status-class rule for ingestion and the fleet's labels."""

import pytest

from otel_monitoring.semconv import UNMATCHED_ROUTE, status_class


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, "2xx"),
        (599, "5xx"),
        ("404", "4xx"),  # Prometheus label values are strings
        ("100", "1xx"),
        (99, "unknown"),
        (600, "unknown"),
        ("600", "unknown"),
        ("2xx", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
        (200.0, "unknown"),
    ],
)
def test_status_class(status: object, expected: str) -> None:
    assert status_class(status) == expected


def test_unmatched_route_is_one_label() -> None:
    assert UNMATCHED_ROUTE == "<unmatched>"
