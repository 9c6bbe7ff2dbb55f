"""API keys and client identity for the monitoring API.

``OTEL_MONITORING_API_KEY`` holds one or more comma-separated entries ``SECRET[:ROLE]`` with
``ROLE`` ``read`` or ``admin`` (a bare secret is ``admin``). With any key configured, every
endpoint but ``/health`` needs ``Authorization: Bearer <secret>``; mutating endpoints need
an admin key. Secrets are compared in constant time, never logged, and principals are named
by a short hash (``key:1a2b3c4d``), so audit records never hold a secret.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "FORWARDED_CLIENT",
    "ApiKeys",
    "Principal",
    "Role",
    "client_address",
    "is_local_client",
    "parse_api_keys",
]


class Role(StrEnum):
    """What a key may do."""

    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key's name and role, or an anonymous client."""

    name: str
    role: Role | None


def parse_api_keys(text: str) -> tuple[tuple[str, str], ...]:
    """Parse ``secret1:admin,secret2:read`` into ``((secret, role), ...)``.

    Raises:
        ValueError: an entry is empty, has an unknown role, or a secret shorter than 8.
    """
    keys = []
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        secret, _, role = entry.rpartition(":") if ":" in entry else (entry, "", "admin")
        if role not in (Role.READ.value, Role.ADMIN.value):
            raise ValueError(f"unknown role {role!r} (use read or admin)")
        if len(secret) < 8:
            raise ValueError("each key must be at least 8 characters long")
        keys.append((secret, role))
    if not keys:
        raise ValueError("no key given (format: SECRET[:read|admin][,SECRET2:ROLE])")
    return tuple(keys)


class ApiKeys:
    """The configured keys; :meth:`authenticate` maps a bearer token to a principal."""

    def __init__(self, keys: Iterable[tuple[str, str]]) -> None:
        self._keys = [(secret.encode(), Role(role)) for secret, role in keys]

    @property
    def configured(self) -> bool:
        """Whether any key is configured (then reads need a key too)."""
        return bool(self._keys)

    @property
    def has_admin(self) -> bool:
        """Whether an admin key is configured (mutating endpoints are enabled)."""
        return any(role is Role.ADMIN for _, role in self._keys)

    def authenticate(self, token: str | None) -> Principal | None:
        """The principal of a token, or ``None`` for a missing or unknown token.

        Every configured key is compared (constant time each, no early exit), so timing
        does not tell which prefix or which key matched.
        """
        if not token:
            return None
        candidate = token.encode()
        found: Principal | None = None
        for secret, role in self._keys:
            if hmac.compare_digest(candidate, secret):
                found = Principal(f"key:{hashlib.sha256(secret).hexdigest()[:8]}", role)
        return found


#: The rate-limit identity shared by every request whose client address may have been
#: taken from ``X-Forwarded-For`` by the server (see :func:`client_address`).
FORWARDED_CLIENT = "x-forwarded-for"


def client_address(peer: str | None, forwarded_for: str | None, trusted: Sequence[str]) -> str:
    """The rate-limit identity of a client: its address, or :data:`FORWARDED_CLIENT`.

    ``peer`` is the ASGI ``scope["client"]`` host. Servers may already have replaced it
    with a hop of ``X-Forwarded-For`` (uvicorn does for peers in ``--forwarded-allow-ips``:
    127.0.0.1 by default, anyone with ``'*'``) and keep no trace of the real peer. So:

    * no ``X-Forwarded-For``, or ``peer`` not among its hops: ``peer`` is the real peer;
      its header is believed only when it is in ``trusted`` (then the right-most hop not in
      ``trusted`` is the client);
    * ``peer`` among the hops, ``trusted`` empty: the address may be forged, so every such
      request shares the one identity :data:`FORWARDED_CLIENT` (one budget, not a fresh one
      per forged address);
    * ``peer`` among the hops, ``trusted`` set: the server vouched for its peer; the
      right-most hop not in ``trusted`` is the client (give the server the same proxies,
      e.g. uvicorn's ``--forwarded-allow-ips``).
    """
    if not peer:
        return "unknown"
    hops = [_host(hop) for hop in (forwarded_for or "").split(",") if hop.strip()]
    rewritten = peer in hops
    if not hops or not (rewritten or _is_trusted(peer, trusted)):
        return peer
    if not trusted:
        return FORWARDED_CLIENT
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0]


def _host(hop: str) -> str:
    """``1.2.3.4:80`` -> ``1.2.3.4``, ``[::1]:80`` -> ``::1`` (as servers parse a hop)."""
    hop = hop.strip()
    if hop.startswith("[") and "]" in hop:
        return hop[1 : hop.index("]")]
    if hop.count(":") == 1:
        return hop.partition(":")[0]
    return hop


def is_local_client(address: str, forwarded: bool) -> bool:
    """Whether a client (its :func:`client_address`) is on this host: a loopback address,
    or no network address at all (a Unix socket, an in-process test client). A loopback
    peer that forwards someone else's request (``X-Forwarded-For``/``Forwarded``, from a
    proxy not listed as trusted) is not local, nor is :data:`FORWARDED_CLIENT` (the server
    may have taken the peer address itself from a forged ``X-Forwarded-For``)."""
    if address == FORWARDED_CLIENT:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return not forwarded
    return ip.is_loopback and not forwarded


def _is_trusted(address: str, trusted: Sequence[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in trusted)
