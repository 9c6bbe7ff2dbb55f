"""The error-sample sanitizer: what it masks, what it keeps, and the bounds it guarantees.

Speed is measured in ``benchmarks/sanitize.py`` (100 KB against 1 KB hostile messages);
here the output bounds and the redaction rules.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import random
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider

import otel_monitoring
from otel_monitoring.capture.spans import TraceFindings
from otel_monitoring.sanitize import (
    MAX_INPUT_CHARS,
    MAX_MESSAGE_CHARS,
    bound_message,
    sanitize_message,
)
from otel_monitoring.self_telemetry import Guard


@pytest.mark.parametrize(
    ("message", "secrets", "kept"),
    [
        (
            "card 4111 1111 1111 1111 declined, retry with 5500-0000-0000-0004",
            ("4111 1111 1111 1111", "5500-0000-0000-0004", "1111 1111"),
            "card *** declined, retry with ***",
        ),
        ("amex 3782 822463 10005 and 4012888888881881.", ("822463", "4012888888881881"), "amex"),
        (
            "payload {'user': 'bob', 'password': 'hunter 2', 'n': 1}",
            ("hunter",),
            "{'user': 'bob', 'password': ***, 'n': 1}",
        ),
        (
            'body {"password": "p\\"w", "Client_Secret": "cs1", "email_ok": true}',
            ('p\\"w', "cs1"),
            '"password": ***, "Client_Secret": ***',
        ),
        (
            "POST /token?client_id=shop&client_secret=cs2&grant_type=code failed",
            ("cs2",),
            "client_secret=***",
        ),
        (
            "access_token=at1; refresh_token: rt1, api-key=k1 X-Api-Key: k2 session=s1",
            ("at1", "rt1", "k1", "k2", "s1"),
            "access_token=***; refresh_token: ***,",
        ),
        (
            "headers {'Authorization': 'Bearer tok-123456'} then Authorization: Basic dXNlcjpw",
            ("tok-123456", "dXNlcjpw"),
            "Authorization: Basic ***",
        ),
        ("no account for Credentials(user='bob', password='pw-kw')", ("pw-kw",), "user='bob'"),
        ("user canary.user@example.org not found", ("canary.user", "example.org"), "***@***"),
        ("connect to postgresql://app:dbpw@db:5432/shop", ("dbpw",), "://***:***@db:5432"),
        (
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln key sk_live_abcdefgh123",
            ("eyJzdWIiOiIxIn0", "sk_live_abcdefgh123"),
            "jwt ***",
        ),
        ("nested {'credentials': {'password': 'pw-nested'}}", ("pw-nested",), "'credentials': {"),
    ],
)
def test_secrets_are_masked_by_structure(message: str, secrets: tuple[str, ...], kept: str) -> None:
    cleaned = sanitize_message(message)
    for secret in secrets:
        assert secret not in cleaned, cleaned
    assert kept in cleaned, cleaned


def test_what_is_not_secret_is_kept() -> None:
    message = (
        "order 1234 5678 9012 3456 (not a card: fails Luhn),"
        " trace 4bf92f3577b34da6a3ce929d0e0e4736, at 2024-01-15 10:30:00, token expired,"
        " key not found: 'sku', /items/42?page=2"
    )
    cleaned = sanitize_message(message)
    for part in ("1234 5678 9012 3456", "4bf92f3577b34da6a3ce929d0e0e4736", "2024-01-15 10:30:00"):
        assert part in cleaned
    assert "token expired" in cleaned and "key not found: 'sku'" in cleaned
    assert "page=***" in cleaned  # query values are masked whatever their key


def _sqlalchemy_messages(tmp_path: Path) -> list[str]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'users.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE users (email TEXT UNIQUE, password TEXT)"))
        conn.execute(sa.text("INSERT INTO users VALUES ('a@example.org', 'x')"))
    statements = [
        ("INSERT INTO users VALUES (:e, :p)", {"e": "a@example.org", "p": "sql-pw-1"}),
        ("SELECT * FROM accounts WHERE password = :p", {"p": "sql-pw-2"}),
        ("INSERT INTO users VALUES (:e, :p)", [{"e": "a@example.org", "p": "sql-pw-3"}] * 2),
        ("SELECT * FROM users WHERE password = 'sql-pw-4' AND nope = 42", {}),
    ]
    messages = []
    for statement, parameters in statements:
        with pytest.raises(sa.exc.DBAPIError) as caught, engine.begin() as conn:
            conn.execute(sa.text(statement), parameters)
        messages.append(str(caught.value))
    engine.dispose()
    return messages


def test_sqlalchemy_parameters_are_dropped_and_literals_hidden(tmp_path: Path) -> None:
    for message in _sqlalchemy_messages(tmp_path):
        assert "sql-pw" in message  # what SQLAlchemy puts in the message
        cleaned = sanitize_message(message)
        assert "sql-pw" not in cleaned and "a@example.org" not in cleaned, cleaned
        assert "[SQL: " in cleaned and "(Background on this error at:" in cleaned
        assert "[parameters hidden]" in cleaned or "[parameters:" not in message


def _stdlib_message(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError as exc:
        return str(exc)
    raise AssertionError("no ValueError")


@pytest.mark.parametrize(
    "message",
    [
        _stdlib_message('{"password": "pw-ip", "note": "' + "a" * 100_000 + '"}'),
        "a" * 100_000,
        "a@" * 50_000,
        "password=" * 12_000,
        "'password': '" * 8_000,
        "4111-" * 20_000,
        "1 " * 50_000,
        "[SQL: '" * 15_000,
        " \n" * 50_000,
    ],
)
def test_output_is_bounded_whatever_the_input(message: str) -> None:
    assert len(message) >= 100_000
    bounded = bound_message(message)
    assert len(bounded) <= MAX_INPUT_CHARS and bounded.endswith("…")
    cleaned = sanitize_message(message)
    assert len(cleaned) <= MAX_MESSAGE_CHARS
    assert "pw-ip" not in cleaned


def test_fromisoformat_echo_keeps_the_reason() -> None:
    with pytest.raises(ValueError) as caught:
        datetime.datetime.fromisoformat("2024-01-15T10:" + "9" * 15_000)
    cleaned = sanitize_message(str(caught.value))
    assert cleaned.startswith("Invalid isoformat string: '") and len(cleaned) <= 300


@pytest.mark.parametrize(
    "secret", ["4111 1111 1111 1111", "5500-0000-0000-0004", "bob.smith@example.org"]
)
def test_a_secret_cut_by_the_bound_does_not_leak_its_start(secret: str) -> None:
    """Whitespace before the secret collapses, so the text around the cut stays visible."""
    visible = secret[:6]
    for offset in range(len(secret) + 2):
        message = " " * (MAX_INPUT_CHARS - 2 - offset) + secret + " tail"
        cleaned = sanitize_message(message)
        assert visible not in cleaned, (offset, cleaned)


def test_quoted_password_cut_by_the_bound_is_masked() -> None:
    message = " " * (MAX_INPUT_CHARS - 30) + json.dumps({"password": "p " * 100})
    cleaned = sanitize_message(message)
    assert '"password": ***' in cleaned and "p p" not in cleaned


def test_findings_store_a_bounded_message_and_sanitize_on_read() -> None:
    findings = TraceFindings(guard=Guard(), error_samples=10)
    message = "charge failed {'password': 'pw-f', 'card': '4111111111111111'} " + "x" * 100_000
    findings.on_server_span(
        route="/pay",
        method="POST",
        status_code=500,
        duration_s=0.01,
        end_s=1_700_000_000.0,
        trace_id=1,
        span_id=2,
        error=("app.PaymentError" + "r" * 1000, message),
    )
    (sample,) = findings.errors()
    assert sample.route == "/pay" and sample.status_code == 500
    assert len(sample.exception_type) <= 200
    assert len(sample.message) <= MAX_MESSAGE_CHARS
    assert "pw-f" not in sample.message and "4111111111111111" not in sample.message
    assert findings.errors() == [sample]  # sanitized once, the same sample after
    assert findings.clear_before(2_000_000_000.0) == 1 and findings.errors() == []


class _UnprintableError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ failed")


def test_lean_middleware_lets_an_unprintable_exception_through() -> None:
    """The app's exception propagates even when describing it fails."""
    app = FastAPI()

    @app.get("/bad")
    async def bad() -> None:
        raise _UnprintableError()

    monitor = otel_monitoring.instrument_app(
        app, tracer_provider=TracerProvider(), span_exporters=[], metric_exporters=[]
    )
    try:
        assert monitor.lean
        with pytest.raises(_UnprintableError):
            TestClient(app).get("/bad")
        (sample,) = monitor.findings.errors()
        assert sample.exception_type.endswith("_UnprintableError") and sample.message == ""
    finally:
        monitor.shutdown()


def _luhn_check_digit(body: str) -> str:
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str(-total % 10)


def test_luhn_valid_numbers_are_masked_and_others_kept() -> None:
    """Random 13-19 digit numbers, grouped in fours or not, after other digit groups."""
    rng = random.Random(7)
    for _ in range(300):
        body = "".join(rng.choice("0123456789") for _ in range(rng.randint(12, 18)))
        valid = body + _luhn_check_digit(body)
        invalid = body + str((int(_luhn_check_digit(body)) + 1) % 10)
        separator = rng.choice(("", " ", "-"))
        cases = [(valid, True)]
        if separator == "" or len(invalid) <= 15:  # no shorter window of 13+ digits inside
            cases.append((invalid, False))
        for number, masked in cases:
            grouped = separator.join(number[i : i + 4] for i in range(0, len(number), 4))
            cleaned = sanitize_message(f"qty 12 ref {grouped} ok")
            assert (grouped not in cleaned) is masked, (grouped, cleaned)
            assert cleaned.endswith(" ok") and "qty 12" in cleaned
