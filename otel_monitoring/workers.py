"""Zero-code mode under a server with several worker processes (uvicorn ``--workers``, gunicorn).

The first process that runs the zero-code hooks (the server's root: uvicorn's supervisor or
gunicorn's arbiter, or the only process of a single-process server) writes its pid into the
environment (``_OTEL_MONITORING_ROOT_PID``, inherited by the workers it spawns or forks). A
process whose parent is that root is a *worker*: unless ``OTEL_MONITORING_STORE`` is set, its
statistics go to a SQLite store in a runtime folder of that server,
``$XDG_RUNTIME_DIR/otel-monitoring-<uid>-<root pid>/`` (or the temporary directory when
``XDG_RUNTIME_DIR`` is unset), which every worker writes and reads, so any worker answers
with the totals of all of them. The root removes the folder when it exits.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = [
    "ROOT_PID_VARIABLE",
    "forks_workers",
    "is_worker",
    "mark_root",
    "runtime_dir",
    "shared_store_url",
]

#: Environment marker naming the server's root process (internal; not a setting).
ROOT_PID_VARIABLE = "_OTEL_MONITORING_ROOT_PID"


def _root_pid() -> int | None:
    try:
        return int(os.environ.get(ROOT_PID_VARIABLE, ""))
    except ValueError:
        return None


def is_worker() -> bool:
    """Whether this process is a worker started by the root that ran the hooks first."""
    root = _root_pid()
    return root is not None and root != os.getpid() and os.getppid() == root


def forks_workers() -> bool:
    """Whether this process is the root and will fork the workers after making the app:
    gunicorn's arbiter, which makes an app only with ``--preload`` (without it, and under
    uvicorn's supervisor, the workers import the app; a single-process server serves it
    itself). Its workers inherit its monitor, so it takes their shared store."""
    command = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path()
    gunicorn = command.name.startswith("gunicorn") or command.parent.name == "gunicorn"
    return gunicorn and _root_pid() == os.getpid()


def mark_root() -> None:
    """Make this process the root unless it is a worker of one; idempotent.

    The root removes its runtime folder (if any worker made one) when it exits.
    """
    if is_worker() or _root_pid() == os.getpid():
        return
    os.environ[ROOT_PID_VARIABLE] = str(os.getpid())
    atexit.register(_remove, runtime_dir(os.getpid()))


def runtime_dir(root_pid: int | None = None) -> Path:
    """The runtime folder of the server whose root has ``root_pid`` (default: this one's)."""
    pid = root_pid if root_pid is not None else (_root_pid() or os.getpid())
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"otel-monitoring-{os.getuid()}-{pid}"


def shared_store_url() -> str:
    """Create this server's runtime folder (mode 0700) and return its store's URL."""
    folder = runtime_dir()
    folder.mkdir(mode=0o700, exist_ok=True)
    return f"sqlite:///{folder / 'monitoring.db'}"


def _remove(folder: Path) -> None:
    with contextlib.suppress(OSError):
        if folder.is_dir() and os.getpid() == _root_pid():
            shutil.rmtree(folder, ignore_errors=True)
