"""Timing of sanitize_message (not a test): hostile 100 KB messages against 1 KB ones.

Each message shape targets one pattern (long runs it could backtrack over, many anchors
with no end, nested reprs...) or echoes an input as the standard library does
(``datetime.fromisoformat``, ``ipaddress.ip_address``). The sanitizer examines a bounded
prefix (2 KB) with linear patterns, so a 100 KB message costs about what a 2 KB one does.
Printed per shape: microseconds per call for 1 KB, 2 KB and 100 KB messages of that shape;
2K/1K (about 2 when the work is linear, 4 if quadratic) and 100K/1K (about 2 when bounded;
the previous sanitizer took 0.7 s on a 15 KB message and 3.7 s on a 30 KB one); and what
the request path pays (``bound_message``, the cut) for the 100 KB message.

Run: ``python benchmarks/sanitize.py`` (exits 1 if 100K/1K exceeds 20).
"""

from __future__ import annotations

import datetime
import ipaddress
import sys
import timeit
from collections.abc import Callable

from otel_monitoring.sanitize import bound_message, sanitize_message

SMALL = 1_000
LARGE = 100_000
MAX_RATIO = 20.0


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
    """Least mean time of one call over 7 batches of 10, in seconds (the machine's noise
    only ever adds time)."""
    return min(timeit.repeat(lambda: call(text), number=10, repeat=7)) / 10


def main() -> None:
    worst_bound = worst_linear = 0.0
    print(
        f"{'message shape':<24}{'1 KB us':>9}{'2 KB us':>9}{'100 KB us':>11}"
        f"{'2K/1K':>7}{'100K/1K':>9}{'cut us':>8}"
    )
    for name, make in SHAPES.items():
        one, two, large = (_per_call_s(make(n)) for n in (SMALL, 2 * SMALL, LARGE))
        cut_s = _per_call_s(make(LARGE), bound_message)
        linear, bound = two / one, large / one
        worst_linear, worst_bound = max(worst_linear, linear), max(worst_bound, bound)
        print(
            f"{name:<24}{one * 1e6:>9.1f}{two * 1e6:>9.1f}{large * 1e6:>11.1f}"
            f"{linear:>7.2f}{bound:>9.2f}{cut_s * 1e6:>8.1f}"
        )
    print(f"worst 2 KB / 1 KB: {worst_linear:.2f} (2 when linear, 4 when quadratic)")
    print(f"worst 100 KB / 1 KB: {worst_bound:.2f} (input 100x longer; 2 KB examined)")
    if worst_bound > MAX_RATIO:
        sys.exit(1)


if __name__ == "__main__":
    main()
