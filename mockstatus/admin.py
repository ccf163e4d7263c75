"""``/__mockstatus/*``: health, the catalog, the request journal and sequences.

Admin requests are not recorded in the journal.  With ``--admin-token`` set,
every admin route but health needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import functools
import hmac
import json

from aiohttp import web

from . import __version__
from .server_state import STATE

JSON = "application/json"


def _json(data, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(data, ensure_ascii=False, indent=1).encode() + b"\n",
        content_type=JSON,
        headers={
            "Server": f"mockstatus/{__version__}",
            "Access-Control-Allow-Origin": "*",
            "Cache-Control": "no-store",
        },
    )


def _bearer_matches(header: str, token: str) -> bool:
    # RFC 9110 §11.1: the auth scheme is case-insensitive.  Header bytes that are
    # not UTF-8 arrive as surrogates (aiohttp's surrogateescape); keep them as
    # bytes so a stray byte is a 401, not an encoding error.
    scheme, _, given = header.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "surrogateescape"), token.encode("utf-8", "surrogateescape")
    )


def guarded(handler):
    @functools.wraps(handler)
    async def check(request: web.Request) -> web.StreamResponse:
        token = request.app[STATE].settings.admin_token
        if token:
            if not _bearer_matches(request.headers.get("Authorization", ""), token):
                response = _json({"code": 401, "error": "admin endpoints need 'Authorization: Bearer <token>'"}, 401)
                response.headers["WWW-Authenticate"] = 'Bearer realm="mockstatus-admin"'
                return response
        return await handler(request)

    return check


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return _json({"status": "ok", "version": __version__, "codes": len(state.catalog)})


@guarded
async def codes(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return _json({"version": __version__, "codes": [info.as_json() for info in state.catalog]})


@guarded
async def requests_list(request: web.Request) -> web.Response:
    state = request.app[STATE]
    query = request.query
    allowed = ("path", "method", "sequence", "since")
    for name in query:
        if name not in allowed:
            return _json({"code": 400, "error": f"unknown filter {name!r}; allowed: {', '.join(allowed)}"}, 400)
    since = None
    if "since" in query:
        try:
            since = float(query["since"])
        except ValueError:
            return _json({"code": 400, "error": f"bad since {query['since']!r}: expected a Unix time in seconds"}, 400)
    entries = state.journal.query(
        path=query.get("path"), method=query.get("method"), sequence=query.get("sequence"), since=since
    )
    return _json({"count": len(entries), "requests": [entry.as_json() for entry in entries]})


@guarded
async def requests_clear(request: web.Request) -> web.Response:
    request.app[STATE].journal.clear()
    return _json({"cleared": True})


@guarded
async def sequences_list(request: web.Request) -> web.Response:
    return _json({"sequences": request.app[STATE].sequences.snapshot()})


@guarded
async def sequences_reset(request: web.Request) -> web.Response:
    name = request.match_info.get("name")
    found = request.app[STATE].sequences.reset(name)
    if not found:
        return _json({"code": 404, "error": f"no sequence named {name!r}"}, 404)
    return _json({"reset": name or "all"})
