"""``/__mockstatus/*``: health, the catalog, the request journal, sequences, TLS.

Admin requests are not recorded in the journal.  With ``--admin-token`` set,
every admin route but health and the CA certificate (public by nature: a
client must fetch it to trust the server) needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import functools
import hmac

from aiohttp import web

from . import __version__
from .bodies import admin_json
from .errors import admin_error
from .server import STATE
from .tls import SCENARIO_DOMAIN, SCENARIOS, SERVING


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


HTTPS_OFF = "HTTPS is off: start mockstatus with --https-port (or --tls-scenario-ports)"


async def ca_pem(request: web.Request) -> web.Response:
    """The CA certificate every HTTPS leaf chains to (PEM)."""
    serving = request.app[SERVING]
    if serving.ca_pem is None:
        return admin_error(404, HTTPS_OFF)
    return web.Response(
        body=serving.ca_pem,
        content_type="application/x-pem-file",
        headers={"Content-Disposition": 'attachment; filename="mockstatus-ca.pem"'},
    )


@guarded
async def tls_scenarios(request: web.Request) -> web.Response:
    """The bad-TLS lab: each scenario, its SNI name, its own port, what a client sees."""
    serving = request.app[SERVING]
    if serving.ca_pem is None:
        return admin_error(404, HTTPS_OFF)
    return admin_json(
        {
            "https_port": serving.https_port,
            "scenarios": [
                {
                    "scenario": scenario.name,
                    "sni": f"{scenario.name}.{SCENARIO_DOMAIN}",
                    "port": serving.scenario_ports.get(scenario.name),
                    "client_sees": scenario.what,
                }
                for scenario in SCENARIOS
            ],
        }
    )
