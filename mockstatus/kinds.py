"""Reply kinds: one table of what each catalog ``kind:`` (or ``?fault=``) does.

For every kind, ``KINDS`` says which writer puts it on the wire, whether the
connection ends with it, the badge and the browser view the page at ``/``
shows for it, and whether a plain request for it may take the fast path.
``delivery.deliver`` calls the writers, ``page.py`` reads the badges and
views, ``server.ServerState`` the fast-path column.  The names a catalog may
use are ``catalog.KIND_NAMES``; this table covers exactly those.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NamedTuple

from aiohttp import web

from .bodies import Prepared, response_body, response_headers
from .catalog import FAULTS, KIND_NAMES, TOKEN, Fault, StatusInfo, parse_fault
from .cors import cors
from .durations import sleep_at_least
from .errors import error
from .heads import http_date, raw_head
from .options import Asked, Options
from .protocol import bytes_sent, connection_of
from .wire import (
    WEBSOCKET_VERSION,
    AlreadySent,
    cut_upload,
    send_and_stall,
    send_early,
    send_fault,
    send_headerless,
    send_raw_upgrade,
    send_then_cut,
    send_then_go_stale,
    send_unasked_upgrade,
    send_websocket_echo,
    websocket_problem,
    write_interim,
)

if TYPE_CHECKING:
    from .server import ServerState

DEFAULT_DRIP_CHUNKS = 10
# RFC 9110 §7.8: protocol = protocol-name ["/" protocol-version], both tokens.
_PROTOCOL = re.compile(rf"{TOKEN.pattern}(?:/{TOKEN.pattern})?", re.ASCII)


class Reply(NamedTuple):
    """One reply being written: what a kind's writer gets."""

    request: web.Request  # for its connection: where raw bytes go, what a streamed reply is prepared on
    state: ServerState
    asked: Asked
    info: StatusInfo  # the code answered (after an interim 1xx: its ``then`` code)
    kind: Kind
    extra: list[tuple[str, str]] | None = None  # headers the handler and the delay add
    fault: Fault | None = None  # the fault's argument (reset-after:N, stale-keepalive:T, ...)

    def prepared(self) -> Prepared:
        return self.state.replies.prepared(self.info.code, self.asked.fmt, self.asked.lang)


Writer = Callable[[Reply], Awaitable[web.StreamResponse | None]]


@dataclasses.dataclass(frozen=True, slots=True)
class Kind:
    name: str
    # Puts the kind on the wire.  A final kind returns the response aiohttp
    # finishes (``AlreadySent`` when the writer wrote the bytes itself); an
    # interim kind writes its 1xx head and returns None: a final reply follows.
    write: Writer
    final: bool = True
    closes: bool = False  # the connection ends with this reply
    badge: str | None = None  # page.BADGES key shown next to the code on the page
    browser: str = "ok"  # what fetch() in a browser can show (page.browser_view)
    fast: bool = False  # a plain request may get the precomputed reply (handlers' fast path)


# --- the writers --------------------------------------------------------------------


async def _respond(reply: Reply, closes: bool | None = None) -> web.StreamResponse:
    """An ordinary reply: the precomputed one with this request's overrides."""
    request, asked, info, extra = reply.request, reply.asked, reply.info, reply.extra
    if closes is None:
        closes = reply.kind.closes
    options = asked.options
    prepared = reply.prepared()
    headers = response_headers(prepared, options, extra)
    if asked.origin is not None:
        cors(headers, asked.origin)
    body = response_body(prepared, options)
    if closes:
        # RFC 9112 §9.6: say so, to HTTP/1.0 clients too (aiohttp only adds it for 1.1).
        headers["Connection"] = "close"
    if options.body_delay is None and options.drip is None:
        response = web.Response(status=info.code, reason=info.reason, body=body, headers=headers)
    else:
        response = await _send_slowly(request, info, headers, body or b"", options)
    if closes:
        response.force_close()
    return response


async def _send_slowly(
    request: web.Request, info: StatusInfo, headers, body: bytes, options: Options
) -> web.StreamResponse:
    """Headers at once, the body later (body_delay) or in timed pieces (drip).

    Content-Length is set, so the client's *read* timeout is what trips.
    """
    response = web.StreamResponse(status=info.code, reason=info.reason, headers=headers)
    if info.code not in (204, 304) and info.code >= 200:
        response.content_length = len(body)
    timing = []
    if options.body_delay:
        timing.append(f"body-delay;dur={options.body_delay * 1000:.0f}")
    if options.drip:
        timing.append(f"drip;dur={options.drip * 1000:.0f}")
    if timing:
        response.headers.add("Server-Timing", ", ".join(timing))
    await response.prepare(request)
    if request.method == "HEAD" or not body:
        # No body to hold back (HEAD, 204, 304): the reply is complete now, and
        # sleeping anyway would only hold up the next request on this connection.
        await response.write_eof()
        return response
    if options.body_delay:
        await sleep_at_least(options.body_delay)
    if options.drip:
        pieces = max(1, min(options.chunks or DEFAULT_DRIP_CHUNKS, len(body)))
        step, extra_bytes = divmod(len(body), pieces)
        gap = options.drip / pieces
        start = 0
        began = time.monotonic()
        for index in range(pieces):
            size = step + (1 if index < extra_bytes else 0)
            # Sleep to an absolute schedule so timer lateness does not add up.
            await sleep_at_least(began + gap * (index + 1) - time.monotonic())
            await response.write(body[start : start + size])
            start += size
    else:
        await response.write(body)
    await response.write_eof()
    return response


