"""Servers the tests start run in their own process group, stopped as a group.

A server with several workers (uvicorn ``--workers``, gunicorn) can leave a worker behind when
its parent stops, for instance one the supervisor restarted while it was shutting down. Such
an orphan keeps serving: it holds ports, retries the side port, and answers later tests. So
every server starts a new session (``start_new_session=True``) and is stopped with its group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any

__all__ = ["start_group", "stop_group"]


def start_group(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **kwargs)`` as the leader of a new process group."""
    return subprocess.Popen(argv, start_new_session=True, **kwargs)


def stop_group(
    proc: subprocess.Popen[bytes], timeout_s: float = 30.0, sig: int = signal.SIGTERM
) -> None:
    """Send ``sig`` to the group, wait up to ``timeout_s`` for the leader, then SIGKILL
    whatever of the group is left (the leader too, if it has not stopped)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
