"""What Prometheus scrapers cost the host app: its p99 latency with and without scrapers.

Starts the shop under a real uvicorn on loopback with ``OTEL_MONITORING_PROMETHEUS_EXPORT``
and an API key, then, in the same run:

1. ``--clients`` concurrent clients request ``GET /items/{id}`` for ``--seconds`` (baseline);
2. the same load while ``--scrapers`` concurrent clients scrape ``GET /metrics`` (with the
   key) as fast as they are answered.

Prints the host app's p50/p99 in each phase, the ratio of the p99s, the scrapes answered
and the scrapes' status codes. ``--lift-limit`` lifts the rate limit of ``/metrics`` (when
the code has one), so the figure shows the cost of serving scrapes without the limiter's
refusals; by default the shipped limit applies (all scrapers share the one key's budget).

Usage::

    python benchmarks/scrape_load.py [--seconds 10] [--clients 8] [--scrapers 20] [--lift-limit]

To compare with an older version, run it with ``PYTHONPATH`` set to that version's tree.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

KEY = "bench-scrape-key-1"


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(port: int, directory: Path, lift_limit: bool) -> subprocess.Popen[bytes]:
    from otel_monitoring.api.ratelimit import DEFAULT_LIMITS

    env = {
        **os.environ,
        "SHOP_INSTRUMENT": "1",
        "SHOP_DB": str(directory / "shop.db"),
        "OTEL_MONITORING_PROMETHEUS_EXPORT": "true",
        "OTEL_MONITORING_API_KEY": f"{KEY}:read",
    }
    if lift_limit and "prometheus" in DEFAULT_LIMITS:
        env["OTEL_MONITORING_RATE_LIMITS"] = "prometheus=100000000/minute"
    argv = [sys.executable, "-m", "uvicorn", "otel_monitoring.demo.shop:app"]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    log = (directory / "server.log").open("wb")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit(f"the server did not start: {(directory / 'server.log').read_text()}")


async def _load(base: str, clients: int, scrapers: int, seconds: float) -> dict[str, object]:
    stop = time.monotonic() + seconds
    latencies: list[float] = []
    scrapes: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=clients + scrapers + 4)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:

        async def app_client(i: int) -> None:
            n = 0
            while time.monotonic() < stop:
                start = time.perf_counter()
                answer = await client.get(f"/items/{1 + (i + n) % 20}")
                latencies.append(time.perf_counter() - start)
                assert answer.status_code in (200, 404), answer.status_code
                n += 1

        async def scraper() -> None:
            headers = {"Authorization": f"Bearer {KEY}"}
            while time.monotonic() < stop:
                scrapes[(await client.get("/metrics", headers=headers)).status_code] += 1

        await asyncio.gather(
            *(app_client(i) for i in range(clients)), *(scraper() for _ in range(scrapers))
        )
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "n": len(latencies),
        "scrapes": dict(scrapes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--scrapers", type=int, default=20)
    parser.add_argument("--lift-limit", action="store_true")
    args = parser.parse_args()
    import otel_monitoring

    print(f"otel_monitoring from {Path(otel_monitoring.__file__).parent}")
    with tempfile.TemporaryDirectory(prefix="scrape-load-") as tmp:
        port = _free_port()
        proc = _start(port, Path(tmp), args.lift_limit)
        try:
            base = f"http://127.0.0.1:{port}"
            asyncio.run(_load(base, args.clients, 0, 2.0))  # warm-up
            cpu = _cpu_s(proc.pid)
            quiet = asyncio.run(_load(base, args.clients, 0, args.seconds))
            quiet["cpu_s"], cpu = _cpu_s(proc.pid) - cpu, _cpu_s(proc.pid)
            busy = asyncio.run(_load(base, args.clients, args.scrapers, args.seconds))
            busy["cpu_s"] = _cpu_s(proc.pid) - cpu
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    for name, phase in (("no scrapers", quiet), (f"{args.scrapers} scrapers", busy)):
        print(
            f"{name:>12}: host app p50 {phase['p50_ms']:.1f} ms, p99 {phase['p99_ms']:.1f} ms"
            f" over {phase['n']} requests; server CPU {phase['cpu_s']:.1f} s;"
            f" scrapes by status {phase['scrapes']}"
        )
    scrapes = sum(busy["scrapes"].values())  # type: ignore[attr-defined]
    extra_cpu = float(busy["cpu_s"]) - float(quiet["cpu_s"])  # type: ignore[arg-type]
    if scrapes:
        print(f"server CPU added per scrape: {1000 * extra_cpu / scrapes:.1f} ms")
    ratio = float(busy["p99_ms"]) / float(quiet["p99_ms"])  # type: ignore[arg-type]
    print(f"p99 with scrapers / without: {ratio:.2f}x")


if __name__ == "__main__":
    main()
