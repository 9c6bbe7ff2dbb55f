"""The metric reader across ``fork``: a forked child collects on its own threads, and a child
that forks again (a worker's ``multiprocessing`` pool with the fork start method) neither
stalls the fork nor stops its own collections."""

from __future__ import annotations

import subprocess
import sys

_SCRIPT = """
import os, sys, time
from opentelemetry.sdk.metrics import MeterProvider
from otel_monitoring.collect.reader import MonitoringMetricReader

collected = []
reader = MonitoringMetricReader(sink=collected.append, interval_s=0.05)
provider = MeterProvider(metric_readers=[reader])
counter = provider.get_meter("t").create_counter("c")
reader.start()
time.sleep(0.2)
worker = os.fork()
if worker == 0:  # a worker forked from the arbiter (gunicorn --preload)
    counter.add(1)
    started = time.monotonic()
    helper = os.fork()  # the worker forks a helper in turn
    if helper == 0:
        os._exit(0)
    os.waitpid(helper, 0)
    fork_s = time.monotonic() - started
    before = len(collected)
    for _ in range(50):  # requests, so each collection has something to hand over
        counter.add(1)
        time.sleep(0.01)
    after = len(collected)
    print(f"fork {fork_s:.2f} s, collections {before} -> {after}", flush=True)
    os._exit(0 if fork_s < 1.0 and after >= before + 3 else 1)
_, status = os.waitpid(worker, 0)
reader.shutdown()
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_a_worker_that_forks_again_keeps_collecting() -> None:
    argv = [sys.executable, "-W", "ignore::DeprecationWarning", "-c", _SCRIPT]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
