"""The shop under the other popular ASGI servers, hypercorn and granian, in code mode
(``instrument_app``) and zero-code mode (``opentelemetry-instrument``, the distro's
configurator), with one worker and two: exact figures per route in the monitoring API (the
side port's being the combined figures of all workers), and a SIGTERM to the server's root
right after the last requests keeps every one of them (counted after a restart).

Both servers run the app in worker processes they start, even with one worker: hypercorn
spawns them (``multiprocessing`` "spawn"), granian forks them, and a forked granian worker
ends with ``os._exit`` (no exit handler runs)."""

from __future__ import annotations

import asyncio
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
from app_modes import APP_MODES, api_until, raised, server_argv
from processes import start_group, stop_group

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


def _env(
    tmp_path: Path, mode: str, api_port: int, interval: str, store: bool = True
) -> dict[str, str]:
    """The shop's environment (its database seeded); ``store``: a store file (without it,
    zero-code workers share one in the server's runtime folder, under ``tmp_path``)."""
    env = {
        "SHOP_DB": str(tmp_path / "shop.db"),
        "OTEL_SERVICE_NAME": "shop",
        "OTEL_MONITORING_INTERVAL": interval,
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "XDG_RUNTIME_DIR": str(tmp_path),
    }
    if store:
        env["OTEL_MONITORING_STORE"] = f"sqlite:///{tmp_path / 'monitor.db'}"
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
    in code mode, the side port in zero-code mode: one worker serves it, with the figures
    of all, from the store in the server's runtime folder) while the server runs; it stops
    on a SIGTERM to its root with no traceback but the app's own and no warning of ours."""
    api_port = another_port()
    # zero-code: no store setting, the workers share the runtime folder's
    env = _env(tmp_path, mode, api_port, interval="1s", store=mode == "code")
    app = _serve(start_server, server, workers, mode, port, env)
    api = app.url if mode == "code" else f"http://127.0.0.1:{api_port}"
    runtime = tmp_path / f"otel-monitoring-{os.getuid()}-{app.proc.pid}"
    sent = _traffic(app.url, workers)
    endpoints = _endpoints_until(api, sent)
    for endpoint in endpoints:
        latency = endpoint["latency"]
        assert 0 < latency["min_ms"] <= latency["avg_ms"] <= latency["max_ms"] < 5000, endpoint
    if mode == "zero-code":
        assert f"monitoring API on {api}/monitoring/" in app.output()
        assert app.output().count("monitoring API on") == 1  # one worker holds the side port
        assert runtime.is_dir()
    _stop_root(app.proc)
    assert not runtime.exists(), "the runtime folder is removed when the server stops"
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


RESPONSES = "tests.integration.responses_app:app"


