"""Throughput under a real uvicorn on loopback, measured with wrk (Debian package ``wrk``).

Starts one uvicorn process per variant of the overhead benchmark's app (``benchmarks/
overhead.py``), loads ``GET /items/1`` with wrk for a fixed time, and prints requests per
second and the ratio to ``bare``. Variants run one after another, ``--rounds`` times,
interleaved; the median of the rounds is reported.

Usage::

    python benchmarks/throughput.py [--seconds 10] [--connections 32] [--rounds 3]

Target (issue 2): ``otel-monitoring`` >= 0.6x bare.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
VARIANTS = (
    "bare",
    "otel-stock",
    "otel-monitoring",
    "otel-monitoring-no-backend",
    "prometheus-fastapi-instrumentator",
)


def app_for_variant() -> object:
    """Used by uvicorn in the child process: ``throughput:app_for_variant`` (factory)."""
    sys.path.insert(0, str(HERE))
    import overhead

    return overhead.VARIANTS[os.environ["BENCH_VARIANT"]]()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_variant(variant: str, seconds: int, connections: int) -> float:
    port = _free_port()
    env = {**os.environ, "BENCH_VARIANT": variant, "PYTHONPATH": str(HERE)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "throughput:app_for_variant",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/items/1", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{variant}: server did not start") from None
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/items/1"
        subprocess.run(
            ["wrk", "-t1", "-c", str(connections), "-d2s", url], capture_output=True, check=True
        )
        out = subprocess.run(
            ["wrk", "-t1", "-c", str(connections), f"-d{seconds}s", url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        match = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if match is None:
            raise RuntimeError(out)
        return float(match.group(1))
    finally:
        server.terminate()
        server.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk")
    variants = ["bare", *(v for v in args.only if v != "bare")]
    results: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for variant in variants:
            results[variant].append(_run_variant(variant, args.seconds, args.connections))
    base = statistics.median(results["bare"])
    print(f"{'variant':36} {'req/s (median)':>15} {'x bare':>8}")
    for variant in variants:
        value = statistics.median(results[variant])
        print(f"{variant:36} {value:15.0f} {value / base:8.2f}")


if __name__ == "__main__":
    main()
