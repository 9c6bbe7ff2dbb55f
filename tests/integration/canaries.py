"""The secrets ``canary_app`` plants in its exceptions (shared with the tests)."""

from __future__ import annotations

CARD_SPACED = "4111 1111 1111 1111"
CARD_DASHED = "5500-0000-0000-0004"
CARD_PLAIN = "4012888888881881"
CANARIES = (
    CARD_SPACED,
    CARD_DASHED,
    CARD_PLAIN,
    "4111111111111111",
    "5500000000000004",
    "canary-pw-dict",
    "canary-pw-json",
    "canary-pw-kwarg",
    "canary-client-secret",
    "canary-access-token",
    "canary-refresh-token",
    "canaryBearerToken0123456789",
    "Y2FuYXJ5OmJhc2ljLXB3",  # base64 of canary:basic-pw
    "canary.user@example.org",
    "canary-sql-password",
    "canary-sql-login-pw",
)
