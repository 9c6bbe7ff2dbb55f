"""Statement summaries: ``SELECT items`` from ``SELECT * FROM items WHERE id = 42``.

The summary (OTel's ``db.query.summary``: operation plus main table) groups DB statistics;
the normalised statement (literals replaced by ``?``, whitespace collapsed) identifies a
repeated statement for N+1 detection and is safe to store (no parameter values).
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["normalize_statement", "summarize_statement"]

_STRING = re.compile(r"'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![\w$])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\b")
_IN_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")
_SPACE = re.compile(r"\s+")
_COMMENT = re.compile(r"/\*.*?\*/|--[^\n]*", re.S)
_IDENT = r"[\"`\[]?([\w.$]+)[\"`\]]?"
_TABLE_AFTER = {
    "SELECT": re.compile(r"\bFROM\s+" + _IDENT, re.I),
    "DELETE": re.compile(r"\bFROM\s+" + _IDENT, re.I),
    "INSERT": re.compile(r"\bINTO\s+" + _IDENT, re.I),
    "REPLACE": re.compile(r"\bINTO\s+" + _IDENT, re.I),
    "UPDATE": re.compile(r"^\s*UPDATE\s+(?:OR\s+\w+\s+)?" + _IDENT, re.I),
}
MAX_STATEMENT_CHARS = 500


@lru_cache(maxsize=2048)
def normalize_statement(statement: str) -> str:
    """Statement with comments removed, literals as ``?``, ``IN (?, ?, ...)`` folded."""
    text = _COMMENT.sub(" ", statement)
    text = _STRING.sub("?", text)
    text = _NUMBER.sub("?", text)
    text = _IN_LIST.sub("(?)", text)
    text = _SPACE.sub(" ", text).strip()
    return text[:MAX_STATEMENT_CHARS]


@lru_cache(maxsize=2048)
def summarize_statement(statement: str) -> tuple[str, str]:
    """``(summary, operation)``: e.g. ``("SELECT items", "SELECT")``; never raises."""
    text = _COMMENT.sub(" ", statement).strip()
    if text.startswith("("):
        text = text.lstrip("( ")
    operation = text.split(None, 1)[0].upper() if text else "UNKNOWN"
    if operation == "WITH":
        match = re.search(r"\)\s*(SELECT|INSERT|UPDATE|DELETE)\b", text, re.I)
        operation = match.group(1).upper() if match else "WITH"
    pattern = _TABLE_AFTER.get(operation)
    match = pattern.search(text) if pattern else None
    summary = f"{operation} {match.group(1)}" if match else operation
    return summary[:100], operation
