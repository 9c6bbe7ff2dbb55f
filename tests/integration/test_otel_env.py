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
    "all": ("*", {}),
}


@pytest.mark.parametrize("case", DISABLED)
def test_disabled_instrumentations_leave_no_wrong_figure(
    case: str, serve_app: Callable[..., Any], tmp_path: Path
) -> None:
    """``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``: with ``fastapi`` disabled, FastAPI's own
    telemetry measures the requests (the monitor reads its metrics and spans), and only the
    app's requests: not the monitoring API's (on the side port or mounted), nor probes; one
    line at start says so. ``sqlalchemy`` (DB statistics come from the package's own cursor
    events) and ``asgi`` (no such instrumentor) change nothing; ``*`` leaves the outbound
    calls unmeasured too. Read twice: the API's own requests of the first reading are in
    none of the second's figures."""
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
    outbound = disabled != "*"  # the httpx instrumentation measures outbound calls
    assert figures(server.api) == expected(external=outbound)
    assert figures(server.api) == expected(external=outbound)
    output = server.output()
    said = f"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS names {disabled}:" in output
    assert said == (disabled in ("fastapi", "*")), output[-3000:]


#: OTEL_PYTHON_DISTRO/CONFIGURATOR: OTel's distro (its reader exports) or the package's alone
CONFIGURATORS = {
    "distro": {},
    "ours": {
        "OTEL_PYTHON_DISTRO": "otel_monitoring",
        "OTEL_PYTHON_CONFIGURATOR": "otel_monitoring",
    },
}
#: preference -> exported temporality (1 delta, 2 cumulative) of (histograms, up-down counters)
TEMPORALITIES = {"cumulative": (2, 2), "delta": (1, 2), "lowmemory": (1, 2)}


def _exported(receiver: Any, name: str) -> tuple[int, set[int]]:
    """The requests the backend was told of through metric ``name`` (the sum of delta
    points, the last total of cumulative ones, per stream), and the temporalities seen."""
    from otlp_receiver import attributes

    deltas = 0
    totals: dict[str, int] = {}
    seen: set[int] = set()
    with receiver.changed:
        requests = list(receiver.metrics)
    for request in requests:
        for rm in request.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in (m for m in sm.metrics if m.name == name):
                    data = getattr(metric, metric.WhichOneof("data"))
                    seen.add(data.aggregation_temporality)
                    for point in data.data_points:
                        if data.aggregation_temporality == 1:
                            deltas += point.count
                        else:
                            stream = repr(sorted(attributes(point.attributes).items()))
                            totals[stream] = point.count
    return deltas + sum(totals.values()), seen


def _temporality(receiver: Any, name: str) -> set[int]:
    with receiver.changed:
        requests = list(receiver.metrics)
    return {
        getattr(m, m.WhichOneof("data")).aggregation_temporality
        for request in requests
        for rm in request.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
    }


@pytest.mark.parametrize("preference", TEMPORALITIES)
@pytest.mark.parametrize("configurator", CONFIGURATORS)
def test_export_temporality_preference_leaves_the_figures_exact(
    configurator: str, preference: str, serve_app: Callable[..., Any], tmp_path: Path
) -> None:
    """``OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`` with ``OTEL_METRICS_EXPORTER=otlp``:
    the in-process figures are exact whatever the export's temporality, and the export is
    what the preference says (histograms cumulative only with ``cumulative``; up-down
    counters always cumulative), with every request exported once."""
    from otlp_receiver import OtlpReceiver
    from processes import stop_group

    receiver = OtlpReceiver()
    try:
        env = {
            "OTEL_ENV_DB": str(tmp_path / "env.db"),
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": preference,
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
            **CONFIGURATORS[configurator],
        }
        server = serve_app(APP, "zero-code", env, "/healthz")
        send(server.url)
        assert figures(server.api) == expected()
        duration = "http.server.request.duration"
        receiver.wait_for(lambda: _exported(receiver, duration)[0] >= 10, timeout_s=10)
        histograms, up_down = TEMPORALITIES[preference]
        assert _exported(receiver, duration) == (10, {histograms})
        assert _temporality(receiver, "db.client.operation.duration") == {histograms}
        assert _temporality(receiver, "http.server.active_requests") == {up_down}
        stop_group(server.proc, timeout_s=20)  # its last export before the receiver closes
    finally:
        receiver.close()


