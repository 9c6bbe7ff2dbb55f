"""Work a process does when it exits, in the processes where exit handlers never run.

A worker that ``multiprocessing`` forked ends with ``os._exit``: it runs no ``atexit``
handler, only ``multiprocessing``'s own finalizers. Granian forks its workers so: served
without lifespan (``--interface asginl``) there is no app stop to drain at, and a stop lost
every request since the last collection (a minute of statistics, the unwritten buckets of a
shared store, the spans in the batch queue). :func:`at_exit` registers with both.

Guarantees: ``callback`` runs at most once per exit path it is registered with; callers make
it idempotent (it may run from both in an ordinary process) and bounded in time.
"""

from __future__ import annotations

import atexit
import multiprocessing.util
from collections.abc import Callable

__all__ = ["at_exit"]

#: Runs before ``multiprocessing``'s default finalizers (priority 0: its queues' threads).
_PRIORITY = 10


def at_exit(callback: Callable[[], object]) -> None:
    """Call ``callback`` when this process exits: from ``atexit``, and from
    ``multiprocessing``'s finalizers in a worker it started (forked or spawned)."""
    atexit.register(callback)
    multiprocessing.util.Finalize(None, callback, exitpriority=_PRIORITY)
