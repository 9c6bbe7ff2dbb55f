"""A service as teams write one: CORS, its own ``@app.middleware("http")`` (an API-key check
that answers 401 early, adds a header, and raises for ``X-Boom``), its own exception handler
(503 for :class:`UnavailableError`), background tasks, a slow stream and a slow handler.

``TEST_APP_ZERO_CODE=1`` leaves it to ``opentelemetry-instrument``. Otherwise it is
instrumented in code, last (``MIDDLEWARE_APP_INSTRUMENT=last``, the default: after every
middleware is added), first (``first``: before any middleware or route) or from its lifespan's
start-up (``startup``: once the app serves, its middleware stack built).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, StreamingResponse

import otel_monitoring

ORIGIN = "https://shop.example"
AUTH_S = 0.2  # the API-key check's lookup, for ``X-Slow-Auth``
JOB_S = 0.5  # a sign-up's e-mail, sent after the answer
CHUNKS, CHUNK_GAP_S = 20, 0.05  # ``/stream``
SLOW_S = 2.0  # ``/slow``
jobs_done = 0

_MODE = "zero-code" if os.environ.get("TEST_APP_ZERO_CODE") else "code"
_WHEN = os.environ.get("MIDDLEWARE_APP_INSTRUMENT", "last") if _MODE == "code" else None


@asynccontextmanager
async def lifespan(served: FastAPI) -> AsyncIterator[None]:
    if _WHEN == "startup":  # as a team does from a start-up hook
        otel_monitoring.instrument_app(served)
    yield


app = FastAPI(title="middleware", lifespan=lifespan)
if _WHEN == "first":
    otel_monitoring.instrument_app(app)


class RefusedError(Exception):
    """Raised by the app's middleware for ``X-Boom``."""


class UnavailableError(Exception):
    """Raised by ``/db-down``; the app's own handler answers 503."""


@app.middleware("http")
async def api_key(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    if request.headers.get("x-boom"):
        raise RefusedError("boom")
    if request.url.path.startswith("/private"):
        if "x-api-key" not in request.headers:
            return JSONResponse({"detail": "no key"}, status_code=401)
        if request.headers.get("x-slow-auth"):
            await asyncio.sleep(AUTH_S)
    response = await call_next(request)
    response.headers["x-served-by"] = "shop"
    return response


app.add_middleware(CORSMiddleware, allow_origins=[ORIGIN], allow_methods=["*"], allow_headers=["*"])


@app.exception_handler(Exception)
async def internal(request: Request, exc: Exception) -> JSONResponse:
    status = 503 if isinstance(exc, UnavailableError) else 500
    return JSONResponse({"detail": type(exc).__name__}, status_code=status)


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"item": item_id}


@app.post("/items")
async def create_item() -> dict[str, bool]:
    return {"ok": True}


@app.get("/private/orders")
async def orders() -> list[int]:
    return [1]


@app.get("/db-down")
async def db_down() -> None:
    raise UnavailableError("database")


async def send_mail() -> None:
    global jobs_done
    await asyncio.sleep(JOB_S)
    jobs_done += 1


@app.post("/signup")
async def signup(tasks: BackgroundTasks) -> dict[str, bool]:
    tasks.add_task(send_mail)
    return {"ok": True}


@app.get("/jobs")
async def jobs() -> dict[str, int]:
    return {"done": jobs_done}


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(CHUNKS):
            yield b"chunk %02d\n" % i
            await asyncio.sleep(CHUNK_GAP_S)

    return StreamingResponse(chunks(), media_type="text/plain")


@app.get("/slow")
async def slow() -> dict[str, bool]:
    await asyncio.sleep(SLOW_S)
    return {"ok": True}


if _WHEN == "last":
    otel_monitoring.instrument_app(app)