async def _interim(reply: Reply) -> None:
    """One interim 1xx head with the catalog's headers (RFC 9110 §15.2)."""
    info = reply.info
    write_interim(reply.request, info.code, info.reason, info.headers)


async def _upgrade(reply: Reply) -> web.StreamResponse:
    """101 Switching Protocols, after checking what the client asked to switch to."""
    request, state, asked, info = reply.request, reply.state, reply.asked, reply.info

    def refuse(status: int, message: str) -> web.Response:
        return error(state.catalog, status, message, asked.fmt, asked.origin)

    if asked.version < (1, 1):
        # RFC 9110 §7.8: a server must ignore Upgrade on HTTP/1.0; 101 cannot happen.
        return refuse(400, "101 Switching Protocols needs an HTTP/1.1 request")
    # RFC 9110 §7.8: Upgrade lists protocols in the client's order of preference; take the first.
    requested = request.headers.get("Upgrade", "").split(",")[0].strip()
    if requested.lower() == "websocket":
        problem = websocket_problem(request)
        if problem is not None:
            response = refuse(*problem)
            if problem[0] == 426:
                response.headers["Sec-WebSocket-Version"] = WEBSOCKET_VERSION
            return response
        return await send_websocket_echo(request, state.settings.upgrade_idle_timeout)
    if requested and not _PROTOCOL.fullmatch(requested):
        return refuse(400, f"bad Upgrade {requested!r}: expected a protocol name[/version] such as websocket or h2c")
    if not requested:
        # Nobody asked to switch, so no protocol was agreed: a client reading the
        # next reply on this connection would take its own echoed request for it
        # (a requests.Session does). Send the 101 the catalog describes, then close.
        send_unasked_upgrade(request, info.header("Upgrade") or "mockstatus-echo")
        return AlreadySent(101, info.reason)
    await send_raw_upgrade(request, requested, state.settings.upgrade_idle_timeout)
    return AlreadySent(101, info.reason)


async def _headerless(reply: Reply) -> web.StreamResponse:
    """Body bytes with no status line and no headers, then close (what curl calls HTTP/0.9)."""
    info, options = reply.info, reply.asked.options
    body = options.body if options.body is not None else (info.body if info.body is not None else reply.prepared().body)
    send_headerless(reply.request, body.encode("utf-8", "surrogateescape") if isinstance(body, str) else (body or b""))
    return AlreadySent(info.code, info.reason)


async def _fault(reply: Reply) -> web.StreamResponse:
    """A broken exchange on purpose; ``wire.send_fault`` says how each one breaks."""
    # The fault breaks the reply that was asked for: its body (body=, a header's,
    # the catalog's) and its headers (location=, header=, ...), not the default one.
    options, prepared = reply.asked.options, reply.prepared()
    headers = response_headers(prepared, options, reply.extra)
    body = response_body(prepared, options)
    send_fault(reply.request, reply.kind.name, reply.info, headers, body, options.random())
    return AlreadySent(reply.info.code, reply.info.reason, sent=bytes_sent(reply.request))


def _raw_reply(reply: Reply, connection: str | None = None) -> tuple[bytes, bytes]:
    """The head and body ``_respond`` would send, as bytes, for the faults that cut them."""
    asked, info = reply.asked, reply.info
    prepared = reply.prepared()
    headers = response_headers(prepared, asked.options, reply.extra)
    if asked.origin is not None:
        cors(headers, asked.origin)
    body = response_body(prepared, asked.options) or b""
    headers.popall("Content-Length", None)
    if info.code not in (204, 304):
        headers["Content-Length"] = str(len(body))
    headers["Date"] = http_date()
    if connection is not None:
        headers["Connection"] = connection
    # RFC 9110 §9.3.2, §15.3.5, §15.4.5: HEAD, 204 and 304 carry no body.
    if asked.method == "HEAD" or info.code in (204, 304):
        body = b""
    return raw_head(info.code, info.reason, headers.items()), body


