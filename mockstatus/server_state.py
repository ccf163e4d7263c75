"""What one running server holds: settings, the catalog and its precomputed
replies, sequences and the journal; plus the small responses every handler
shares (errors, CORS)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from multidict import CIMultiDict

from .catalog import Catalog, StatusInfo
from .render import error_body, negotiate_format
from .replies import BASE_HEADERS, EXPOSED, Replies
from .settings import Settings
from .state import JOURNAL_BODY_PREVIEW, Journal, Sequences

log = logging.getLogger("mockstatus.access")

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    417: "Expectation Failed",
    426: "Upgrade Required",
}
PREFLIGHT_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE, PROPFIND, LOCK, UNLOCK, MKCOL, COPY, MOVE"


class ServerState:
    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self.replies = Replies(catalog)
        self.sequences = Sequences(settings.max_sequences)
        self.journal = Journal(settings.journal_size)
        self.preview_size = JOURNAL_BODY_PREVIEW
        # Replies still being delivered; a shutdown cancels them when the grace is over (issue #4).
        self.in_flight: set[asyncio.Task] = set()
        # Codes whose plain request needs nothing but the precomputed reply: an
        # ordinary kind and no delay from the catalog or --default-delay (issue #8).
        self.immediate: dict[str, StatusInfo] = {
            str(info.code): info
            for info in catalog
            if info.kind == "normal" and not (info.delay if info.delay is not None else settings.default_delay)
        }
        self.closing = False

    def reset(self) -> None:
        """Forget per-test state: the journal and every sequence."""
        self.journal.clear()
        self.sequences.reset()

    def error(self, request: web.BaseRequest, status: int, message: str, *, record: bool = True) -> web.Response:
        """A 4xx that names the bad value and what is allowed, in the client's format."""
        fmt = negotiate_format(request.headers.get("Accept"))
        reason = REASONS.get(status, "Error")
        headers = CIMultiDict(BASE_HEADERS)
        headers["Content-Type"] = {"json": "application/json", "html": "text/html; charset=utf-8"}.get(
            fmt, "text/plain; charset=utf-8"
        )
        if "Origin" in request.headers:
            self.cors(request, headers)
        response = web.Response(
            status=status, reason=reason, body=error_body(status, reason, message, fmt), headers=headers
        )
        if status == 413:
            # The rest of an oversized body is never read: close instead of draining it.
            response.force_close()
        if record:
            self.journal.record(request, status)
        return response

    def cors(self, request: web.BaseRequest, headers: CIMultiDict) -> None:
        """Echo the caller's Origin so credentialed fetch() works too."""
        headers["Access-Control-Allow-Origin"] = request.headers["Origin"]
        headers["Access-Control-Allow-Credentials"] = "true"
        headers["Access-Control-Expose-Headers"] = EXPOSED
        headers["Vary"] = headers.get("Vary", "") + (", Origin" if "Vary" in headers else "Origin")

    def preflight(self, request: web.BaseRequest) -> web.Response:
        """A real CORS preflight (OPTIONS + Access-Control-Request-Method): 204 with the allow headers."""
        headers = CIMultiDict(BASE_HEADERS)
        headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
        headers["Access-Control-Allow-Methods"] = PREFLIGHT_METHODS
        requested = request.headers.get("Access-Control-Request-Headers")
        if requested:
            headers["Access-Control-Allow-Headers"] = requested
        headers["Access-Control-Max-Age"] = "600"
        headers["Vary"] = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        if "Origin" in request.headers:
            headers["Access-Control-Allow-Credentials"] = "true"
        self.journal.record(request, 204)
        return web.Response(status=204, headers=headers)

    def cancel_in_flight(self) -> int:
        """The shutdown grace is over: cancel every reply still running; return how many."""
        running = [task for task in self.in_flight if not task.done()]
        for task in running:
            task.cancel()
        return len(running)

    def log_gone(self, request: web.BaseRequest, delay: float) -> None:
        if self.settings.access_log:
            log.info(
                '%s "%s %s HTTP/%d.%d" 499 - client closed the connection during a %.3fs delay',
                request.remote, request.method, request.path_qs, request.version.major, request.version.minor, delay,
            )  # fmt: skip


STATE = web.AppKey("mockstatus", ServerState)
