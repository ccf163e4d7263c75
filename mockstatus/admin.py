"""``/__mockstatus/*``: health, the catalog, the request journal, sequences, TLS,
rate-limit buckets and outages, and the test clock.

Admin requests are not recorded in the journal.  With ``--admin-token`` set,
every admin route but health and the CA certificate (public by nature: a
client must fetch it to trust the server) needs ``Authorization: Bearer <token>``.
On a server bound to loopback, every admin route answers only requests whose
``Host`` is a loopback name (or one of ``--allowed-hosts``): a web page that
rebinds its own name to 127.0.0.1 sends its name as the Host.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import json

from aiohttp import web

from . import __version__, transcript
from .bodies import admin_json, admin_json_list
from .durations import DURATION_FORM, parse_duration
from .errors import admin_error
from .journal import FILTERS, PAGING, parse_filters
from .server import STATE
from .store import DEFAULT_NAMESPACE, NAMESPACE_HEADER, StoreError, check_namespace
from .tls import SCENARIO_DOMAIN, SCENARIOS, SERVING


def _bearer_matches(header: str, token: str) -> bool:
    # RFC 9110 §11.1: the auth scheme is case-insensitive.  Header bytes that are
    # not UTF-8 arrive as surrogates (aiohttp's surrogateescape); keep them as
    # bytes so a stray byte is a 401, not an encoding error.
    scheme, _, given = header.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "surrogateescape"), token.encode("utf-8", "surrogateescape")
    )


def _is_loopback(host: str) -> bool:
    # RFC 6761 §6.3: localhost and *.localhost name the loopback interface.
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """``Host: name:port`` -> name; ``[::1]:8080`` -> ``[::1]``."""
    if header.startswith("["):
        return header.partition("]")[0] + "]"
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def host_refused(request: web.Request) -> web.Response | None:
    """A 403 for a Host a server bound to loopback does not answer admin requests for."""
    settings = request.app[STATE].settings
    if not _is_loopback(settings.host):
        return None
    header = request.headers.get("Host")
    if header is None:  # HTTP/1.0 without Host: not a browser
        return None
    name = _host_name(header.strip())
    if _is_loopback(name) or name.lower() in settings.allowed_hosts:
        return None
    allowed = ", ".join(("localhost", "127.0.0.1", "[::1]", *settings.allowed_hosts))
    return admin_error(
        403,
        f"Host {header!r} is not a loopback name; a server bound to {settings.host} answers admin requests "
        f"for {allowed} (add names with --allowed-hosts)",
    )


def owner_only(handler):
    """Host check, for every admin route (health included)."""

    @functools.wraps(handler)
    async def check(request: web.Request) -> web.StreamResponse:
        refused = host_refused(request)
        if refused is not None:
            return refused
        return await handler(request)

    return check


def guarded(handler):
    """The Host check, then the admin token when one is set: every admin route but health."""

    @functools.wraps(handler)
    async def check(request: web.Request) -> web.StreamResponse:
        token = request.app[STATE].settings.admin_token
        if token and not _bearer_matches(request.headers.get("Authorization", ""), token):
            response = admin_error(401, "admin endpoints need 'Authorization: Bearer <token>'")
            response.headers["WWW-Authenticate"] = 'Bearer realm="mockstatus-admin"'
            return response
        return await handler(request)

    return owner_only(check)


def _namespace(request: web.Request) -> str:
    """``?namespace=``, else the /ns/{namespace}/ prefix or the header, else the default; ValueError names a bad one."""
    given = request.query.get("namespace")
    if given is None:
        given = request.match_info.get("namespace") or request.headers.get(NAMESPACE_HEADER)
    return check_namespace(given) if given is not None else DEFAULT_NAMESPACE


def store_error(exc: StoreError) -> web.Response:
    response = admin_error(503, str(exc))
    response.headers["X-Mockstatus-Error"] = "state-store"
    return response


@owner_only
async def health(request: web.Request) -> web.Response:
    state = request.app[STATE]
    checked = await state.store.health()
    body = {"status": "ok", "version": __version__, "codes": len(state.catalog), **checked.details}
    if checked.problem is not None:
        # A readiness probe takes this replica out while its store is away.
        return admin_json({**body, "status": "unavailable", "problem": checked.problem}, 503)
    return admin_json(body)


@guarded
async def metrics(request: web.Request) -> web.Response:
    """This replica's counters, in the Prometheus text format (metrics.py)."""
    from .metrics import CONTENT_TYPE, render

    return web.Response(body=render(request.app[STATE]), headers={"Content-Type": CONTENT_TYPE})


