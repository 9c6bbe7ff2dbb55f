"""The HTML dashboard: one page and its assets, shipped inside the package.

The page reads only the JSON API beside it (it derives the API base from its own URL), so
it works under any prefix and with no internet access: no CDN, no external fonts, charts
drawn by its own small SVG code. The routes are public: the page holds no data; the API
calls it makes carry the key the user enters (``Authorization: Bearer ...``).

Assets are read once from the package (``importlib.resources``) and looked up by exact
name, so nothing outside ``static/`` can be reached. They are served with a strong ETag
and ``Cache-Control: no-cache``: browsers revalidate (a ``304`` with no body) and never
run a stale script after an upgrade.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Final

from fastapi import APIRouter, HTTPException, Request, Response

__all__ = ["make_ui_router"]

_PACKAGE: Final = "otel_monitoring.dashboard"
_PAGE: Final = "index.html"

_CONTENT_TYPES: Final[Mapping[str, str]] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}

# The page builds its DOM from text nodes only; the policy is a second line of defence
# against markup smuggled in through route names or messages from user traffic.
_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": _CSP,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True, slots=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


@functools.cache
def _assets() -> Mapping[str, _Asset]:
    """Every file of ``static/`` by name (read once; the package does not change at run time)."""
    found: dict[str, _Asset] = {}
    for entry in (resources.files(_PACKAGE) / "static").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        media_type = _CONTENT_TYPES.get(suffix)
        if media_type is None or not entry.is_file():
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        found[entry.name] = _Asset(body, media_type, etag)
    return found


def _serve(asset: _Asset, request: Request, extra: Mapping[str, str] | None = None) -> Response:
    headers = {
        "ETag": asset.etag,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        **(extra or {}),
    }
    if asset.etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def _etags(header: str) -> set[str]:
    # Weak validators match too for GET (RFC 9110, 13.1.2: weak comparison).
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def make_ui_router() -> APIRouter:
    """Routes of the dashboard: ``GET /ui`` (the page) and ``GET /ui/static/{name}``.

    Include it in the monitoring router; the page then lives at ``<prefix>/ui``. Neither
    route appears in the OpenAPI schema and neither needs a key.
    """
    router = APIRouter(include_in_schema=False)

    @router.api_route("/ui", methods=["GET", "HEAD"])
    def page(request: Request) -> Response:
        return _serve(_assets()[_PAGE], request, _PAGE_HEADERS)

    @router.api_route("/ui/static/{name}", methods=["GET", "HEAD"])
    def static(name: str, request: Request) -> Response:
        asset = _assets().get(name)
        if asset is None:
            raise HTTPException(
                status_code=404,
                detail=f"no dashboard asset named {name[:100]!r}; "
                f"known: {sorted(n for n in _assets() if n != _PAGE)}",
            )
        return _serve(asset, request)

    return router
