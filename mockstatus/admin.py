"""``/__mockstatus/*``: health, the catalog, the request journal and sequences.

Admin requests are not recorded in the journal.  With ``--admin-token`` set,
every admin route but health needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import functools
import hmac

from aiohttp import web

from . import __version__
from .bodies import admin_json
from .errors import admin_error
from .journal import parse_filters
from .server import STATE


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
                response = admin_error(401, "admin endpoints need 'Authorization: Bearer <token>'")
                response.headers["WWW-Authenticate"] = 'Bearer realm="mockstatus-admin"'
                return response
        return await handler(request)

    return check


async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return admin_json({"status": "ok", "version": __version__, "codes": len(state.catalog)})


@guarded
async def codes(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return admin_json({"version": __version__, "codes": [info.as_json() for info in state.catalog]})


@guarded
async def requests_list(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        filters = parse_filters(dict(request.query))
    except ValueError as exc:
        return admin_error(400, str(exc))
    entries = state.journal.query(**filters)
    return admin_json({"count": len(entries), "requests": [entry.as_json() for entry in entries]})


@guarded
async def requests_clear(request: web.Request) -> web.Response:
    request.app[STATE].journal.clear()
    return admin_json({"cleared": True})


@guarded
async def sequences_list(request: web.Request) -> web.Response:
    return admin_json({"sequences": request.app[STATE].sequences.snapshot()})


@guarded
async def sequences_reset(request: web.Request) -> web.Response:
    name = request.match_info.get("name")
    found = request.app[STATE].sequences.reset(name)
    if not found:
        return admin_error(404, f"no sequence named {name!r}")
    return admin_json({"reset": name or "all"})