@guarded
async def codes(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return admin_json({"version": __version__, "codes": [info.as_json() for info in state.catalog]})


@guarded
async def requests_list(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    given = dict(request.query)
    given.pop("namespace", None)
    try:
        namespace = _namespace(request)
        filters = parse_filters(given, FILTERS + PAGING)
    except ValueError as exc:
        return admin_error(400, str(exc))
    try:
        entries = await state.store.requests(namespace, dict(filters), not state.journal.keep_secrets)
    except StoreError as exc:
        return store_error(exc)
    head: dict = {"count": len(entries)}
    if "limit" in filters:
        # The id to pass as ?after= for the next page; null when this page is the last.
        head["next_after"] = entries[-1].id if len(entries) == filters["limit"] else None
    return await admin_json_list(request, head, "requests", entries, _entry_json)


def _entry_json(entry) -> dict:
    return entry.as_json()


@guarded
async def requests_clear(request: web.Request) -> web.Response:
    try:
        await request.app[STATE].store.clear_journal(_namespace(request))
    except ValueError as exc:
        return admin_error(400, str(exc))
    except StoreError as exc:
        return store_error(exc)
    return admin_json({"cleared": True})


@guarded
async def sequences_list(request: web.Request) -> web.Response:
    try:
        return admin_json({"sequences": await request.app[STATE].store.snapshot(_namespace(request))})
    except ValueError as exc:
        return admin_error(400, str(exc))
    except StoreError as exc:
        return store_error(exc)


@guarded
async def sequences_reset(request: web.Request) -> web.Response:
    name = request.match_info.get("name")
    try:
        found = await request.app[STATE].store.reset_sequences(_namespace(request), name)
    except ValueError as exc:
        return admin_error(400, str(exc))
    except StoreError as exc:
        return store_error(exc)
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


@guarded
async def buckets_list(request: web.Request) -> web.Response:
    try:
        state = request.app[STATE]
        return admin_json(await state.store.buckets(_namespace(request)))
    except ValueError as exc:
        return admin_error(400, str(exc))
    except StoreError as exc:
        return store_error(exc)


@guarded
async def buckets_reset(request: web.Request) -> web.Response:
    try:
        namespace = _namespace(request)
    except ValueError as exc:
        return admin_error(400, str(exc))
    state = request.app[STATE]
    try:
        await state.store.reset_buckets(namespace)
    except StoreError as exc:
        return store_error(exc)
    return admin_json({"reset": "all", "namespace": namespace})


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
    try:
        await state.store.advance_clock(seconds)
    except StoreError as exc:
        return store_error(exc)
    return admin_json(_clock_json(state))


@guarded
async def clock_reset(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        await state.store.reset_clock()
    except StoreError as exc:
        return store_error(exc)
    return admin_json(_clock_json(state))


@guarded
async def transcript_show(request: web.Request) -> web.Response:
    """One request to this server over a raw socket, as the wire carried it (transcript.py)."""
    try:
        ask = transcript.parse_ask(request.query, request.app[STATE].settings.max_delay)
    except ValueError as exc:
        return admin_error(400, str(exc))
    status, data = await transcript.transcript_for(
        ask, request.app[transcript.OWN], request.app[SERVING], request.headers.get("Host")
    )
    return admin_json(data) if status == 200 else admin_error(status, data["error"])
