"""Every error reply, in one place.

- ``error``: a 4xx from a handler, naming the bad value and what is allowed,
  in the client's format (text, JSON or HTML) and with CORS for a
  cross-origin caller; the reason phrase is the catalog's.  ``error_for``
  negotiates it from a request's own headers.
- ``plain_reply``: a whole closing reply as bytes, for the connection layer,
  which refuses malformed requests before any request object exists.
- ``admin_error``: the admin API's JSON error (``{"code", "error"}``).
"""

from __future__ import annotations

import html
import json

from aiohttp import web
from multidict import CIMultiDict

from .bodies import BASE_HEADERS, CONTENT_TYPES, admin_json, html_page, negotiate_format
from .catalog import Catalog
from .cors import cors
from .heads import SERVER, http_date, raw_head


def error_body(status: int, reason: str, message: str, fmt: str) -> bytes:
    """A 4xx body that names the bad value and what is allowed."""
    if fmt == "json":
        return json.dumps({"code": status, "reason": reason, "error": message}, ensure_ascii=False).encode() + b"\n"
    if fmt == "html":
        inner = f'<h1>{status} {html.escape(reason)}</h1><p>{html.escape(message)}</p><p><a href="/">All status codes</a></p>'
        return html_page(f"{status} {reason}", inner).encode()
    return f"{status} {reason}: {message}\n".encode()


def error(catalog: Catalog, status: int, message: str, fmt: str = "text", origin: str | None = None) -> web.Response:
    """A 4xx that names the bad value and what is allowed, in the format ``fmt``."""
    reason = catalog.get(status).reason
    headers = CIMultiDict(BASE_HEADERS)
    headers["Content-Type"] = CONTENT_TYPES[fmt]
    if origin is not None:
        cors(headers, origin)
    response = web.Response(
        status=status, reason=reason, body=error_body(status, reason, message, fmt), headers=headers
    )
    if status == 413:
        # The rest of an oversized body is never read: close instead of draining it.
        response.force_close()
    return response


def error_for(request: web.BaseRequest, catalog: Catalog, status: int, message: str) -> web.Response:
    """``error`` in the format and for the Origin of ``request``'s own headers."""
    headers = request.headers
    return error(catalog, status, message, negotiate_format(headers.get("Accept")), headers.get("Origin"))


def admin_error(status: int, message: str) -> web.Response:
    """An error of the admin API, in its JSON."""
    return admin_json({"code": status, "error": message}, status)


def plain_reply(
    status: int,
    reason: str,
    text: str,
    extra: tuple[tuple[str, str], ...] = (),
    *,
    nosniff: bool = False,
    head_only: bool = False,
) -> bytes:
    """A whole closing reply with a text body naming what went wrong (only its head for HEAD)."""
    body = f"{status} {reason}: {text}\n".encode("utf-8", "backslashreplace")
    headers = [
        ("Server", SERVER),
        ("Date", http_date()),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        *extra,
    ]
    if nosniff:
        # The text quotes the bytes it refused: never let a browser sniff it as HTML.
        headers.append(("X-Content-Type-Options", "nosniff"))
    headers.append(("Connection", "close"))
    return raw_head(status, reason, headers) + (b"" if head_only else body)