#: export set-ups: interval (ms) and exporters
EXPORTS = {
    "interval-100ms": {"OTEL_METRIC_EXPORT_INTERVAL": "100", "OTEL_METRICS_EXPORTER": "otlp"},
    "interval-1h": {"OTEL_METRIC_EXPORT_INTERVAL": "3600000", "OTEL_METRICS_EXPORTER": "otlp"},
    "console,otlp": {"OTEL_METRIC_EXPORT_INTERVAL": "500", "OTEL_METRICS_EXPORTER": "console,otlp"},
    "none": {"OTEL_METRIC_EXPORT_INTERVAL": "500", "OTEL_METRICS_EXPORTER": "none"},
    "interval-2h": {"OTEL_METRIC_EXPORT_INTERVAL": "7200000", "OTEL_METRICS_EXPORTER": "otlp"},
    "interval-10ms": {"OTEL_METRIC_EXPORT_INTERVAL": "10", "OTEL_METRICS_EXPORTER": "otlp"},
}
#: set-up -> the start-up line its interval gives (the package's reader clamps it)
CLAMPED = {
    "interval-2h": "OTEL_METRIC_EXPORT_INTERVAL=7200000 (2h) is longer than 1h",
    "interval-10ms": "OTEL_METRIC_EXPORT_INTERVAL=10 (10ms) is shorter than 50ms",
}


@pytest.mark.parametrize("setup", EXPORTS)
@pytest.mark.parametrize("configurator", CONFIGURATORS)
def test_export_interval_and_exporters_leave_the_figures_exact(
    configurator: str, setup: str, serve_app: Callable[..., Any], tmp_path: Path
) -> None:
    """``OTEL_METRIC_EXPORT_INTERVAL`` of 100 ms and of an hour (``OTEL_MONITORING_INTERVAL``
    unset, so it is the package's too), and two metric exporters: the in-process figures
    are exact, and once the app stops every request has been exported once (with an hour's
    interval, by the export at the stop), on the console as well when it is named; with
    ``OTEL_METRICS_EXPORTER=none`` (and ``OTEL_TRACES_EXPORTER=none``) nothing. Beyond
    the package's 50ms-1h (which the SDK accepts) the package's reader uses the nearest
    bound, said in one line: monitoring went off, naming OTEL_MONITORING_INTERVAL, which
    the team had not set."""
    from otlp_receiver import OtlpReceiver
    from processes import stop_group

    receiver = OtlpReceiver()
    try:
        env = {
            "OTEL_ENV_DB": str(tmp_path / "env.db"),
            "OTEL_MONITORING_INTERVAL": "",  # unset: the export interval is the package's
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            **EXPORTS[setup],
            **CONFIGURATORS[configurator],
        }
        server = serve_app(APP, "zero-code", env, "/healthz")
        send(server.url)
        assert figures(server.api) == expected()
        stop_group(server.proc, timeout_s=20)
        duration = "http.server.request.duration"
        output = server.output()
        if setup == "none":  # OTEL_TRACES_EXPORTER too (serve_app): nothing leaves
            assert (receiver.metrics, receiver.traces) == ([], []), output[-3000:]
            return
        receiver.wait_for(lambda: _exported(receiver, duration)[0] >= 10, timeout_s=10)
        assert _exported(receiver, duration)[0] == 10, output[-3000:]
        if "console" in setup:
            assert f'"name": "{duration}"' in output, output[-3000:]
        said = [line for line in output.splitlines() if "OTEL_METRIC_EXPORT_INTERVAL" in line]
        assert len(said) == (setup in CLAMPED), said
        assert setup not in CLAMPED or CLAMPED[setup] in said[0], said
    finally:
        receiver.close()