@pytest.mark.parametrize("mode", APP_MODES)
@pytest.mark.parametrize("server", ["hypercorn", "granian"])
def test_responses_over_http2(
    server: str,
    mode: str,
    start_server: Callable[..., Any],
    port: int,
    another_port: Callable[[], int],
) -> None:
    """HTTP/2 without TLS (prior knowledge), as a proxy or gRPC-Web client speaks it to
    either server (``http_version`` "2", several streams at once on one connection): counts,
    sizes, and latency without the background job are those of HTTP/1.1; a response with
    trailers (hypercorn offers them over HTTP/2) is counted once, at its body's size.
    (``/jobs`` once: the readiness probe.)"""
    api_port = another_port()
    env = {
        "OTEL_MONITORING_INTERVAL": "1s",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_TRACES_EXPORTER": "console" if mode == "code-spans" else "none",
    }
    argv = server_argv(server, RESPONSES, port, 1)
    if mode == "zero-code":
        env.update(TEST_APP_ZERO_CODE="1", OTEL_MONITORING_PORT=str(api_port))
        argv = [INSTRUMENT, *argv]
    app = start_server(argv, env, port, ready_path="/jobs")
    api = app.url if mode != "zero-code" else f"http://127.0.0.1:{api_port}"

    # hypercorn 0.18 drops an HTTP/2 connection whose first stream has a body (KeyError in
    # its h2 protocol, with no app at all): its POSTs go over HTTP/1.1
    post_h2 = server != "hypercorn"

    async def send() -> None:
        async with (
            httpx.AsyncClient(base_url=app.url, http1=False, http2=True, timeout=10) as client,
            httpx.AsyncClient(base_url=app.url, http1=not post_h2, http2=post_h2) as poster,
        ):
            signups = await asyncio.gather(*(poster.post("/signup") for _ in range(3)))
            assert {r.status_code for r in signups} == {201}
            assert {r.http_version for r in signups} == {"HTTP/2" if post_h2 else "HTTP/1.1"}
            reports = await asyncio.gather(*(client.get("/report") for _ in range(4)))
            assert [len(r.content) for r in reports] == [10_000] * 4
            for _ in range(2):
                assert (await client.get("/events")).content == b"abcde"
                assert (await client.get("/trailed")).content == b"trailed"

    asyncio.run(send())
    rows = api_until(
        api,
        "/monitoring/endpoints",
        lambda rows: (
            {r["route"]: r["requests"] for r in rows}
            == {"/jobs": 1, "/signup": 3, "/report": 4, "/events": 2, "/trailed": 2}
        ),
        {"window": "5m"},
    )
    by_route = {r["route"]: r for r in rows}
    assert by_route["/report"]["response_size_max_bytes"] == 10_000, by_route
    assert by_route["/trailed"]["response_size_max_bytes"] == 7, by_route
    assert by_route["/events"]["response_size_max_bytes"] in (5, None), by_route
    # each answer took a few milliseconds; with its 600-ms job counted, 600 ms or more
    assert by_route["/signup"]["latency"]["max_ms"] < 300, by_route
    assert all(r["errors"] == 0 for r in rows), rows
    assert "Traceback" not in app.output(), app.output()[-3000:]


@pytest.mark.parametrize("mode", ["code", "zero-code"])
@pytest.mark.parametrize("server", ["hypercorn", "granian"])
def test_over_a_unix_socket(
    server: str, mode: str, another_port: Callable[[], int], tmp_path: Path
) -> None:
    """Behind a proxy on the same host, over a Unix socket: hypercorn's scope has no
    ``server`` and no ``client`` (None), granian's an empty client host. Exact figures; in
    code mode the API answers on the socket without a key (a client on this host)."""
    api_port = another_port()
    env = _env(tmp_path, mode, api_port, interval="1s")
    socket_path = tmp_path / "shop.sock"
    argv = server_argv(server, SHOP, socket_path, 1)
    if mode == "zero-code":
        argv = [INSTRUMENT, *argv]
    log = tmp_path / "server.log"
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        proc = start_group(argv, env=full_env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)
    transport = httpx.HTTPTransport(uds=str(socket_path))
    try:
        with httpx.Client(transport=transport, base_url="http://shop", timeout=10) as client:
            deadline = time.monotonic() + 30
            while not socket_path.exists() or not _answers(client):
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            for i in range(5):
                assert client.get(f"/items/{i + 1}").status_code == 200
            assert client.get("/boom").status_code == 500
            sent = {"/items/{item_id}": (5, 0), "/boom": (1, 1)}
            if mode == "code":
                deadline = time.monotonic() + 20
                while _figures(client.get("/monitoring/endpoints").json()) != sent:
                    assert time.monotonic() < deadline, client.get("/monitoring/endpoints").text
                    time.sleep(0.5)
            else:
                _endpoints_until(f"http://127.0.0.1:{api_port}", sent)
    finally:
        stop_group(proc, timeout_s=20)
    output = log.read_text()
    assert {name.rsplit(".", 1)[-1] for name in raised(output)} == {APP_ERROR}, output[-3000:]


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False
