"""Access control of the monitoring API: keys, roles, rate limits and body size.

Every route depends on :meth:`Access.require` with its limit name; the dependency
authenticates, rate-limits (per route template and per key or client address, also for
failed attempts) and then enforces the role, answering JSON errors that say what to do.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from otel_monitoring._compat import set_request_body
from otel_monitoring.api.auth import (
    ApiKeys,
    Principal,
    Role,
    client_address,
    is_local_client,
)
from otel_monitoring.api.ratelimit import DEFAULT_LIMITS, RateLimiter
from otel_monitoring.clock import Clock
from otel_monitoring.config import Settings
from otel_monitoring.types import Window

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_ECHO_CHARS",
    "MAX_LIMIT",
    "Access",
    "LimitParam",
    "LimitedBodyRoute",
    "MethodParam",
    "RouteDeps",
    "RouteParam",
    "WindowParam",
    "echo",
    "off_loop",
    "resource_router",
    "strict_json",
]

T = TypeVar("T")

MAX_BODY_BYTES = 64 * 1024
#: How much of a request's input an error body repeats, in characters.
MAX_ECHO_CHARS = 100
_MAX_VALIDATION_ERRORS = 10

ENABLE_HINT = (
    "set OTEL_MONITORING_API_KEY=<secret>:admin on the server and send"
    " 'Authorization: Bearer <secret>'"
)

LOCAL_ONLY = (
    "with no API key configured, the monitoring API answers clients on this host only:"
    " set OTEL_MONITORING_API_KEY=<secret>:read (or :admin) and send"
    " 'Authorization: Bearer <secret>'"
)


class Access:
    """Builds the per-route dependency; one instance per router."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.keys = ApiKeys(settings.api_keys)
        self.limiter = RateLimiter(clock, dict(settings.rate_limits))
        self.trusted = settings.trusted_proxies

    def require(
        self, name: str, *, mutating: bool = False
    ) -> Callable[[Request, Response], Coroutine[Any, Any, Principal]]:
        """Dependency for the route ``name`` (a key of the rate-limit table)."""

        async def dependency(request: Request, response: Response) -> Principal:
            peer = request.client.host if request.client else None
            address = client_address(peer, request.headers.get("x-forwarded-for"), self.trusted)
            header = request.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            principal = self.keys.authenticate(
                token.strip() if scheme.lower() == "bearer" else None
            )
            decision = self.limiter.hit(name, principal.name if principal else f"ip:{address}")
            headers = {
                "X-RateLimit-Limit": str(decision.limit),
                "X-RateLimit-Remaining": str(decision.remaining),
                "X-RateLimit-Reset": str(int(decision.reset_s)),
            }
            if not decision.allowed:
                headers["Retry-After"] = str(max(1, int(decision.retry_after_s)))
                raise HTTPException(
                    status_code=429,
                    detail=f"rate limit of {decision.limit} requests per period exceeded for"
                    f" {name}; retry after {headers['Retry-After']} s",
                    headers=headers,
                )
            response.headers.update(headers)
            if not self.keys.configured and name != "health":
                # No key: only clients on this host may read (statements, error samples).
                forwarded = address == peer and (
                    "x-forwarded-for" in request.headers or "forwarded" in request.headers
                )
                if not is_local_client(address, forwarded):
                    raise HTTPException(status_code=403, detail=LOCAL_ONLY)
            if mutating:
                return self._mutating(principal, header)
            if self.keys.configured and name != "health" and principal is None:
                raise _unauthorized(header)
            return principal or Principal(f"ip:{address}", None)

        return dependency

    def _mutating(self, principal: Principal | None, header: str) -> Principal:
        if not self.keys.has_admin:
            raise HTTPException(
                status_code=403,
                detail=f"mutating endpoints are disabled because no admin key is configured: "
                f"{ENABLE_HINT}",
            )
        if principal is None:
            raise _unauthorized(header)
        if principal.role is not Role.ADMIN:
            raise HTTPException(
                status_code=403, detail="this key has the read role; mutating needs an admin key"
            )
        return principal


def _unauthorized(header: str) -> HTTPException:
    reason = "invalid API key" if header else "an API key is required"
    return HTTPException(
        status_code=401,
        detail=f"{reason}: send 'Authorization: Bearer <key>' (keys are set with"
        " OTEL_MONITORING_API_KEY)",
        headers={"WWW-Authenticate": "Bearer"},
    )


def echo(value: str, limit: int = MAX_ECHO_CHARS) -> str:
    """``value`` as an error body repeats it: quoted, cut to ``limit`` characters (``…``)."""
    if len(value) > limit:
        return repr(value[:limit]) + "…"
    return repr(value)


