"""The app factory and the route table (which reads as the table of contents)."""

from __future__ import annotations

from aiohttp import web

from . import admin, handlers, page, protocol, tls, transcript
from .catalog import Catalog, load_catalog
from .errors import error_for
from .server import STATE, ServerState
from .settings import Settings

ANY = "*"  # every method, the WebDAV ones included (423 Locked comes from WebDAV)


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
    app = web.Application(
        client_max_size=settings.max_body_size, handler_args=limits, middlewares=[protocol.bookkeeping]
    )
    state = ServerState(settings, catalog)
    app[STATE] = state
    app[page.PAGES] = page.Pages(catalog)  # the browser page, rendered once per app
    app[tls.SERVING] = tls.Serving()  # filled in when HTTPS starts, maybe after the app
    app[transcript.OWN] = transcript.Own()  # the listening sockets, filled in at start
    expect = make_expect_handler(state)

    # Every route checks Expect (RFC 9110 §10.1.1): a body above --max-body-size
    # is refused before the client sends it, whatever the path.
    app.router.add_route(ANY, "/", page.index, expect_handler=expect)  # 405 for anything but GET/HEAD
    app.router.add_get("/__mockstatus/health", admin.health, expect_handler=expect)
    app.router.add_get("/__mockstatus/codes", admin.codes, expect_handler=expect)
    app.router.add_get("/__mockstatus/ca.pem", admin.ca_pem, expect_handler=expect)
    app.router.add_get("/__mockstatus/tls", admin.tls_scenarios, expect_handler=expect)
    app.router.add_get("/__mockstatus/requests", admin.requests_list, expect_handler=expect)
    app.router.add_delete("/__mockstatus/requests", admin.requests_clear, expect_handler=expect)
    app.router.add_get("/__mockstatus/sequences", admin.sequences_list, expect_handler=expect)
    app.router.add_delete("/__mockstatus/sequences", admin.sequences_reset, expect_handler=expect)
    app.router.add_delete("/__mockstatus/sequences/{name}", admin.sequences_reset, expect_handler=expect)
    app.router.add_get("/__mockstatus/buckets", admin.buckets_list, expect_handler=expect)
    app.router.add_delete("/__mockstatus/buckets", admin.buckets_reset, expect_handler=expect)
    app.router.add_get("/__mockstatus/clock", admin.clock_show, expect_handler=expect)
    app.router.add_post("/__mockstatus/clock", admin.clock_advance, expect_handler=expect)
    app.router.add_delete("/__mockstatus/clock", admin.clock_reset, expect_handler=expect)
    app.router.add_get("/__mockstatus/transcript", admin.transcript_show, expect_handler=expect)
    app.router.add_route(ANY, "/__mockstatus/static/{name}", page.static, expect_handler=expect)
    app.router.add_route(ANY, "/status", handlers.status_missing, expect_handler=expect)
    # [\s\S]*, not .*: a decoded %0A in the path must reach the handler (a 400 naming
    # it), not fall through every route to aiohttp's bare "404: Not Found".
    # The fast path is here too: status_handler answers a plain /status/NNN first thing.
    app.router.add_route(ANY, r"/status/{codes:[\s\S]*}", handlers.status_handler, expect_handler=expect)
    app.router.add_route(
        ANY, r"/sequence/{name:[^/]+}/{codes:[\s\S]*}", handlers.sequence_handler, expect_handler=expect
    )
    app.router.add_route(ANY, "/sequence", handlers.sequence_missing, expect_handler=expect)
    app.router.add_route(ANY, "/sequence/{name:[^/]+}", handlers.sequence_missing, expect_handler=expect)
    # Everything else: 405 with Allow where the path exists for other methods, else 404.
    app.router.add_route(ANY, r"/{tail:[\s\S]*}", handlers.not_found, expect_handler=expect)
    return app


def make_expect_handler(state: ServerState):
    def refuse(request: web.BaseRequest, status: int, message: str) -> web.Response:
        state.journal.record(request, status)
        return error_for(request, state.catalog, status, message)

    async def expect_handler(request: web.Request) -> web.StreamResponse | None:
        """``Expect: 100-continue`` (RFC 9110 §10.1.1): refuse an oversized body before it is sent."""
        protocol.begin(request)  # runs before the middlewares
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
