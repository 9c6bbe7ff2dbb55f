"""Exclusions are exact paths: ``/health`` leaves out ``/health``, never ``/healthcare/items``.

Code mode compares the request path with the set (the middleware). Zero-code mode hands the
list to the contrib FastAPI instrumentation, which takes regexes and searches each anywhere in
``scheme://host/path``; :func:`excluded_url_patterns` anchors them to the whole path. When the
contrib is off (``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=fastapi``), FastAPI's own telemetry
measures the requests and takes a predicate on the ASGI scope: :func:`excluded_request`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any

from otel_monitoring.capture.routes import app_path

__all__ = ["excluded_request", "excluded_url_patterns"]

_AUTHORITY = r"^[a-z][a-z0-9+.-]*://[^/]*"


def excluded_url_patterns(paths: Iterable[str], prefix: str | None = None) -> str:
    """``OTEL_PYTHON_FASTAPI_EXCLUDED_URLS`` for exact ``paths`` (and everything under ``prefix``).

    The contrib instrumentation searches each regex anywhere in ``scheme://host/path`` (no
    query string); these are anchored to the whole path, so ``/health`` excludes ``/health``
    only, not ``/healthcare/items``.
    """
    patterns = [f"{_AUTHORITY}{re.escape(path)}$" for path in paths]
    if prefix is not None:
        patterns.append(f"{_AUTHORITY}{re.escape(prefix)}(/.*)?$")
    # The contrib splits the variable on commas; an escaped path never has a bare one left.
    return ",".join(p.replace(",", r"\x2c") for p in patterns)


def excluded_request(
    paths: Iterable[str], prefix: str
) -> Callable[[MutableMapping[str, Any]], bool]:
    """Whether a request (its ASGI scope) is left out: its path within the app (behind a
    proxy's root path too) is one of ``paths``, or ``prefix`` (the monitoring API) or under
    it. O(1) per request."""
    exact = frozenset((*paths, prefix))
    under = prefix.rstrip("/") + "/"

    def excluded(scope: MutableMapping[str, Any]) -> bool:
        path = app_path(scope)
        return path in exact or path.startswith(under)

    return excluded