def _bounded_validation_errors(errors: Any) -> list[dict[str, Any]]:
    """FastAPI's 422 ``detail`` with what it repeats of the input cut: at most 10 errors,
    each ``input`` and ``loc`` part cut to :data:`MAX_ECHO_CHARS` characters (messages and
    their context, which name what is expected, to 300)."""

    def cut(value: Any, limit: int = MAX_ECHO_CHARS) -> Any:
        if isinstance(value, (int, float, bool)) or value is None:
            return value
        text = value if isinstance(value, str) else str(value)[: limit + 1]
        return text[:limit] + "…" if len(text) > limit else text

    bounded = []
    for error in list(errors)[:_MAX_VALIDATION_ERRORS]:
        item = {key: cut(error.get(key), 300) for key in ("type", "msg") if key in error}
        item["loc"] = [cut(part) for part in list(error.get("loc", ()))[:5]]
        if "input" in error:
            item["input"] = cut(error["input"])
        if isinstance(error.get("ctx"), dict):
            item["ctx"] = {str(k)[:MAX_ECHO_CHARS]: cut(v, 300) for k, v in error["ctx"].items()}
        bounded.append(item)
    return bounded


class LimitedBodyRoute(APIRoute):
    """An ``APIRoute`` that refuses request bodies over 64 KiB with a 413 JSON error and
    bodies that are not strict JSON with a 422 naming the reason.

    Checks ``Content-Length`` first, then reads the body itself counting streamed (chunked)
    bytes, so a body without a length cannot exceed the limit either. Python's ``json``
    accepts ``NaN``, ``Infinity`` and lone UTF-16 surrogates (``"\\ud800"``), which RFC 8259
    excludes and which cannot be stored or echoed back as UTF-8: such bodies are refused
    here, before the route acts. Validation errors of these routes are rendered here too, so
    an odd input echoed in the error can never turn a 422 into a 500 (the host app's own
    handlers are left alone). Their 422 bodies repeat at most
    :data:`MAX_ECHO_CHARS` characters of each invalid input (FastAPI's repeat the whole input).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            length = request.headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
                return _too_large()
            if request.method in ("POST", "PUT", "PATCH"):
                chunks: list[bytes] = []
                received = 0
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > MAX_BODY_BYTES:
                        return _too_large()
                    chunks.append(chunk)
                body = b"".join(chunks)
                if not body:
                    set_request_body(request, body, has_json=False)
                else:
                    try:
                        parsed = strict_json(body)
                    except ValueError as exc:
                        return JSONResponse({"detail": f"invalid JSON body: {exc}"}, 422)
                    set_request_body(request, body, parsed, has_json=True)
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return JSONResponse(
                    {"detail": _printable(_bounded_validation_errors(exc.errors()))}, 422
                )

        return limited


def strict_json(body: bytes) -> Any:
    """Parse an RFC 8259 JSON document (UTF-8).

    Raises:
        ValueError: not UTF-8, not JSON, or holding ``NaN``/``Infinity`` or a lone
            surrogate; the message says which and where.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 at byte {exc.start}") from None

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number (RFC 8259)")

    try:
        value = json.loads(text, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    _no_surrogates(value)
    return value


def _no_surrogates(value: Any) -> None:
    pending = [value]  # iterative: a deeply nested document must not overflow the stack
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ValueError(
                    f"lone UTF-16 surrogate {item[exc.start]!r} in a string (not Unicode text)"
                ) from None
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def _printable(value: Any) -> Any:
    """``value`` with non-finite floats as strings and unencodable text escaped."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(item) for item in value]
    return value


def _too_large() -> JSONResponse:
    return JSONResponse(
        {"detail": f"request body larger than {MAX_BODY_BYTES} bytes"}, status_code=413
    )


# -- shared by the per-resource routers (api/*.py) ----------------------------------------------
#: The largest ``limit`` any list route takes.
MAX_LIMIT = 1000

WindowParam = Annotated[Window, Query(description="Look-back window: 1m, 5m, 1h, 24h or all.")]
LimitParam = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Maximum items returned.")]
RouteParam = Annotated[
    str | None, Query(max_length=512, description="Route template, e.g. /items/{item_id}.")
]
MethodParam = Annotated[str | None, Query(max_length=16, pattern=r"^[A-Za-z_]+$")]


async def off_loop(fn: Callable[[], T]) -> T:
    """Run ``fn`` on a worker thread: statistics queries take the store lock and may
    collect (and, with a shared store, touch its file), so they stay off the event loop."""
    return await asyncio.to_thread(fn)


@dataclass(frozen=True, slots=True)
class RouteDeps:
    """One FastAPI dependency per rate-limit name (``user``); the mutating routes' also
    need an admin key (``admin``)."""

    user: dict[str, Any]
    admin: dict[str, Any]

    @classmethod
    def of(cls, access: Access) -> RouteDeps:
        """The dependencies of every limit name in :data:`DEFAULT_LIMITS`."""
        return cls(
            user={name: Depends(access.require(name)) for name in DEFAULT_LIMITS},
            admin={
                name: Depends(access.require(name, mutating=True))
                for name in ("resolve", "detect", "cleanup")
            },
        )


def resource_router() -> APIRouter:
    """An empty router for one resource; ``make_router`` includes it in the monitoring API
    (which adds the tags, error responses and schema listing)."""
    return APIRouter(route_class=LimitedBodyRoute)
