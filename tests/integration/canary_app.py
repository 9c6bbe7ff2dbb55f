"""An app whose failures carry secrets, as a realistic app's exceptions do (served by uvicorn).

Each ``/fail/...`` route raises the way real code does: a payment client formatting its
payload dict, a JSON body in a validation error, an OAuth client echoing its token request
and response, a header dict, SQLAlchemy errors from real SQLite statements with a bound
password, and the standard library echoing a 100 KB input. :data:`CANARIES` lists the
secrets planted; none may appear in anything the monitoring API returns.

Environment: ``CANARY_DB`` (SQLite file path). With ``OTEL_EXPORTER_OTLP_ENDPOINT`` set the
monitor exports spans (span mode); without, it runs lean (no SDK spans).
"""

from __future__ import annotations

import ipaddress
import json
import os
from typing import Any

from canaries import CARD_DASHED, CARD_PLAIN, CARD_SPACED
from fastapi import FastAPI, Request
from sqlalchemy import create_engine, text

import otel_monitoring

engine = create_engine(
    f"sqlite:///{os.environ['CANARY_DB']}", connect_args={"check_same_thread": False}
)
with engine.begin() as setup:
    setup.execute(text("CREATE TABLE IF NOT EXISTS users (email TEXT UNIQUE, password_hash TEXT)"))
    setup.execute(text("INSERT OR IGNORE INTO users VALUES ('taken@example.org', 'x')"))

app = FastAPI()
# openapi=True: the test enumerates the monitoring routes from the schema.
monitor = otel_monitoring.instrument_app(app, engine=engine, openapi=True)


class PaymentDeclinedError(RuntimeError):
    pass


class Credentials:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r}, password={self.password!r})"


@app.get("/fast")
async def fast() -> dict[str, bool]:
    return {"ok": True}


@app.get("/mode")
async def mode() -> dict[str, Any]:
    """Which mode the monitor runs in, and the monitoring API's GET routes (for the tests),
    as the app's OpenAPI schema lists them."""
    paths = sorted(
        path
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/monitoring") and "get" in operations
    )
    return {"lean": monitor.lean, "get_routes": paths}


@app.post("/lookup")
async def lookup(request: Request) -> dict[str, str]:
    """Parses an address from a JSON body; ``ip_address`` echoes the whole value on failure."""
    body = await request.json()
    return {"address": str(ipaddress.ip_address(body["address"]))}


@app.get("/fail/charge")
async def charge() -> None:
    payload = {"card": CARD_DASHED, "cvv": "123", "password": "canary-pw-dict", "amount": 12}
    raise PaymentDeclinedError(
        f"card {CARD_SPACED} declined (also tried {CARD_PLAIN}): {payload!r}"
    )


@app.get("/fail/profile")
async def profile() -> None:
    body = {"email": "canary.user@example.org", "password": "canary-pw-json", "age": "x"}
    raise ValueError(f"invalid profile payload {json.dumps(body)}: age is not a number")


@app.get("/fail/oauth")
async def oauth() -> None:
    response = {
        "access_token": "canary-access-token",
        "refresh_token": "canary-refresh-token",
        "token_type": "bearer",
    }
    raise RuntimeError(
        "token exchange failed: POST https://auth.example/token?client_id=shop"
        "&client_secret=canary-client-secret&grant_type=code"
        f" -> 200 but the response could not be used: {json.dumps(response)}"
    )


@app.get("/fail/upstream")
async def upstream() -> None:
    headers = {"Authorization": "Bearer canaryBearerToken0123456789", "Accept": "*/*"}
    raise ConnectionError(
        f"upstream answered 401 to {headers}; retried with Authorization: Basic"
        " Y2FuYXJ5OmJhc2ljLXB3 and Bearer canaryBearerToken0123456789, same answer"
    )


@app.get("/fail/kwargs")
async def kwargs() -> None:
    raise LookupError(f"no account for {Credentials('bob', 'canary-pw-kwarg')}")


@app.get("/fail/signup")
def signup() -> None:
    """An IntegrityError from a real INSERT: the bound password is in SQLAlchemy's message."""
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO users VALUES (:email, :password)"),
            {"email": "taken@example.org", "password": "canary-sql-password"},
        )


@app.get("/fail/login")
def login() -> None:
    """An OperationalError from a real SELECT on a missing table, password bound."""
    with engine.connect() as conn:
        conn.execute(
            text("SELECT 1 FROM accounts WHERE email = :email AND password = :password"),
            {"email": "canary.user@example.org", "password": "canary-sql-login-pw"},
        )
