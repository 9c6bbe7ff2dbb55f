"""Keep secrets and personal data out of stored text.

Applied to everything the package stores from requests and exceptions: query strings,
URL credentials, bearer tokens, passwords and e-mail addresses are masked, long texts cut.
"""

from __future__ import annotations

import re

__all__ = ["SENSITIVE_ATTRIBUTE_PARTS", "is_sensitive_attribute", "sanitize_message"]

MAX_MESSAGE_CHARS = 300

SENSITIVE_ATTRIBUTE_PARTS = (
    "authorization",
    "cookie",
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "url.full",
    "url.query",
    "http.url",
    "http.target",
    "db.query.text",
    "db.statement",
)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"), r"\1***:***@"),
    (re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 ***"),
    (
        re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|key)\s*[=:]\s*\S+"),
        r"\1=***",
    ),
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "***@***"),
    (re.compile(r"(?<=[?&])([^=&\s]+)=[^&\s]*"), r"\1=***"),
    (re.compile(r"\b\d{12,}\b"), "***"),
)


def sanitize_message(text: str) -> str:
    """Mask credentials, tokens, query values and e-mail addresses; cut to 300 characters."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    text = " ".join(text.split())
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    return text


def is_sensitive_attribute(name: str) -> bool:
    """Whether an attribute must not reach stored data (URLs with queries, secrets...)."""
    lowered = name.lower()
    return any(part in lowered for part in SENSITIVE_ATTRIBUTE_PARTS)
