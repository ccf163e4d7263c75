"""CORS for browser callers (Fetch standard): what a cross-origin script may read, and preflights."""

from __future__ import annotations

from aiohttp import web
from multidict import CIMultiDict

from .bodies import BASE_HEADERS

# Headers a cross-origin fetch() may read: the ones our codes set.  Sent only
# to requests that carry an Origin (every cross-origin browser request does,
# RFC 6454 §7), so a reply to any other client is that much shorter.
EXPOSED = (
    "Location, Retry-After, WWW-Authenticate, Proxy-Authenticate, Allow, Content-Range, "
    "ETag, Link, Upgrade, Server-Timing, X-Mockstatus-Choice, X-Mockstatus-Sequence, "
    "X-Mockstatus-Step, X-More-Info, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, "
    "RateLimit-Policy, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
)
PREFLIGHT_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE, PROPFIND, LOCK, UNLOCK, MKCOL, COPY, MOVE"


def cors(headers: CIMultiDict, origin: str) -> None:
    """Echo the caller's Origin so credentialed fetch() works too."""
    headers["Access-Control-Allow-Origin"] = origin
    headers["Access-Control-Allow-Credentials"] = "true"
    headers["Access-Control-Expose-Headers"] = EXPOSED
    headers["Vary"] = headers.get("Vary", "") + (", Origin" if "Vary" in headers else "Origin")


def preflight(origin: str | None, requested_headers: str | None) -> web.Response:
    """A real CORS preflight (OPTIONS + Access-Control-Request-Method): 204 with the allow headers."""
    headers = CIMultiDict(BASE_HEADERS)
    headers["Access-Control-Allow-Origin"] = origin if origin is not None else "*"
    headers["Access-Control-Allow-Methods"] = PREFLIGHT_METHODS
    if requested_headers:
        headers["Access-Control-Allow-Headers"] = requested_headers
    headers["Access-Control-Max-Age"] = "600"
    headers["Vary"] = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    if origin is not None:
        headers["Access-Control-Allow-Credentials"] = "true"
    return web.Response(status=204, headers=headers)
