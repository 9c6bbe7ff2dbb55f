"""The standard OpenTelemetry variables real teams set, under a real uvicorn, with the real
SDK and contrib instrumentations: whatever their values, the monitoring API shows the exact
figures of a known traffic (``otel_env_figures``), or a start-up line says why it cannot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from otel_env_figures import expected, figures, send

APP = "tests.integration.otel_env_app:app"

#: OTEL_SEMCONV_STABILITY_OPT_IN -> whether the package must add ``http`` (and say so)
SEMCONV = {
    "database": True,
    "http/dup": False,
    "http,database": False,
    "gen_ai_latest_experimental": True,
    "": True,
}


@pytest.mark.parametrize(
    ("mode", "opt_in"),
    [("zero-code", value) for value in SEMCONV]
    + [("code", "database"), ("code-spans", "database")],
)
def test_semconv_opt_in_of_the_team_keeps_the_figures_exact(
    mode: str, opt_in: str, serve_app: Callable[..., Any], tmp_path: Path
) -> None:
    """A team's ``OTEL_SEMCONV_STABILITY_OPT_IN`` for another signal (``database``, their DB
    conventions' migration) left the HTTP instrumentations on the old conventions
    (``http.server.duration`` in ms, without ``http.route``): zero-code mode counted no
    request and code mode no outbound call. ``http/dup`` (old and new) counts each once."""
    env = {"OTEL_ENV_DB": str(tmp_path / "env.db"), "OTEL_SEMCONV_STABILITY_OPT_IN": opt_in}
    server = serve_app(APP, mode, env, "/healthz")
    send(server.url)
    assert figures(server.api) == expected()
    output = server.output()
    said = f"OTEL_SEMCONV_STABILITY_OPT_IN={opt_in!r} names no HTTP conventions" in output
    assert said == SEMCONV[opt_in], output[-3000:]


#: OTEL_PYTHON_DISABLED_INSTRUMENTATIONS case -> (its value, extra environment)
DISABLED = {
    "fastapi": ("fastapi", {}),
    "fastapi-mounted-api": ("fastapi", {"OTEL_MONITORING_MOUNT": "true"}),
    "sqlalchemy": ("sqlalchemy", {}),
    "asgi": ("asgi", {}),
}


@pytest.mark.parametrize("case", DISABLED)
def test_disabled_instrumentations_leave_no_wrong_figure(
    case: str, serve_app: Callable[..., Any], tmp_path: Path
) -> None:
    """``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``: with ``fastapi`` disabled, FastAPI's own
    telemetry measures the requests (the monitor reads its metrics and spans), and only the
    app's requests: not the monitoring API's (on the side port or mounted), nor probes; one
    line at start says so. ``sqlalchemy`` (DB statistics come from the package's own cursor
    events) and ``asgi`` (no such instrumentor) change nothing. Read twice: the API's own
    requests of the first reading are in none of the second's figures."""
    disabled, extra = DISABLED[case]
    env = {
        "OTEL_ENV_DB": str(tmp_path / "env.db"),
        "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": disabled,
        **extra,
    }
    server = serve_app(APP, "zero-code", env, "/healthz")
    if extra:
        server.api = server.url
    send(server.url)
    assert figures(server.api) == expected()
    assert figures(server.api) == expected()
    output = server.output()
    said = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS names fastapi" in output
    assert said == (disabled == "fastapi"), output[-3000:]
