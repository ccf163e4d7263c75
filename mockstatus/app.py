"""The app factory and the route table (which reads as the table of contents)."""

from __future__ import annotations

import functools

from aiohttp import web

from . import admin, handlers, page, protocol, tls, transcript
from .catalog import Catalog, load_catalog
from .errors import error_for
from .server import STATE, ServerState
from .settings import Settings
from .store import NAMESPACE, NAMESPACE_FORM

ANY = "*"  # every method, the WebDAV ones included (423 Locked comes from WebDAV)


NAMESPACE_PREFIX = "/ns/{namespace:[^/]+}"
# Stands for one plain route per catalog code (/status/200, /status/503, ...),
# made in make_app: aiohttp finds a plain path with a dict lookup, where a
# pattern costs a regex match and a match_info dict for every request.
EACH_CATALOG_CODE = "/status/<each catalog code>"

# The route table, in matching order.
ROUTES = (
    (ANY, "/", page.index),  # 405 for anything but GET/HEAD
    ("GET", "/__mockstatus/health", admin.health),
    ("GET", "/__mockstatus/metrics", admin.metrics),
    ("GET", "/__mockstatus/codes", admin.codes),
    ("GET", "/__mockstatus/ca.pem", admin.ca_pem),
    ("GET", "/__mockstatus/tls", admin.tls_scenarios),
    ("GET", "/__mockstatus/requests", admin.requests_list),
    ("DELETE", "/__mockstatus/requests", admin.requests_clear),
    ("GET", "/__mockstatus/sequences", admin.sequences_list),
    ("DELETE", "/__mockstatus/sequences", admin.sequences_reset),
    ("DELETE", "/__mockstatus/sequences/{name}", admin.sequences_reset),
    ("GET", "/__mockstatus/buckets", admin.buckets_list),
    ("DELETE", "/__mockstatus/buckets", admin.buckets_reset),
    ("GET", "/__mockstatus/clock", admin.clock_show),
    ("POST", "/__mockstatus/clock", admin.clock_advance),
    ("DELETE", "/__mockstatus/clock", admin.clock_reset),
    ("GET", "/__mockstatus/transcript", admin.transcript_show),
    (ANY, "/__mockstatus/static/{name}", page.static),
    (ANY, "/status", handlers.status_missing),
    # [\s\S]*, not .*: a decoded %0A in the path must reach the handler (a 400 naming
    # it), not fall through every route to aiohttp's bare "404: Not Found".
    # The fast path is here too: status_handler answers a plain /status/NNN first thing.
    (ANY, EACH_CATALOG_CODE, handlers.status_handler),
    (ANY, r"/status/{codes:[\s\S]*}", handlers.status_handler),
    (ANY, r"/sequence/{name:[^/]+}/{codes:[\s\S]*}", handlers.sequence_handler),
    (ANY, "/sequence", handlers.sequence_missing),
    (ANY, "/sequence/{name:[^/]+}", handlers.sequence_missing),
    # Everything else: 405 with Allow where the path exists for other methods, else 404.
    (ANY, r"/{tail:[\s\S]*}", handlers.not_found),
)


def namespaced(handler):
    """A route under /ns/{namespace}/: a 400 naming a bad namespace, else the route's own handler."""

    @functools.wraps(handler)
    async def check(request: web.Request) -> web.StreamResponse:
        name = request.match_info["namespace"]
        if not NAMESPACE.fullmatch(name):
            state = request.app[STATE]
            state.journal.record(request, 400)
            return error_for(
                request, state.catalog, 400, f"bad namespace {name!r} in the path: expected {NAMESPACE_FORM}"
            )
        return await handler(request)

    return check


def make_app(settings: Settings | None = None, catalog: Catalog | None = None) -> web.Application:
    settings = settings or Settings()
    catalog = catalog or load_catalog(settings.config)
    # The connection layer enforces the head limits (a 400 naming each); aiohttp's
    # parser gets room above them, so it never refuses a head the layer accepted.
    limits = {
        "max_line_size": settings.max_request_line + 64,
        "max_field_size": settings.max_header_size + 256,
        "max_headers": settings.max_headers + 8,
    }
    app = web.Application(client_max_size=settings.max_body_size, handler_args=limits)
    state = ServerState(settings, catalog)
    app[STATE] = state
    app[page.PAGES] = page.Pages(catalog)  # the browser page, rendered once per app
    app[tls.SERVING] = tls.Serving()  # filled in when HTTPS starts, maybe after the app
    app[transcript.OWN] = transcript.Own()  # the listening sockets, filled in at start
    expect = make_expect_handler(state)
    app.on_startup.append(_start_store)
    app.on_cleanup.append(_close_store)

    # Every route checks Expect (RFC 9110 §10.1.1): a body above --max-body-size
    # is refused before the client sends it, whatever the path.
    # Each route is also served under a /ns/{namespace}/ prefix (the request's
    # namespace: its sequences and journal), checked before its handler runs.
    # The plain routes come first (a plain /status/NNN tries no prefixed one),
    # the catch-all last (it would take every /ns/ path).
    *routes, fallback = ROUTES
    plain, prefixed = ("", None), (NAMESPACE_PREFIX, namespaced)
    for (prefix, wrap), table in ((plain, routes), (prefixed, ROUTES), (plain, [fallback])):
        for method, path, handler in table:
            if wrap is not None:
                handler = protocol.tracked(wrap(handler))
            elif handler not in BEGIN_THEMSELVES:
                handler = protocol.tracked(handler)
            for one in _paths(path, state, prefixed=wrap is not None):
                if method == "GET":  # and HEAD
                    app.router.add_get(prefix + one, handler, expect_handler=expect)
                else:
                    app.router.add_route(method, prefix + one, handler, expect_handler=expect)
    return app


# The handlers that call protocol.begin themselves, first thing, instead of
# being wrapped by protocol.tracked: a request held in a delay keeps one
# coroutine frame less (tests/test_layout.py checks that they do).
BEGIN_THEMSELVES = frozenset({handlers.status_handler, handlers.sequence_handler})


def _paths(path: str, state: ServerState, *, prefixed: bool) -> list[str]:
    if path != EACH_CATALOG_CODE:
        return [path]
    if prefixed:
        return []  # /ns/{namespace}/status/NNN is a pattern anyway: the pattern route serves it
    return list(state.plain_codes)  # the paths status_handler looks its code up by


async def _start_store(app: web.Application) -> None:
    await app[STATE].store.start()


async def _close_store(app: web.Application) -> None:
    await app[STATE].store.close()


def make_expect_handler(state: ServerState):
    def refuse(request: web.BaseRequest, status: int, message: str) -> web.Response:
        state.journal.record(request, status)
        return error_for(request, state.catalog, status, message)

    async def expect_handler(request: web.Request) -> web.StreamResponse | None:
        """``Expect: 100-continue`` (RFC 9110 §10.1.1): refuse an oversized body before it is sent."""
        protocol.begin(request)  # runs before the route's handler
        expect = request.headers.get("Expect", "")
        if expect.lower() != "100-continue":
            return refuse(request, 417, f"unsupported Expect {expect!r}: only 100-continue is understood")
        declared = request.content_length
        limit = state.settings.max_body_size
        if declared is not None and declared > limit:
            return refuse(request, 413, f"request body of {declared} bytes is above the max body size of {limit} bytes")
        if request.version >= (1, 1) and request.transport is not None:
            request.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return None

    return expect_handler
