"""Route templates of requests, the same in both modes.

* :func:`route_template` names the route that serves a request with its full path template,
  through mounts: ``/v2/pong`` for a route of a FastAPI app mounted at ``/v2`` (middleware
  wrapping a mounted app is looked through), ``/static/{path}`` for a mount of an app without
  routes (``StaticFiles``), ``/docs`` for FastAPI's documentation routes. ``None`` means no
  route matched (the request is counted as ``<unmatched>``); a mounted app that has routes
  and matches none of them is unmatched too.
* :func:`included_path` gives the full template of the route Starlette matched, by the
  route object (cheap: an index per app): FastAPI (0.137.2 and later) keeps an included
  router's routes nested and records in the scope the route object itself, whose path lacks
  the prefix ``include_router`` gave it (``/users/{id}`` where ``/v1/users/{id}`` is served).
* :data:`MEASURED` marks a request scope once the outermost instrumented app measures it, so
  a mounted app (instrumented too) never counts the same request a second time.

Matching uses Starlette's public ``Route.matches`` on a small copy of the scope (never the
request's own scope), so it has no side effect on the request.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterable, Iterator, MutableMapping, Sequence
from typing import Any

from starlette.routing import BaseRoute, Host, Match, Mount

from otel_monitoring._compat import matchable_routes, original_route

__all__ = ["FASTAPI_TELEMETRY", "MEASURED", "app_path", "included_path", "route_template"]

Scope = MutableMapping[str, Any]

#: Scope key set by the outermost instrumented app; inner (mounted) apps then measure nothing.
MEASURED = "otel_monitoring.measured"

#: FastAPI's native telemetry (FastAPI >= 0.16x) skips an app when this key is in the scope;
#: its own middleware sets it for the same purpose (keeping mounted apps from measuring).
FASTAPI_TELEMETRY = "fastapi.telemetry"

_MAX_DEPTH = 16  # nested mounts followed at most (a cycle cannot loop forever)


class _PathIndex:
    """An app's routes by identity: each route object's full template, or None when it is
    served at several (one router included under two prefixes) or is not the app's own (a
    host's); ``size``: the app's top-level route count when built."""

    __slots__ = ("paths", "size")

    def __init__(self, app: object) -> None:
        top: Sequence[Any] = getattr(app, "routes", None) or ()
        self.size = len(top)
        self.paths: dict[int, tuple[object, str | None]] = {}  # the route kept: its id stays
        for context in matchable_routes(top):
            route, path = original_route(context), getattr(context, "path", None)
            if not isinstance(path, str) or isinstance(route, (Mount, Host)):
                continue
            known = self.paths.get(id(route))
            self.paths[id(route)] = (route, path if known is None or known[1] == path else None)


_indexes: weakref.WeakKeyDictionary[object, _PathIndex] = weakref.WeakKeyDictionary()


def included_path(app: object, route: object) -> str | None:
    """The full template at which ``app`` serves ``route`` (the route object Starlette
    matched, ``scope["route"]``): its path with the prefixes of the routers that include it.
    ``None`` when ``route`` is not one of ``app``'s own routes or is served at several
    templates (the caller matches the request again). The index is built on first use, and
    again when the app's top-level routes change or an unknown route is asked for (a route
    added to an included router); a route still unknown then is remembered as such."""
    top = getattr(app, "routes", None) or ()
    with contextlib.suppress(TypeError):  # an app that cannot be weakly referenced: no index
        index = _indexes.get(app)
        if index is None or index.size != len(top) or id(route) not in index.paths:
            index = _PathIndex(app)
            index.paths.setdefault(id(route), (route, None))  # asked for, not the app's own
            _indexes[app] = index
        known = index.paths.get(id(route))
        return known[1] if known is not None and known[0] is route else None
    return None


def app_path(scope: Scope) -> str:
    """The request's path within the app: without the root path a proxy's prefix gives
    (``uvicorn --root-path /api`` puts ``/api/healthz`` in the scope for ``/healthz``), so
    excluded paths and the monitoring API are recognised behind such a proxy too."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


def _routes(container: object) -> Iterator[Any]:
    routes: Sequence[BaseRoute] = getattr(container, "routes", None) or ()
    return matchable_routes(routes)


def _routed_app(mount: Any) -> object:
    """The mounted app that has routes, under any middleware wrapping it (``.app``)."""
    app = getattr(mount, "app", None)
    for _ in range(_MAX_DEPTH):
        if app is None or getattr(app, "routes", None) is not None:
            return app
        app = getattr(app, "app", None)
    return None


def route_template(app: object, scope: Scope, root_path: str | None = None) -> str | None:
    """The full path template of the route of ``app`` that serves ``scope``; ``None`` if none.

    ``root_path`` is the request's root path as ``app`` received it (default: the scope's);
    it prefixes the template, as the mount paths do. A route that matches the path but not the
    method (405) still names the request.
    """
    root = scope.get("root_path", "") if root_path is None else root_path
    probe: dict[str, Any] = {
        "type": scope.get("type", "http"),
        "path": scope.get("path", ""),
        "root_path": root,
        "method": scope.get("method", "GET"),
        "headers": scope.get("headers", ()),
        "path_params": {},
    }
    return _resolve(_routes(app), probe, str(root), 0)


def _resolve(routes: Iterable[Any], scope: dict[str, Any], prefix: str, depth: int) -> str | None:
    partial: tuple[Any, dict[str, Any]] | None = None
    for route in routes:
        try:
            match, child = route.matches(scope)
        except Exception:  # a route that cannot judge this request does not serve it
            continue
        if match is Match.FULL:
            return _template(route, {**scope, **child}, prefix, depth)
        if match is Match.PARTIAL and partial is None:
            partial = (route, child)
    if partial is not None:
        return _template(partial[0], {**scope, **partial[1]}, prefix, depth)
    return None


def _template(route: Any, scope: dict[str, Any], prefix: str, depth: int) -> str | None:
    original = original_route(route)
    path = getattr(route, "path", None)
    if isinstance(original, Host):
        return _resolve(_routes(route), scope, prefix, depth + 1) if depth < _MAX_DEPTH else None
    if not isinstance(path, str):
        return None
    if isinstance(original, Mount):
        inner = list(_routes(_routed_app(route)))
        if not inner:  # an app without routes (StaticFiles, any ASGI app): the mount is the route
            return f"{prefix}{path}/{{path}}"
        if depth >= _MAX_DEPTH:
            return None
        return _resolve(inner, scope, prefix + path, depth + 1)
    return prefix + path