async def _stall(reply: Reply) -> web.StreamResponse:
    """Nothing (stall) or the head and half the body (stall-body), then silence
    until --max-delay is over (then FIN) or the client leaves."""
    data = b""
    if reply.kind.name == "stall-body":
        head, body = _raw_reply(reply)
        data = head + body[: len(body) // 2]
    sent = await send_and_stall(reply.request, data, reply.state.settings.max_delay)
    return AlreadySent(reply.info.code, reply.info.reason, sent=sent)


async def _cut_after(reply: Reply) -> web.StreamResponse:
    """The first N bytes of the reply, then RST (reset-after) or FIN (close-after)."""
    assert reply.fault is not None and reply.fault.count is not None
    head, body = _raw_reply(reply)
    data = (head + body)[: reply.fault.count]
    sent = await send_then_cut(reply.request, data, reset=reply.kind.name == "reset-after")
    return AlreadySent(reply.info.code, reply.info.reason, sent=sent)


async def _cut_upload(reply: Reply) -> web.StreamResponse:
    """Half the request body read (the handler left it unread), then FIN or RST."""
    received = await cut_upload(reply.request, reset=reply.kind.name == "reset-during-upload")
    response = AlreadySent(reply.info.code, reply.info.reason, sent=0)
    response.received = received
    return response


async def _early(reply: Reply) -> web.StreamResponse:
    """The whole reply with the request body still unread (the handler left it), then FIN."""
    head, body = _raw_reply(reply, "close")
    sent = send_early(reply.request, head + body)
    return AlreadySent(reply.info.code, reply.info.reason, sent=sent)


async def _stale(reply: Reply) -> web.StreamResponse:
    """A reply that keeps the connection (RFC 9112 §9.3), then a silent close after T."""
    assert reply.fault is not None and reply.fault.seconds is not None
    # HTTP/1.0 closes after each reply unless told otherwise (RFC 9112 §9.3).
    head, body = _raw_reply(reply, "keep-alive" if reply.asked.version < (1, 1) else None)
    sent = send_then_go_stale(reply.request, head + body, reply.fault.seconds)
    return AlreadySent(reply.info.code, reply.info.reason, sent=sent)


async def _close_after_requests(reply: Reply) -> web.StreamResponse:
    """Requests before the Nth on a connection are answered as usual; the Nth
    with Connection: close, or (N!) as usual and then the connection closes."""
    assert reply.fault is not None and reply.fault.count is not None
    connection = connection_of(reply.request)
    if connection.requests_begun < reply.fault.count:
        return await _respond(reply, closes=False)
    if not reply.fault.silent:
        return await _respond(reply, closes=True)
    response = await _respond(reply, closes=False)
    connection.close_after_this()
    return response


# --- the table ----------------------------------------------------------------------

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("normal", _respond, fast=True),
        Kind("interim", _interim, final=False, badge="interim", browser="interim"),
        # The connection carries another protocol until the client ends it (or
        # stays HTTP when the upgrade is refused).
        Kind("upgrade", _upgrade, badge="upgrade", browser="upgrade"),
        Kind("headerless", _headerless, closes=True, badge="headerless", browser="headerless"),
        Kind("close", _respond, closes=True, badge="closes"),
        Kind("reset", _fault, closes=True, badge="closes", browser="fault"),
        Kind("empty", _fault, closes=True, badge="closes", browser="fault"),
        Kind("garbage", _fault, closes=True, badge="closes", browser="fault"),
        Kind("malformed", _fault, closes=True, badge="closes", browser="fault"),
        Kind("truncate", _fault, closes=True, badge="closes", browser="fault"),
        # Read until the close: fetch() shows the body like any other.
        Kind("no-length", _fault, closes=True, badge="closes"),
        Kind("stall", _stall, closes=True, badge="closes", browser="fault"),
        Kind("stall-body", _stall, closes=True, badge="closes", browser="fault"),
        Kind("reset-after", _cut_after, closes=True, badge="closes", browser="fault"),
        Kind("close-after", _cut_after, closes=True, badge="closes", browser="fault"),
        Kind("close-during-upload", _cut_upload, closes=True, badge="closes", browser="fault"),
        Kind("reset-during-upload", _cut_upload, closes=True, badge="closes", browser="fault"),
        # The reply arrives whole: fetch() shows it.
        Kind("early-response", _early, closes=True, badge="closes"),
        Kind("stale-keepalive", _stale, closes=True, badge="closes"),
        Kind("close-after-requests", _close_after_requests, closes=True, badge="closes"),
    )
}
assert tuple(KINDS) == KIND_NAMES, "kinds.KINDS must cover exactly catalog.KIND_NAMES, in order"


@functools.lru_cache(maxsize=256)
def kind_of(text: str) -> tuple[Kind, Fault | None]:
    """A catalog ``kind:`` or ``?fault=`` (``reset-after:64``): its kind and argument."""
    name = text.partition(":")[0]
    return KINDS[name], (parse_fault(text) if name in FAULTS else None)
