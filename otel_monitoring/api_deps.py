"""Access control of the monitoring API: keys, roles, rate limits and body size.

Every route depends on :meth:`Access.require` with its limit name; the dependency
authenticates, rate-limits (per route template and per key or client address, also for
failed attempts) and then enforces the role, answering JSON errors that say what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from otel_monitoring.auth import ApiKeys, Principal, Role, client_address, is_local_client
from otel_monitoring.clock import Clock
from otel_monitoring.config import Settings
from otel_monitoring.ratelimit import RateLimiter

__all__ = ["MAX_BODY_BYTES", "Access", "LimitedBodyRoute"]

MAX_BODY_BYTES = 64 * 1024

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


class LimitedBodyRoute(APIRoute):
    """An ``APIRoute`` that refuses request bodies over 64 KiB with a 413 JSON error.

    Checks ``Content-Length`` first, then reads the body itself counting streamed (chunked)
    bytes, so a body without a length cannot exceed the limit either.
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
                request._body = b"".join(chunks)  # FastAPI reads the body from here
            return await handler(request)

        return limited


def _too_large() -> JSONResponse:
    return JSONResponse(
        {"detail": f"request body larger than {MAX_BODY_BYTES} bytes"}, status_code=413
    )
