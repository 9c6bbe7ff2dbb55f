"""What a forked child must redo: threads do not survive ``fork``.

``gunicorn --preload`` imports the app, and so runs ``instrument_app``, in the arbiter, then
forks its workers: each worker inherits the monitor but none of its threads, so no worker
collected, wrote a shared store file or evaluated an alert (its numbers moved only when the
API asked, and alerts never fired). :func:`redo_in_forked_child` registers, per object, what
a forked child runs to restart that object's threads (as the OpenTelemetry SDK's own periodic
readers do), and what the parent runs around the fork so that no lock of ours is copied held.

Guarantees: the callbacks hold only a weak reference (a collected object is skipped), and a
callback that raises is logged, never raised into ``fork``.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable
from typing import TypeVar

__all__ = ["redo_in_forked_child"]

_logger = logging.getLogger("otel_monitoring")
_T = TypeVar("_T")


def redo_in_forked_child(
    owner: _T,
    child: Callable[[_T], None],
    before: Callable[[_T], None] | None = None,
    parent: Callable[[_T], None] | None = None,
) -> None:
    """Run ``child(owner)`` in each forked child, ``before(owner)`` in the parent before the
    fork and ``parent(owner)`` in it after, for as long as ``owner`` lives."""
    ref = weakref.ref(owner)

    def call(fn: Callable[[_T], None] | None) -> Callable[[], None]:
        def run() -> None:
            target = ref()
            if fn is None or target is None:
                return
            try:
                fn(target)
            except Exception:  # never into fork
                _logger.warning("otel-monitoring: at fork, %s failed", fn.__name__, exc_info=True)

        return run

    os.register_at_fork(
        before=call(before), after_in_parent=call(parent), after_in_child=call(child)
    )
