"""``OTEL_SEMCONV_STABILITY_OPT_IN``: ``http`` is added to a team's value naming no HTTP mode."""

from __future__ import annotations

import pytest

from otel_monitoring.capture.semconv_opt_in import VARIABLE, opt_in_stable_http


@pytest.mark.parametrize(
    ("team", "result", "changed"),
    [
        (None, "http", False),
        ("http", "http", False),
        ("http/dup", "http/dup", False),
        ("database, http/dup", "database, http/dup", False),
        ("database", "database,http", True),
        (
            "database/dup,gen_ai_latest_experimental",
            "database/dup,gen_ai_latest_experimental,http",
            True,
        ),
        ("", "http", True),
        (" , ", "http", True),
    ],
)
def test_http_is_added_unless_an_http_mode_is_named(
    team: str | None, result: str, changed: bool
) -> None:
    environ = {} if team is None else {VARIABLE: team}
    assert opt_in_stable_http(environ) == (team if changed else None)
    assert environ == {VARIABLE: result}
