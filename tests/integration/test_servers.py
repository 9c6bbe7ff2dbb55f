"""The shop under the other popular ASGI servers, hypercorn and granian, in code mode
(``instrument_app``) and zero-code mode (``opentelemetry-instrument``, the distro's
configurator), with one worker and two: exact figures per route in the monitoring API (the
side port's being the combined figures of all workers), and a SIGTERM to the server's root
right after the last requests keeps every one of them (counted after a restart).

Both servers run the app in worker processes they start, even with one worker: hypercorn
spawns them (``multiprocessing`` "spawn"), granian forks them, and a forked granian worker
ends with ``os._exit`` (no exit handler runs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_modes import raised, server_argv
from processes import stop_group

SHOP = "otel_monitoring.demo.shop:app"
INSTRUMENT = str(Path(sys.executable).parent / "opentelemetry-instrument")
#: Requests sent after every worker has answered ``/whoami``: route -> (requests, errors).
TRAFFIC = {"/items/{item_id}": (10, 0), "/boom": (3, 3)}
#: The only exception the shop's log may end a traceback with: its own ``/boom``'s (hypercorn
#: names it in full, granian by its class name).
APP_ERROR = "PaymentGatewayError"

CASES = [
    pytest.param(server, workers, mode, id=f"{server}-{workers}w-{mode}")
    for server in ("hypercorn", "granian")
    for workers in (1, 2)
    for mode in ("code", "zero-code")
]


def _get(url: str) -> httpx.Response:
    # A new connection each time, so requests spread over the workers.
    return httpx.get(url, headers={"Connection": "close"}, timeout=10)


def _env(tmp_path: Path, mode: str, api_port: int, interval: str) -> dict[str, str]:
    env = {
        "SHOP_DB": str(tmp_path / "shop.db"),
        "OTEL_SERVICE_NAME": "shop",
        "OTEL_MONITORING_INTERVAL": interval,
        "OTEL_MONITORING_STORE": f"sqlite:///{tmp_path / 'monitor.db'}",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "XDG_RUNTIME_DIR": str(tmp_path),
    }
    if mode == "code":
        env["SHOP_INSTRUMENT"] = "1"
    else:
        env["OTEL_MONITORING_PORT"] = str(api_port)
    # the shop seeds its database on import: once here, not by two workers at once
    seed = "from otel_monitoring.demo.shop import create_engine_for; create_engine_for()"
    full = {**os.environ, **env, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    subprocess.run([sys.executable, "-c", seed], env=full, check=True, timeout=60)
    return env


def _serve(
    start_server: Callable[..., Any],
    server: str,
    workers: int,
    mode: str,
    port: int,
    env: dict[str, str],
) -> Any:
    argv = server_argv(server, SHOP, port, workers)
    if mode == "zero-code":
        argv = [INSTRUMENT, *argv]
    return start_server(argv, env, port)


def _traffic(base: str, workers: int) -> dict[str, tuple[int, int]]:
    """``/whoami`` until each of ``workers`` answered (bounded), then :data:`TRAFFIC`:
    what was sent, per route (requests, errors)."""
    pids: set[int] = set()
    whoami = 0
    deadline = time.monotonic() + 20
    while len(pids) < workers or whoami < 10:
        assert time.monotonic() < deadline, f"workers answering: {pids}"
        pids.add(_get(base + "/whoami").json()["pid"])
        whoami += 1
    for i in range(TRAFFIC["/items/{item_id}"][0]):
        assert _get(f"{base}/items/{i % 5 + 1}").status_code == 200
    for _ in range(TRAFFIC["/boom"][0]):
        assert _get(f"{base}/boom").status_code == 500
    return {"/whoami": (whoami, 0), **TRAFFIC}


def _figures(endpoints: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    return {e["route"]: (e["requests"], e["errors"]) for e in endpoints}


def _endpoints_until(api: str, sent: dict[str, tuple[int, int]]) -> list[dict[str, Any]]:
    """The monitoring API's endpoints once their figures are ``sent`` (polled up to 20 s)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            answer: list[dict[str, Any]] = _get(api + "/monitoring/endpoints").json()
        except httpx.TransportError:
            answer = []
        if _figures(answer) == sent:
            return answer
        assert time.monotonic() < deadline, (sent, _figures(answer))
        time.sleep(0.5)


def _stop_root(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's root only, as Kubernetes, systemd and Docker send it; it
    stops its workers (bounded: 20 s, then the group is killed)."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    finally:
        stop_group(proc, timeout_s=1)


def _kept(start_server: Callable[..., Any], env: dict[str, str], port: int, api_port: int) -> Any:
    """What the store file holds: read by a restarted (zero-code, uvicorn) shop."""
    bindir = Path(sys.executable).parent
    argv = [INSTRUMENT, str(bindir / "uvicorn"), SHOP, "--port", str(port), "--no-access-log"]
    restarted = {**env, "OTEL_MONITORING_PORT": str(api_port)}
    restarted.pop("SHOP_INSTRUMENT", None)
    start_server(argv, restarted, port)
    return _get(f"http://127.0.0.1:{api_port}/monitoring/endpoints").json()


@pytest.mark.parametrize(("server", "workers", "mode"), CASES)
def test_exact_figures_from_every_worker(
    server: str,
    workers: int,
    mode: str,
    start_server: Callable[..., Any],
    port: int,
    another_port: Callable[[], int],
    tmp_path: Path,
) -> None:
    """Requests, errors and latency per route, exact, in the monitoring API (the app's port
    in code mode, the side port in zero-code mode) while the server runs; the server stops
    on a SIGTERM to its root with no traceback but the app's own and no warning of ours."""
    api_port = another_port()
    env = _env(tmp_path, mode, api_port, interval="1s")
    app = _serve(start_server, server, workers, mode, port, env)
    api = app.url if mode == "code" else f"http://127.0.0.1:{api_port}"
    sent = _traffic(app.url, workers)
    endpoints = _endpoints_until(api, sent)
    for endpoint in endpoints:
        latency = endpoint["latency"]
        assert 0 < latency["min_ms"] <= latency["avg_ms"] <= latency["max_ms"] < 5000, endpoint
    if mode == "zero-code":
        assert f"monitoring API on {api}/monitoring/" in app.output()
    _stop_root(app.proc)
    output = app.output()
    assert {name.rsplit(".", 1)[-1] for name in raised(output)} == {APP_ERROR}, output[-3000:]
    assert "Cannot call collect" not in output, output[-3000:]


@pytest.mark.parametrize(
    ("server", "workers", "mode"),
    [
        *CASES,
        # no lifespan: no app stop to drain at, and granian's forked workers run no exit
        # handler
        pytest.param("granian-asginl", 2, "code", id="granian-asginl-2w-code"),
        pytest.param("granian-asginl", 2, "zero-code", id="granian-asginl-2w-zero-code"),
    ],
)
def test_a_sigterm_right_after_the_requests_keeps_every_one(
    server: str,
    workers: int,
    mode: str,
    start_server: Callable[..., Any],
    port: int,
    another_port: Callable[[], int],
    tmp_path: Path,
) -> None:
    """A SIGTERM to the root right after the last requests, before any periodic collection
    (every 10 s at a 60-s interval): a restarted shop reads every request of every worker
    from the store file."""
    env = _env(tmp_path, mode, another_port(), interval="60s")
    app = _serve(start_server, server, workers, mode, port, env)
    sent = _traffic(app.url, workers)
    _stop_root(app.proc)
    kept = _kept(start_server, env, another_port(), another_port())
    assert _figures(kept) == sent, app.output()[-3000:]
