"""Timing of sanitize_message (not a test): hostile 100 KB messages against 1 KB ones.

Each message shape targets one pattern (long runs it could backtrack over, many anchors
with no end, nested reprs...) or echoes an input as the standard library does
(``datetime.fromisoformat``, ``ipaddress.ip_address``). The sanitizer examines a bounded
prefix (2 KB) with linear patterns, so a 100 KB message costs about what a 2 KB one does:
the ratio printed per shape is the 100 KB cost against the 1 KB message of the same shape
(about 2 when linear and bounded; the previous sanitizer took 0.7 s on a 15 KB message and
3.7 s on a 30 KB one, growing quadratically). The last column is what the request path
pays (``bound_message``, the cut) for the 100 KB message.

Run: ``python benchmarks/sanitize.py`` (exits 1 if a ratio exceeds 10).
"""

from __future__ import annotations

import datetime
import ipaddress
import sys
import time
from collections.abc import Callable

from otel_monitoring.sanitize import bound_message, sanitize_message

SMALL = 1_000
LARGE = 100_000
MAX_RATIO = 10.0


def _stdlib_message(call: Callable[[], object]) -> str:
    try:
        call()
    except ValueError as exc:
        return str(exc)
    raise AssertionError("expected a ValueError")


def _fromisoformat(n: int) -> str:
    return _stdlib_message(lambda: datetime.datetime.fromisoformat("2024-" + "1" * n))


def _ip_address(n: int) -> str:
    value = '{"user": "bob", "password": "hunter2", "note": "' + "a" * n + '"}'
    return _stdlib_message(lambda: ipaddress.ip_address(value))


def _repeat(unit: str) -> Callable[[int], str]:
    return lambda n: (unit * (n // len(unit) + 1))[:n]


# Units end with a space or a delimiter, so the cut keeps a full prefix of hostile text.
SHAPES: dict[str, Callable[[int], str]] = {
    "fromisoformat echo": _fromisoformat,
    "ip_address echo (JSON)": _ip_address,
    "word characters": _repeat("a" * 50 + " "),
    "e-mail local parts": _repeat("a.b+c-a.b+c- "),
    "at signs": _repeat("a@a@a@ "),
    "dotted domain": _repeat("a@b.b.b.b.b.b.b "),
    "query keys without =": _repeat("?a?a?a "),
    "URL schemes": _repeat("s://u:p "),
    "secret keys": _repeat("password= "),
    "quoted keys": _repeat("'password': '"),
    "unterminated quotes": _repeat('"'),
    "bearer words": _repeat("Bearer "),
    "JWT prefixes": _repeat("eyJa.eyJa. "),
    "digit groups": _repeat("1 "),
    "card-like groups": _repeat("4111-"),
    "SQL blocks": _repeat("[SQL: '"),
    "parameter blocks": _repeat("[parameters: "),
    "whitespace": _repeat(" \n"),
}


def _per_call_s(text: str, call: Callable[[str], str] = sanitize_message) -> float:
    """Best of 5 batches of the mean time of one call, in seconds."""
    calls = 20
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            call(text)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main() -> None:
    worst = 0.0
    print(f"{'message shape':<26}{'1 KB us':>10}{'100 KB us':>11}{'ratio':>8}{'cut us':>9}")
    for name, make in SHAPES.items():
        small, large = make(SMALL), make(LARGE)
        small_s, large_s = _per_call_s(small), _per_call_s(large)
        cut_s = _per_call_s(large, bound_message)
        ratio = large_s / small_s
        worst = max(worst, ratio)
        print(
            f"{name:<26}{small_s * 1e6:>10.1f}{large_s * 1e6:>11.1f}{ratio:>8.2f}"
            f"{cut_s * 1e6:>9.1f}"
        )
    print(f"worst ratio 100 KB / 1 KB: {worst:.2f} (input 100x longer)")
    if worst > MAX_RATIO:
        sys.exit(1)


if __name__ == "__main__":
    main()
