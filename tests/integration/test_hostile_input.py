"""Hostile input against the monitoring API under a real uvicorn process.

Bad bodies get a 422 with the reason, never a 500; nothing is done or audited for them and
the server's log holds no traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

SHOP = "otel_monitoring.demo.shop:app"
ADMIN_KEY = "hostile-admin-key-1"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"}

#: Raw bodies Python's json accepts but RFC 8259 does not, or text that is not Unicode.
BAD_BODIES = [
    b'{"reason": NaN}',
    b'{"reason": Infinity}',
    b'{"reason": -Infinity}',
    b'{"reason": "\\ud800"}',
    b'{"reason": "ok \\udfff"}',
    b'{"route": NaN}',
    b'{"max_age": NaN, "reason": "x"}',
    b'{"reason": "\xff\xfe"}',
    b"[" * 5000 + b"]" * 5000,
]
POSTS = [
    "/monitoring/alerts/some-id/resolve",
    "/monitoring/anomalies/detect",
    "/monitoring/cleanup",
]


@pytest.fixture
def shop(
    start_server: Callable[..., Any], port: int, shop_env: dict[str, str], uvicorn_cmd: Any
) -> Any:
    env = {**shop_env, "SHOP_INSTRUMENT": "1", "OTEL_MONITORING_API_KEY": ADMIN_KEY}
    env["OTEL_MONITORING_RATE_LIMITS"] = "resolve=1000/minute,detect=1000/minute"
    env["OTEL_MONITORING_RATE_LIMITS"] += ",cleanup=1000/minute"
    return start_server(uvicorn_cmd(SHOP, port), env, port)


def test_non_json_values_get_a_422_with_the_reason_and_no_traceback(shop: Any) -> None:
    with httpx.Client(base_url=shop.url, timeout=10) as client:
        for path in POSTS:
            for body in BAD_BODIES:
                answer = client.post(path, content=body, headers=ADMIN)
                assert answer.status_code == 422, (path, body[:40], answer.text)
                detail = answer.json()["detail"]
                assert "invalid JSON body" in detail, detail
        answer = client.post(POSTS[0], content=b'{"reason": NaN}', headers=ADMIN)
        assert "NaN" in answer.json()["detail"]
        answer = client.post(POSTS[0], content=b'{"reason": "\\ud800"}', headers=ADMIN)
        assert "surrogate" in answer.json()["detail"]
        audit = client.get("/monitoring/audit", headers=ADMIN).json()
    assert audit == []
    assert "Traceback" not in shop.output()


@pytest.mark.parametrize(
    "max_age", ["99999999999999999999999d", "999999999999d", "10000d", "1000000000s"]
)
def test_cleanup_with_an_enormous_max_age_is_refused_before_acting(shop: Any, max_age: str) -> None:
    with httpx.Client(base_url=shop.url, timeout=10) as client:
        answer = client.post("/monitoring/cleanup", json={"max_age": max_age}, headers=ADMIN)
        assert answer.status_code == 422, answer.text
        assert "too large: at most 9999d" in str(answer.json()["detail"])
        assert client.get("/monitoring/audit", headers=ADMIN).json() == []
        done = client.post("/monitoring/cleanup", json={"max_age": "9999d"}, headers=ADMIN)
        assert done.status_code == 200, done.text
        (record,) = client.get("/monitoring/audit", headers=ADMIN).json()
    assert record["action"] == "cleanup"
    assert "Traceback" not in shop.output()


# -- rate limits and X-Forwarded-For ----------------------------------------------------------
def _health_codes(url: str, forwarded: list[str]) -> list[int]:
    with httpx.Client(base_url=url, timeout=10) as client:
        return [
            client.get("/monitoring/health", headers={"X-Forwarded-For": address}).status_code
            for address in forwarded
        ]


FORGED = [f"203.0.113.{i}" for i in range(1, 7)]


@pytest.mark.parametrize("allow", [None, "*"], ids=["uvicorn-defaults", "forwarded-allow-all"])
def test_forged_forwarded_for_shares_one_budget(
    start_server: Callable[..., Any],
    port: int,
    shop_env: dict[str, str],
    uvicorn_cmd: Any,
    allow: str | None,
) -> None:
    argv = uvicorn_cmd(SHOP, port) + ([f"--forwarded-allow-ips={allow}"] if allow else [])
    env = {**shop_env, "SHOP_INSTRUMENT": "1", "OTEL_MONITORING_RATE_LIMITS": "health=3/minute"}
    shop = start_server(argv, env, port)
    assert _health_codes(shop.url, FORGED) == [200, 200, 200, 429, 429, 429]
    assert "Traceback" not in shop.output()


def test_trusted_proxies_key_on_the_rightmost_untrusted_hop(
    start_server: Callable[..., Any], port: int, shop_env: dict[str, str], uvicorn_cmd: Any
) -> None:
    env = {
        **shop_env,
        "SHOP_INSTRUMENT": "1",
        "OTEL_MONITORING_RATE_LIMITS": "health=2/minute",
        "OTEL_MONITORING_TRUSTED_PROXIES": "127.0.0.1,10.0.0.0/8",
    }
    shop = start_server(uvicorn_cmd(SHOP, port), env, port)
    # Each client behind the proxies has its own budget; hops the proxies vouch for are
    # skipped, and what a client writes left of its own address does not matter.
    assert _health_codes(shop.url, ["198.51.100.1, 10.0.0.2"] * 3) == [200, 200, 429]
    assert _health_codes(shop.url, ["6.6.6.6, 198.51.100.1", "7.7.7.7, 198.51.100.1"]) == [
        429,
        429,
    ]
    assert _health_codes(shop.url, ["198.51.100.2"] * 3) == [200, 200, 429]
