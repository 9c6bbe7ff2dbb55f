"""Fleet fixtures: a real Prometheus on loopback scraping shop instances' ``/metrics``."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

PROMETHEUS_BIN = "/usr/bin/prometheus"
FLEET_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PrometheusServer:
    """A Prometheus process on 127.0.0.1 scraping ``targets`` every second."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _config(targets: list[str], bearer: str | None = None) -> str:
    listed = ", ".join(f"'{target}'" for target in targets)
    auth = f"    authorization:\n      credentials: '{bearer}'\n" if bearer else ""
    config = "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
    if not targets:  # remote write only
        return config
    return (
        config + "scrape_configs:\n"
        "  - job_name: shop\n"
        f"{auth}"
        f"    static_configs:\n      - targets: [{listed}]\n"
    )


@pytest.fixture
def prometheus_bin() -> str:
    """Path of the prometheus binary; a missing one FAILS the test (never skips)."""
    path = shutil.which("prometheus") or (PROMETHEUS_BIN if Path(PROMETHEUS_BIN).exists() else None)
    if path is None:
        pytest.fail(
            "the fleet tests need a real Prometheus: install the Debian package with"
            " `apt-get install -y prometheus` (binary /usr/bin/prometheus); `make test` installs it"
        )
    return path


@pytest.fixture
def start_prometheus(
    prometheus_bin: str, tmp_path: Path, another_port: Callable[[], int]
) -> Iterator[Callable[..., PrometheusServer]]:
    """Start Prometheus (never as a service) with its own config and TSDB in ``tmp_path``:
    ``start(targets, *extra_flags, bearer=None)`` scrapes ``targets`` (none: remote write
    only), sending ``bearer`` as the API key when scraping."""
    started: list[PrometheusServer] = []

    def start(targets: list[str], *flags: str, bearer: str | None = None) -> PrometheusServer:
        port = another_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(_config(targets, bearer))
        log = tmp_path / "prometheus.log"
        proc = subprocess.Popen(
            [
                prometheus_bin,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
                *flags,
            ],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
        server = PrometheusServer(proc, f"http://127.0.0.1:{port}", log)
        started.append(server)
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {proc.returncode}:\n{server.output()}")
            try:
                if httpx.get(server.url + "/-/ready", timeout=1.0).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"prometheus was not ready within 60 s:\n{server.output()}")

    yield start
    for server in started:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


@pytest.fixture
def fleet(
    start_server: Callable[..., object],
    start_prometheus: Callable[..., object],
    shop_env: dict[str, str],
    uvicorn_cmd: Callable[..., list[str]],
    another_port: Callable[[], int],
    tmp_path: Path,
) -> tuple[list[str], str]:
    """Two shop instances exposing /metrics and a Prometheus scraping both: (urls, prom url)."""
    urls = []
    for name in ("a", "b"):
        port = another_port()
        env = {
            **shop_env,
            "SHOP_DB": str(tmp_path / f"shop-{name}.db"),
            "SHOP_INSTRUMENT": "1",
            "OTEL_MONITORING_PROMETHEUS_EXPORT": "true",
        }
        server = start_server(uvicorn_cmd("otel_monitoring.demo.shop:app", port), env, port)
        urls.append(server.url)  # type: ignore[attr-defined]
    prometheus = start_prometheus([url.removeprefix("http://") for url in urls])
    return urls, prometheus.url  # type: ignore[attr-defined]
