"""Responses of the kinds a service sends. ``TEST_APP_ZERO_CODE=1`` leaves the app to
``opentelemetry-instrument``; otherwise it is instrumented in code.

``POST /signup``: answers at once, then a 0.6-s background job (as a sign-up sends its
e-mail after answering); ``GET /jobs``: jobs done; ``GET /report``: 10,000 bytes with a
``content-length``; ``GET /events``: 5 bytes streamed, without one; ``GET /trailed``: 7
bytes, then response trailers where the server offers them (hypercorn over HTTP/2).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

import otel_monitoring

JOB_S = 0.6
REPORT_BYTES = 10_000
done = 0

app = FastAPI(title="responses")


async def send_welcome_mail() -> None:
    global done
    await asyncio.sleep(JOB_S)
    done += 1


@app.post("/signup", status_code=201)
async def signup(tasks: BackgroundTasks) -> dict[str, bool]:
    tasks.add_task(send_welcome_mail)
    return {"ok": True}


@app.get("/jobs")
async def jobs() -> dict[str, int]:
    return {"done": done}


@app.get("/report")
async def report() -> PlainTextResponse:
    return PlainTextResponse("r" * REPORT_BYTES)


@app.get("/events")
async def events() -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b"ab", b"cde"):
            yield chunk

    return StreamingResponse(chunks(), media_type="text/plain")


class TrailedResponse(Response):
    """A body, then trailers (as gRPC-Web sends its status) where the server offers them."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        trailers = "http.response.trailers" in scope.get("extensions", {})
        start = {"type": "http.response.start", "status": self.status_code}
        await send({**start, "headers": self.raw_headers, "trailers": trailers})
        await send({"type": "http.response.body", "body": self.body})
        if trailers:
            await send({"type": "http.response.trailers", "headers": [(b"x-status", b"0")]})


@app.get("/trailed")
async def trailed() -> TrailedResponse:
    return TrailedResponse(b"trailed", media_type="text/plain")


if not os.environ.get("TEST_APP_ZERO_CODE"):
    otel_monitoring.instrument_app(app)
