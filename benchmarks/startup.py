"""Start-up time of the package and the CLI: each command in a new process, median of runs.

Measures, beside ``python -c pass`` for scale (same interpreter, same run):

* ``import otel_monitoring`` (target <= 0.5 s): the package alone, its heavy parts lazy;
* ``otel-monitoring --help`` (target <= 0.3 s);
* ``otel-monitoring analyze anomalies`` on a 5,000-row CSV (target <= 1.0 s wall, reading,
  scoring and writing included);
* for reference, the first use of ``otel_monitoring.instrument_app`` (FastAPI, SQLAlchemy,
  the OpenTelemetry SDK and the monitor load then), which has no target.

Each command runs once untimed (disk cache), then ``--runs`` times interleaved with the
others; the medians are wall-clock seconds of the whole process (the targets) and its CPU
seconds (user + system), which other load on the machine inflates less. Also reports which of
scipy, fastapi, sqlalchemy and opentelemetry.sdk ``import otel_monitoring`` loaded.

Usage::

    python benchmarks/startup.py [--runs 5] [--rows 5000]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS_S = {"import": 0.5, "help": 0.3, "analyze": 1.0}
HEAVY = ("scipy", "fastapi", "sqlalchemy", "opentelemetry.sdk")


def write_csv(path: Path, rows: int) -> None:
    """A seeded 5-min latency series with a daily cycle, noise and one spike (ISO timestamps)."""
    import numpy as np

    rng = np.random.default_rng(1)
    t0 = np.datetime64("2024-01-01T00:00:00")
    ts = t0 + np.arange(rows) * np.timedelta64(300, "s")
    day = np.sin(2 * np.pi * np.arange(rows) * 300 / 86400)
    values = 120 + 30 * day + rng.normal(0, 5, rows)
    values[rows * 3 // 4] += 200
    with path.open("w") as fh:
        fh.write("timestamp,value\n")
        fh.writelines(f"{t},{v:.3f}\n" for t, v in zip(ts.astype(str), values, strict=True))


def run_s(cmd: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one process running ``cmd`` to the end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="timed runs per command (median)")
    ap.add_argument("--rows", type=int, default=5000, help="rows of the CSV to analyze")
    args = ap.parse_args(argv)

    py = sys.executable
    cli = Path(py).parent / "otel-monitoring"
    if not cli.exists():
        sys.exit(f"error: {cli} not found (install the package in this interpreter's env)")
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        src, out = Path(tmp) / "latency.csv", Path(tmp) / "scored.csv"
        write_csv(src, args.rows)
        commands = {
            "pass": [py, "-c", "pass"],
            "import": [py, "-c", "import otel_monitoring"],
            "help": [str(cli), "--help"],
            "analyze": [str(cli), "analyze", "anomalies", str(src), "-o", str(out), "-q"],
            "instrument_app": [py, "-c", "import otel_monitoring; otel_monitoring.instrument_app"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for cmd in commands.values():
            run_s(cmd)
        for _ in range(args.runs):
            for name, cmd in commands.items():
                wall, used = run_s(cmd)
                times[name].append(wall)
                cpu[name].append(used)
        scored_rows = sum(1 for _ in out.open()) - 1

    probe = f"import sys, otel_monitoring; print(*[m for m in {HEAVY!r} if m in sys.modules])"
    loaded = subprocess.run([py, "-c", probe], capture_output=True, text=True, check=True).stdout
    base = statistics.median(times["pass"])
    labels = {
        "pass": "python -c pass",
        "import": "python -c 'import otel_monitoring'",
        "help": "otel-monitoring --help",
        "analyze": f"otel-monitoring analyze anomalies ({scored_rows:,} rows)",
        "instrument_app": "first use of otel_monitoring.instrument_app",
    }
    load = os.getloadavg()[0]
    print(
        f"median of {args.runs} cold processes, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPU(s), load average {load:.1f}"
    )
    print(f"{'command':<52} {'wall s':>7} {'x pass':>7} {'cpu s':>7} {'target':>7}")
    for name, label in labels.items():
        med = statistics.median(times[name])
        used = statistics.median(cpu[name])
        target = TARGETS_S.get(name)
        verdict = "" if target is None else f"{target:>6.1f}s {'ok' if med <= target else 'OVER'}"
        print(f"{label:<52} {med:>7.3f} {med / base:>7.1f} {used:>7.3f} {verdict}")
    print(f"import otel_monitoring loaded: {loaded.strip() or 'none of ' + ', '.join(HEAVY)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
