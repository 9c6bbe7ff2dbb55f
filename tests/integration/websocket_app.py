"""HTTP routes beside WebSocket endpoints, as a chat or live-update service has them.
``TEST_APP_ZERO_CODE=1`` leaves the app to ``opentelemetry-instrument``; otherwise it is
instrumented in code.

``GET /ready``: the readiness probe the tests poll; ``GET /items``: a fast answer;
``GET /boom``: raises (a 500). WebSockets: ``/ws`` echoes text (one SQLite insert per
message) until the client closes, and closes with 1008 (policy violation) on
``"forbidden"``; ``/ws/private`` refuses the handshake (close 1008 before accept: HTTP 403
to the client); ``/ws/crash`` accepts, then raises (uvicorn closes with 1011, or drops the
connection under wsproto).
"""

from __future__ import annotations

import os

from fastapi import FastAPI, WebSocket, WebSocketDisconnect, status
from sqlalchemy import create_engine, text

import otel_monitoring

engine = create_engine("sqlite://")  # in memory: one connection, on the event loop's thread
with engine.begin() as setup:
    setup.execute(text("CREATE TABLE messages (body TEXT)"))

app = FastAPI(title="websockets")


@app.get("/ready")
async def ready() -> dict[str, bool]:
    return {"ready": True}


@app.get("/items")
async def items() -> list[int]:
    return [1, 2, 3]


@app.get("/boom")
async def boom() -> None:
    raise RuntimeError("http boom")


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive_text()
            if message == "forbidden":
                await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
                return
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO messages (body) VALUES (:b)"), {"b": message})
            await websocket.send_text(f"echo:{message}")
    except WebSocketDisconnect:
        return


@app.websocket("/ws/private")
async def private(websocket: WebSocket) -> None:
    await websocket.close(code=status.WS_1008_POLICY_VIOLATION)


@app.websocket("/ws/crash")
async def crash(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.receive_text()
    raise RuntimeError("ws crash")


if not os.environ.get("TEST_APP_ZERO_CODE"):
    otel_monitoring.instrument_app(app, engine=engine)
