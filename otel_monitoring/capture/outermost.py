"""Code mode's request middleware as the app's outermost layer, whenever its middleware is added.

``app.add_middleware`` puts a middleware outside those added before it, inside those added
after it, and always inside Starlette's ``ServerErrorMiddleware``. Measured there, a request
answered by a middleware added after ``instrument_app`` (a CORS preflight, an auth check's
401) was not counted at all, that middleware's time was not in the request's latency, and
a response the app's own ``@app.exception_handler(Exception)`` sent (``ServerErrorMiddleware``
runs it) was counted as a 500 whatever its status. :func:`wrap_outermost` wraps the whole
stack instead, as the contrib FastAPI instrumentation does in zero-code mode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette

__all__ = ["wrap_outermost"]


def wrap_outermost(app: Starlette, wrap: Callable[[Any], Any]) -> None:
    """Make ``wrap(stack)`` the ASGI app ``app`` serves through: ``stack`` is its whole
    middleware stack (``ServerErrorMiddleware``, every user middleware, the router), built
    when it first serves, with every middleware added by then. An app that serves already
    (instrumented from a startup hook) has its built stack wrapped at once."""
    build = app.build_middleware_stack

    def build_wrapped() -> Any:
        return wrap(build())

    app.build_middleware_stack = build_wrapped  # type: ignore[method-assign]
    if app.middleware_stack is not None:
        app.middleware_stack = wrap(app.middleware_stack)
