"""``/__mockstatus/*``: health, the catalog, the request journal, sequences,
rate-limit buckets and outages, and the test clock.

Admin requests are not recorded in the journal.  With ``--admin-token`` set,
every admin route but health needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import functools
import hmac
import json

from aiohttp import web

from . import __version__
from .bodies import admin_json
from .durations import DURATION_FORM, parse_duration
from .errors import admin_error
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
    query = request.query
    allowed = ("path", "method", "sequence", "since")
    for name in query:
        if name not in allowed:
            return admin_error(400, f"unknown filter {name!r}; allowed: {', '.join(allowed)}")
    since = None
    if "since" in query:
        try:
            since = float(query["since"])
        except ValueError:
            return admin_error(400, f"bad since {query['since']!r}: expected a Unix time in seconds")
    entries = state.journal.query(
        path=query.get("path"), method=query.get("method"), sequence=query.get("sequence"), since=since
    )
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


@guarded
async def buckets_list(request: web.Request) -> web.Response:
    return admin_json(request.app[STATE].buckets.snapshot())


@guarded
async def buckets_reset(request: web.Request) -> web.Response:
    request.app[STATE].buckets.reset()
    return admin_json({"reset": "all"})


MAX_CLOCK_BODY = 1024
MAX_ADVANCE = 365 * 86_400.0  # a year: far past any window, and a float keeps the sub-millisecond


def _clock_json(state) -> dict:
    return {"offset": state.clock.offset}


@guarded
async def clock_show(request: web.Request) -> web.Response:
    return admin_json(_clock_json(request.app[STATE]))


@guarded
async def clock_advance(request: web.Request) -> web.Response:
    """``{"advance": "30s"}``: move the clock limits and outages read; delays stay in real time."""
    state = request.app[STATE]
    form = f'a JSON object {{"advance": DURATION}} with {DURATION_FORM}'
    if request.content_length is not None and request.content_length > MAX_CLOCK_BODY:
        return admin_error(
            413, f"clock body of {request.content_length} bytes is above {MAX_CLOCK_BODY}; expected {form}"
        )
    body = await request.content.read(MAX_CLOCK_BODY + 1)
    if len(body) > MAX_CLOCK_BODY:
        return admin_error(413, f"clock body is above {MAX_CLOCK_BODY} bytes; expected {form}")
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict) or set(data) != {"advance"}:
        return admin_error(400, f"bad clock body {body[:100].decode('utf-8', 'replace')!r}: expected {form}")
    try:
        seconds = parse_duration(data["advance"], what="advance")
    except ValueError as exc:
        return admin_error(400, str(exc))
    if seconds > MAX_ADVANCE:
        return admin_error(400, f"bad advance {data['advance']!r}: at most a year (8760h) at once")
    state.clock.advance(seconds)
    return admin_json(_clock_json(state))


@guarded
async def clock_reset(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.clock.reset()
    return admin_json(_clock_json(state))
