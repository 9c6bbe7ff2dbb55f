import pytest

from otel_monitoring.capture.sql_summary import normalize_statement, summarize_statement
from otel_monitoring.sanitize import is_sensitive_attribute, sanitize_message


@pytest.mark.parametrize(
    ("statement", "summary"),
    [
        ("SELECT * FROM items WHERE id = 42", "SELECT items"),
        ('select a from "orders" o join items i on 1=1', "SELECT orders"),
        ("INSERT INTO items (name) VALUES ('x')", "INSERT items"),
        ("UPDATE items SET name = 'y' WHERE id = 1", "UPDATE items"),
        ("DELETE FROM items WHERE id = 3", "DELETE items"),
        ("PRAGMA table_info(items)", "PRAGMA"),
        ("", "UNKNOWN"),
    ],
)
def test_summaries(statement: str, summary: str) -> None:
    assert summarize_statement(statement)[0] == summary


def test_normalize_removes_literals() -> None:
    text = normalize_statement("SELECT * FROM t WHERE a = 'secret' AND b IN (1, 2, 3) -- c")
    assert "secret" not in text and "1" not in text
    assert text == "SELECT * FROM t WHERE a = ? AND b IN (?)"


def test_sanitize_masks_secrets() -> None:
    message = (
        "failed for https://bob:hunter2@db.example/x?token=abc&id=7 "
        "Authorization: Bearer abcdef123456 password=swordfish mail bob@example.com"
    )
    cleaned = sanitize_message(message)
    for secret in ("hunter2", "abc&", "abcdef123456", "swordfish", "bob@example.com"):
        assert secret not in cleaned
    assert len(sanitize_message("x" * 1000)) <= 300


def test_sensitive_attributes() -> None:
    assert is_sensitive_attribute("url.query")
    assert is_sensitive_attribute("http.request.header.authorization")
    assert not is_sensitive_attribute("http.route")
