"""``at_exit`` in the processes ``multiprocessing`` starts, which end without exit handlers."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from otel_monitoring.exit_hooks import at_exit


def _child(path: str) -> None:
    at_exit(lambda: Path(path).write_text("ran"))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_runs_when_a_multiprocessing_worker_ends(method: str, tmp_path: Path) -> None:
    """A forked child ends with ``os._exit`` (granian's workers): before, nothing ran."""
    marker = tmp_path / "marker"
    process = multiprocessing.get_context(method).Process(target=_child, args=(str(marker),))
    process.start()
    process.join(timeout=30)
    assert process.exitcode == 0
    assert marker.read_text() == "ran"
