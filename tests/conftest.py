"""Shared fixtures: free ports, real uvicorn subprocesses, a shop app in process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from app_modes import APP_MODES
from processes import start_group, stop_group

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(
    url: str, timeout_s: float = 60.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll ``url`` until it answers (a readiness wait, bounded by ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {url}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")


@pytest.fixture(autouse=True)
def _restore_environ() -> Iterator[None]:
    """Give each test the environment it started with, whatever ran in this process."""
    saved = dict(os.environ)
    yield
    if dict(os.environ) != saved:
        os.environ.clear()
        os.environ.update(saved)


class Server:
    """A subprocess serving on 127.0.0.1; ``url`` is its base URL."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    #: Where the monitoring API answers: the app's port, or the side port in zero-code mode.
    api = ""


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start ``argv`` (a command) with ``env`` extras; stopped at teardown."""
    started: list[Server] = []

    def start(
        argv: list[str], env: dict[str, str], port: int, ready_path: str = "/healthz"
    ) -> Server:
        log = tmp_path / f"server-{port}.log"
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        # the test apps (tests.*) import from the checkout, whatever the install mode
        paths = [full_env.get("PYTHONPATH", ""), str(ROOT)]
        full_env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        proc = start_group(
            argv, env=full_env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=tmp_path
        )
        server = Server(proc, port, log)
        started.append(server)
        try:
            wait_http(server.url + ready_path, proc=proc)
        except Exception:
            raise RuntimeError(f"server failed to start:\n{server.output()}") from None
        return server

    yield start
    for server in started:
        stop_group(server.proc, timeout_s=10)


def uvicorn_argv(app: str, port: int, *prefix: str) -> list[str]:
    """Command line running ``app`` under uvicorn on 127.0.0.1:``port``."""
    bindir = Path(sys.executable).parent
    uvicorn = [str(bindir / "uvicorn")]
    return [*prefix, *uvicorn, app, "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]


@pytest.fixture
def port() -> int:
    """A free port on 127.0.0.1."""
    return free_port()


@pytest.fixture
def shop_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a shop subprocess: its own SQLite file, fast collection."""
    return {
        "SHOP_DB": str(tmp_path / "shop.db"),
        "OTEL_MONITORING_INTERVAL": "1s",
        "OTEL_SERVICE_NAME": "shop",
    }


@pytest.fixture
def uvicorn_cmd() -> Callable[..., list[str]]:
    """Build a uvicorn command line (see :func:`uvicorn_argv`)."""
    return uvicorn_argv


@pytest.fixture
def another_port() -> Callable[[], int]:
    """Call to get one more free port."""
    return free_port


@pytest.fixture
def serve_app(start_server: Callable[..., Server], port: int) -> Callable[..., Server]:
    """Call ``serve_app(app, mode, env, ready_path)`` to run the test app ``app``
    (``module:attr``) under uvicorn in one of ``app_modes.APP_MODES``; its ``api`` is set."""

    def serve(app: str, mode: str, env: dict[str, str], ready_path: str) -> Server:
        assert mode in APP_MODES, mode
        env = {
            "OTEL_MONITORING_INTERVAL": "1s",
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_TRACES_EXPORTER": "console" if mode == "code-spans" else "none",
            **env,
        }
        prefix: tuple[str, ...] = ()
        api_port = port
        if mode == "zero-code":
            api_port = free_port()
            env.update(TEST_APP_ZERO_CODE="1", OTEL_MONITORING_PORT=str(api_port))
            prefix = (str(Path(sys.executable).parent / "opentelemetry-instrument"),)
        server = start_server(uvicorn_argv(app, port, *prefix), env, port, ready_path=ready_path)
        server.api = f"http://127.0.0.1:{api_port}"
        return server

    return serve
