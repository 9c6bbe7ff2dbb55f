"""Keep secrets and personal data out of stored text, in time linear in a bounded input.

:func:`sanitize_message` is applied to every exception message the package keeps (error
samples, in lean and span mode) and runs on the request path, so it is built to cost little
whatever the message holds:

- Only the first :data:`MAX_INPUT_CHARS` characters are examined (the standard library
  echoes whole inputs into messages: ``datetime.fromisoformat`` or ``ipaddress.ip_address``
  on a 100 KB value). :func:`bound_message` makes that cut, dropping the token it splits so
  a secret cut in two cannot escape a pattern that needs its end; it is the only part that
  must run on the request path (a few C-level string operations). The error-sample buffers
  keep its result and sanitize when the samples are read.
- Every pattern is linear: each starts at a literal anchor or at the start of a run its
  lookbehind forbids re-entering, and uses possessive quantifiers (no backtracking), so the
  work is O(n) in the examined prefix (see ``benchmarks/sanitize.py``); patterns whose
  anchor is absent from the text are skipped.

What is redacted, by structure rather than by guessing:

- SQLAlchemy's ``[parameters: ...]`` block is dropped entirely; literals in its
  ``[SQL: ...]`` block become ``?``.
- Values of secret-looking keys (:data:`SECRET_KEY_PARTS`: password, token, client_secret,
  api_key, authorization, cookie, session...) in ``key=value``, ``key: value``,
  ``"key": "value"`` and ``'key': 'value'`` forms (quoted values may hold spaces).
- Credentials in URLs (``scheme://user:pass@``), query-string values, ``Bearer``/``Basic``
  credentials, JWTs and well-known API-key shapes, e-mail addresses, and Luhn-valid card
  numbers (13-19 digits, optionally grouped by spaces or dashes).

Whitespace is collapsed and the result cut to :data:`MAX_MESSAGE_CHARS` characters.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from itertools import accumulate

__all__ = [
    "MAX_INPUT_CHARS",
    "MAX_MESSAGE_CHARS",
    "SECRET_KEY_PARTS",
    "SENSITIVE_ATTRIBUTE_PARTS",
    "bound_message",
    "is_sensitive_attribute",
    "sanitize_message",
]

#: Length of a sanitized message, in characters.
MAX_MESSAGE_CHARS = 300
#: How much of a message is examined, in characters; the rest is never looked at.
MAX_INPUT_CHARS = 2048

MASK = "***"
TRUNCATED = "…"
_CUT_MARK = " " + TRUNCATED

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

#: A key whose lower-cased name contains one of these has its value masked.
SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "api-key",
    "apikey",
    "access_key",
    "private_key",
    "authorization",
    "auth_header",
    "cookie",
    "session",
    "credential",
    "signature",
    "cvv",
    "ssn",
)
_SECRET_KEY_EXACT = ("key", "auth", "pass", "pin", "otp", "sid")

# Characters that end a token when a message is cut: whitespace and the delimiters of
# reprs and JSON. Used only on the cut prefix.
_BREAKS = tuple(" \t\r\n\f\v,;(){}[]<>\"'")
_CARD_CHARS = "0123456789 -"

# -- SQLAlchemy's statement errors: "...\n[SQL: ...]\n[parameters: ...]\n(Background ...)" --
_SQL_OPEN = "[SQL: "
_SQL_ENDS = ("]\n[parameters:", "]\n[SQL parameters hidden", "]\n(Background on this error")
_PARAMETERS_OPEN = "[parameters:"
_SQL_LITERAL = re.compile(r"'(?:[^']|'')*+'?|(?<![\w$.])\d++(?:\.\d++)?")

# -- patterns on the collapsed prefix; each is linear (see the module docstring) ---------------
_URL_CREDENTIALS = re.compile(r"://[^/\s:@]++:[^/\s@]++@")
_AUTH_WORDS = ("bearer", "basic", "digest", "negotiate", "token")
_AUTH_SCHEME = re.compile(
    r"(?i)(?<![\w-])(?:bearer|basic|digest|negotiate)\s{1,4}+[A-Za-z0-9._~+/=-]{6,}+"
    r"|(?<![\w-])token\s{1,4}+[A-Za-z0-9._~+/=-]{16,}+"
)
_TOKEN_ANCHORS = ("eyJ", "k_live_", "k_test_", "gh", "github_pat_", "xox", "AKIA")
_KNOWN_TOKEN = re.compile(
    r"(?<![\w-])(?:"
    r"eyJ[\w-]++\.[\w-]++(?:\.[\w-]*+)?"  # JWT
    r"|(?:sk|pk|rk)_(?:live|test)_\w{8,}+"  # Stripe-style keys
    r"|gh[opsur]_\w{20,}+|github_pat_\w{20,}+"  # GitHub tokens
    r"|xox[abprs]-[\w-]{10,}+"  # Slack tokens
    r"|AKIA[0-9A-Z]{16}+"  # AWS access key ids
    r")"
)
# A secret-looking key: a run of word characters, dots and dashes (never entered midway)
# holding one of SECRET_KEY_PARTS or being one of _SECRET_KEY_EXACT, optionally closed by a
# quote, then its separator. The value is matched by _VALUE from where this match ends.
# Searched in an ASCII-lower-cased copy of the text (same length, so the same offsets):
# case-insensitive alternations cost several times more in ``re``.
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_KEY = re.compile(
    r"(?<![\w.-])(?=[\w.-])(?=[\w.-]*?(?:"
    + "|".join(re.escape(part) for part in SECRET_KEY_PARTS)
    + r")|[_.-]*+(?:"
    + "|".join(_SECRET_KEY_EXACT)
    + r")[_.-]*+(?![\w.-]))[\w.-]++['\")\]]?+ ?+(?:=>?|:)(?![:=/]) ?+"
)
_VALUE = re.compile(r"""[bBrRuU]?(?:"(?:[^"\\]|\\.)*+"?|'(?:[^'\\]|\\.)*+'?)|[^\s,;&)}\]'"]++""")
_EMAIL = re.compile(r"[\w.+%-](?<![\w.+%-][\w.+%-])[\w.+%-]*+@[\w-]++(?:\.[\w-]++)*+")
_QUERY_VALUE = re.compile(r"([?&][^=&\s?#]++)=[^&\s#'\"]*+")
_DIGIT_RUN = re.compile(r"\d(?<!\d\d)(?:[ -]?\d)*+")
_SEPARATOR = re.compile(r"[ -]")


def sanitize_message(text: str) -> str:
    """``text`` with secrets masked (``***``), whitespace collapsed, cut to 300 characters.

    Guarantees: at most :data:`MAX_INPUT_CHARS` characters of ``text`` are examined and the
    work is linear in them, whatever they hold; the result has at most
    :data:`MAX_MESSAGE_CHARS` characters. See the module docstring for what is masked.
    """
    text = _sqlalchemy_blocks(bound_message(text))
    text = " ".join(text.split())
    if "://" in text:
        text = _URL_CREDENTIALS.sub("://***:***@", text)
    lowered = text.lower()
    if any(word in lowered for word in _AUTH_WORDS):
        text = _AUTH_SCHEME.sub(_auth_scheme, text)
    if any(anchor in text for anchor in _TOKEN_ANCHORS):
        text = _KNOWN_TOKEN.sub(MASK, text)
    if "=" in text or ":" in text:
        text = _mask_secret_values(text)
    if "@" in text:
        text = _EMAIL.sub("***@***", text)
    if "=" in text:
        text = _QUERY_VALUE.sub(r"\1=***", text)
    text = _DIGIT_RUN.sub(_mask_cards, text)
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + TRUNCATED
    return text


def is_sensitive_attribute(name: str) -> bool:
    """Whether an attribute must not reach stored data (URLs with queries, secrets...)."""
    lowered = name.lower()
    return any(part in lowered for part in SENSITIVE_ATTRIBUTE_PARTS)


def bound_message(text: str) -> str:
    """At most :data:`MAX_INPUT_CHARS` characters of ``text``: cut, without the token the cut
    split, and marked `` …``. Not sanitized: pass the result to :func:`sanitize_message`.

    Dropping back to the last delimiter (and then any trailing digits, spaces and dashes, a
    card number's characters) means no secret is left with its end missing, where a pattern
    needing the end (an e-mail's domain, a card's check digit) would not recognise it.
    Cheap enough for the request path: a slice and a few C-level searches of the prefix.
    """
    if len(text) <= MAX_INPUT_CHARS:
        return text
    head = text[: MAX_INPUT_CHARS - len(_CUT_MARK)]
    end = max(head.rfind(char) for char in _BREAKS) + 1
    return head[:end].rstrip(_CARD_CHARS) + _CUT_MARK


def _sqlalchemy_blocks(text: str) -> str:
    """Drop ``[parameters: ...]`` blocks (to the end of their line); literals in ``[SQL: ...]``
    become ``?``. Linear: each block is found with ``str.find`` from where the last ended."""
    if _PARAMETERS_OPEN in text:
        parts: list[str] = []
        pos = 0
        while (start := text.find(_PARAMETERS_OPEN, pos)) >= 0:
            parts.append(text[pos:start])
            parts.append("[parameters hidden]")
            end = text.find("\n", start)
            pos = len(text) if end < 0 else end
        parts.append(text[pos:])
        text = "".join(parts)
    if _SQL_OPEN in text:
        parts = []
        pos = 0
        while (start := text.find(_SQL_OPEN, pos)) >= 0:
            start += len(_SQL_OPEN)
            ends = [e for e in (text.find(m, start) for m in _SQL_ENDS) if e >= 0]
            end = min(ends) if ends else len(text)
            parts.append(text[pos:start])
            parts.append(_SQL_LITERAL.sub("?", text[start:end]))
            pos = end
        parts.append(text[pos:])
        text = "".join(parts)
    return text


def _auth_scheme(match: re.Match[str]) -> str:
    word = match.group(0).split(None, 1)[0]
    return f"{word} {MASK}"


def _mask_secret_values(text: str) -> str:
    """Mask the value after each secret-looking key (``key=v``, ``"key": "v"``, ...).

    A value opening a structure (``{``, ``[``, ``(``) is left for its own keys to be found.
    Linear: the key pattern never re-enters a run it has tried and each value is matched once.
    """
    parts: list[str] = []
    pos = 0
    lowered = text.translate(_ASCII_LOWER)
    search: Callable[[str, int], re.Match[str] | None] = _KEY.search
    while (key := search(lowered, pos)) is not None:
        start = key.end()
        parts.append(text[pos:start])
        value = None if text.startswith(("{", "[", "("), start) else _VALUE.match(text, start)
        if value is None or _masked_credential(text, value):
            pos = start
            continue
        parts.append(MASK)
        pos = value.end()
    parts.append(text[pos:])
    return "".join(parts)


def _masked_credential(text: str, value: re.Match[str]) -> bool:
    """Whether a value is an authorization scheme already followed by its masked credential."""
    return value.group(0).lower() in _AUTH_WORDS and text.startswith(" " + MASK, value.end())


def _mask_cards(match: re.Match[str]) -> str:
    """Mask the Luhn-valid card numbers in a run of digits and single spaces or dashes.

    A card is 13-19 digits, contiguous or in groups (4-4-4-4, 4-6-5, 4-4-4-4-3...): every
    group but the last has at least 3 digits. Windows of whole groups are checked, at most
    a handful per group, so the work stays linear in the run.
    """
    run = match.group(0)
    if len(run) - run.count(" ") - run.count("-") < 13:
        return run
    groups = _SEPARATOR.split(run)
    separators = _SEPARATOR.findall(run)
    lengths = [len(group) for group in groups]
    luhn = _LuhnSums("".join(groups))
    offsets = list(accumulate(lengths, initial=0))
    masked = [False] * len(groups)
    i = 0
    while i < len(groups):
        found = -1
        length = 0
        if lengths[i] >= 3:  # a window starting with a shorter group is that group only
            for j in range(i, min(i + 7, len(groups))):
                length += lengths[j]
                if length > 19:
                    break
                if length >= 13 and luhn.valid(offsets[i], offsets[j + 1]):
                    found = j
                if lengths[j] < 3:
                    break
        if found < 0:
            i += 1
            continue
        for k in range(i, found + 1):
            masked[k] = True
        i = found + 1
    if not any(masked):
        return run
    out: list[str] = []
    for index, group in enumerate(groups):
        if not masked[index]:
            out.append(group)
        elif not (index and masked[index - 1]):
            out.append(MASK)
        if index < len(separators) and not (masked[index] and masked[index + 1]):
            out.append(separators[index])
    return "".join(out)


_DOUBLED = str.maketrans("0123456789", "0246813579")  # 2d, minus 9 when over 9


class _LuhnSums:
    """The Luhn check (card numbers' check digit) of any slice of a digit string in O(1).

    The Luhn sum doubles every second digit counting from the last one, so which digits are
    doubled depends on the parity of the slice's end: two prefix sums, one per parity, hold
    each digit plain or doubled accordingly (built in C-level passes over the string).
    """

    __slots__ = ("_digits", "_sums")

    def __init__(self, digits: str) -> None:
        self._digits = digits
        self._sums: tuple[list[int], list[int]] | None = None  # built at the first check

    def valid(self, start: int, end: int) -> bool:
        """Whether ``digits[start:end]`` passes the Luhn check."""
        if self._sums is None:
            digits = self._digits
            doubled = digits.translate(_DOUBLED)
            plain_even = list(digits)
            plain_even[1::2] = doubled[1::2]
            plain_odd = list(doubled)
            plain_odd[1::2] = digits[1::2]
            self._sums = (
                list(accumulate(map(int, plain_even), initial=0)),
                list(accumulate(map(int, plain_odd), initial=0)),
            )
        sums = self._sums[(end - 1) % 2]
        return (sums[end] - sums[start]) % 10 == 0
