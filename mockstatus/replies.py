"""How a reply goes on the wire: normal, interim 1xx, upgrade, header-less, close, faults.

``Replies`` holds everything that depends only on (code, format, language),
computed once when the catalog loads, so the hot path is a dict lookup and a
``web.Response``.  The wire-level kinds bypass ``web.Response`` and write to
the transport themselves, because aiohttp would send a 1xx as a *final*
response and always adds a status line (see docs/notes in README).
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import logging
import random
import re
import socket
import struct
import time

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.http_parser import HttpVersion, HttpVersion11
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import RequestHandler, _ErrInfo
from multidict import CIMultiDict, CIMultiDictProxy

from . import __version__
from .catalog import Catalog, StatusInfo
from .durations import format_seconds
from .options import NO_OPTIONS, Options
from .render import CONTENT_TYPES, FORMATS, LANGS, render

SERVER = f"mockstatus/{__version__}"

# Headers a cross-origin fetch() may read (CORS, issue #2): the ones our codes
# set.  Sent only to requests that carry an Origin (every cross-origin browser
# request does, RFC 6454 §7): 250 bytes less on every other reply (issue #8).
EXPOSED = (
    "Location, Retry-After, WWW-Authenticate, Proxy-Authenticate, Allow, Content-Range, "
    "ETag, Link, Upgrade, Server-Timing, X-Mockstatus-Choice, X-Mockstatus-Sequence, "
    "X-Mockstatus-Step, X-More-Info"
)
BASE_HEADERS = (
    ("Server", SERVER),
    ("Vary", "Accept, Accept-Language"),
    ("Access-Control-Allow-Origin", "*"),
)

# RFC 9110 §15.3.5 / §15.4.5: 204 and 304 carry no content and aiohttp drops
# Content-Length/Content-Type for them itself; 205 (§15.3.6) must have none
# either, which we make explicit with "Content-Length: 0".
NO_BODY = frozenset({204, 304})
EMPTY_BODY = frozenset({205})


class Prepared:
    """The precomputed pieces of one final reply."""

    __slots__ = ("info", "headers", "body", "content_type")

    def __init__(self, info: StatusInfo, fmt: str, lang: str) -> None:
        self.info = info
        headers = CIMultiDict(BASE_HEADERS)
        for name, value in info.headers:
            headers.add(name, value)
        if info.code in NO_BODY or info.code < 200:
            self.body = None
            self.content_type = None
        elif info.code in EMPTY_BODY:
            self.body = b""
            self.content_type = None
        else:
            self.body = render(info, fmt, lang)
            self.content_type = CONTENT_TYPES[fmt]
            headers["Content-Type"] = self.content_type
        if self.body == b"":
            # aiohttp leaves "Content-Length: 0" out of a HEAD reply; HEAD must get
            # the same headers as GET (RFC 9110 §9.3.2), so it is set here.
            headers["Content-Length"] = "0"
        self.headers = CIMultiDictProxy(headers)


def raw_head(status: int, reason: str, headers) -> bytes:
    """A status line and header block, for replies written straight to the socket."""
    lines = [f"HTTP/1.1 {status} {reason}\r\n"]
    lines.extend(f"{name}: {value}\r\n" for name, value in headers)
    lines.append("\r\n")
    return "".join(lines).encode("latin-1", "replace")


def http_date() -> str:
    return email.utils.formatdate(usegmt=True)


class Replies:
    """Precomputed replies for one catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._table: dict[tuple[int, str, str], Prepared] = {}
        for info in catalog:
            for fmt in FORMATS:
                for lang in LANGS:
                    self._table[info.code, fmt, lang] = Prepared(info, fmt, lang)

    def prepared(self, code: int, fmt: str, lang: str) -> Prepared:
        found = self._table.get((code, fmt, lang))
        if found is None:
            # Unlisted codes (at most 900 x 6 entries) are cached on first use.
            found = self._table[code, fmt, lang] = Prepared(self.catalog.get(code), fmt, lang)
        return found


def response_headers(prepared: Prepared, options: Options, extra: list[tuple[str, str]] | None) -> CIMultiDict:
    """Prepared headers plus this request's overrides (same name replaces)."""
    headers = CIMultiDict(prepared.headers)
    if options is not NO_OPTIONS:
        if options.location is not None:
            headers["Location"] = options.location
        if options.retry_after is not None:
            headers["Retry-After"] = options.retry_after
        replaced: set[str] = set()
        for name, value in options.headers:
            key = name.lower()
            if key not in replaced:
                headers.popall(name, None)
                replaced.add(key)
            headers.add(name, value)
        if options.body is not None and prepared.body is not None and prepared.body != b"":
            headers["Content-Type"] = CONTENT_TYPES["text"]
            if not options.body:
                headers["Content-Length"] = "0"  # as above: HEAD keeps it too
    if extra:
        for name, value in extra:
            headers[name] = value
    return headers


def response_body(prepared: Prepared, options: Options) -> bytes | None:
    if options.body is not None and prepared.body is not None and prepared.body != b"":
        # surrogateescape: a body given in a header as bytes that are not UTF-8
        # (aiohttp decodes those to surrogates) goes out as those same bytes.
        return options.body.encode("utf-8", "surrogateescape")
    return prepared.body


# --- writing to the socket directly ------------------------------------------------


class RawReply(web.StreamResponse):
    """What a handler returns after writing (or refusing) the reply itself.

    aiohttp calls ``prepare()`` and ``write_eof()`` on whatever a handler
    returns.  A real ``web.Response`` would then try to write a second reply
    to a transport we already closed; this one writes nothing, keeps the
    status for the access log, and tells aiohttp not to keep the connection.
    """

    def __init__(self, status: int, reason: str | None = None) -> None:
        super().__init__(status=status, reason=reason)
        self.force_close()

    async def prepare(self, request: web.BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def _transport(request: web.BaseRequest) -> asyncio.Transport:
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("client went away")
    return transport


def write_interim(request: web.BaseRequest, status: int, reason: str, headers=()) -> bool:
    """Send one interim 1xx response (RFC 9110 §15.2); never to an HTTP/1.0 client."""
    if request.version < (1, 1):
        return False
    _transport(request).write(raw_head(status, reason, headers))
    return True


def send_headerless(request: web.BaseRequest, body: bytes) -> None:
    """The '600' reply: body bytes with no status line or headers, then close."""
    transport = _transport(request)
    transport.write(body)
    transport.close()


def send_fault(request: web.BaseRequest, fault: str, prepared: Prepared, rng: random.Random) -> None:
    """Break the exchange on purpose (issue #3): each fault is a different client error."""
    transport = _transport(request)
    info = prepared.info
    if fault == "reset":
        # SO_LINGER with a zero timeout turns close() into an RST (WireMock's
        # CONNECTION_RESET_BY_PEER does the same).
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        return
    if fault == "empty":
        transport.close()
        return
    if fault == "garbage":
        # Bytes 0x80-0xff never start "HTTP/", so no client mistakes them for a reply.
        transport.write(bytes(rng.randrange(0x80, 0x100) for _ in range(64)))
        transport.close()
        return
    body = prepared.body or b""
    if fault == "malformed":
        transport.write(
            f"HTTP/1.1 {info.code} {info.reason}\r\n".encode("latin-1", "replace")
            + b"this line is not a header\r\n\x00\x01\x02 neither is this\r\n\r\n"
        )
        transport.close()
        return
    headers = [(k, v) for k, v in prepared.headers.items() if k.lower() != "content-length"]
    headers.append(("Date", http_date()))
    # A reply to HEAD has no body (RFC 9110 §9.3.2): body bytes after its head would
    # be read as the next response, a failure nobody asked for. HEAD gets the head.
    sent = b"" if request.method == "HEAD" else body
    if fault == "truncate":
        headers.append(("Content-Length", str(len(body))))
        transport.write(raw_head(info.code, info.reason, headers) + sent[: len(sent) // 2])
    elif fault == "no-length":
        # RFC 9112 §6.3 rule 8: no length and no chunking means "read until close".
        headers.append(("Connection", "close"))
        transport.write(raw_head(info.code, info.reason, headers) + sent)
    else:  # pragma: no cover - options/catalog validation keeps this unreachable
        raise ValueError(fault)
    transport.close()


# A client that sends to the echo without reading: stop reading from it above
# the high-water mark and go on below the low one, so memory stays bounded.
ECHO_HIGH_WATER = 1 << 20
ECHO_LOW_WATER = 1 << 18


class _Echo:
    """After a raw 101 switch the connection carries bytes: echo them back.

    Installed with aiohttp's own ``set_parser`` hook (the one WebSocket uses),
    so aiohttp hands us every byte that arrives after the request.
    """

    def __init__(self, transport: asyncio.Transport, idle: float) -> None:
        self.transport = transport
        self.idle = idle
        self.loop = asyncio.get_running_loop()
        self.done = self.loop.create_future()
        self.timer = self.loop.call_later(idle, self._timeout)
        self.paused = False
        self.queued = 0

    def _timeout(self) -> None:
        self.transport.close()
        self._finish()

    def _finish(self) -> None:
        self.timer.cancel()
        if not self.done.done():
            self.done.set_result(None)

    def _active(self) -> None:
        self.timer.cancel()
        self.timer = self.loop.call_later(self.idle, self._timeout)

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self._active()
        if not self.transport.is_closing():
            self.transport.write(data)
            if not self.paused and self.transport.get_write_buffer_size() > ECHO_HIGH_WATER:
                self.paused = True
                self.queued = self.transport.get_write_buffer_size()
                self.transport.pause_reading()
                self.loop.call_later(0.01, self._resume_when_drained)
        return False, b""

    def _resume_when_drained(self) -> None:
        if self.done.done() or self.transport.is_closing():
            return
        queued = self.transport.get_write_buffer_size()
        if queued < self.queued:
            self._active()  # the client is reading: not idle
        self.queued = queued
        if queued > ECHO_LOW_WATER:
            self.loop.call_later(0.01, self._resume_when_drained)
            return
        self.paused = False
        self.transport.resume_reading()

    def feed_eof(self) -> None:
        self._finish()

    def set_exception(self, exc: BaseException, exc_cause: BaseException | None = None) -> None:
        self._finish()


async def send_raw_upgrade(request: web.BaseRequest, token: str, idle: float) -> None:
    """101 with Connection/Upgrade (RFC 9110 §7.8), then a raw byte echo."""
    transport = _transport(request)
    transport.write(
        raw_head(101, "Switching Protocols", (("Connection", "Upgrade"), ("Upgrade", token), ("Server", SERVER)))
    )
    echo = _Echo(transport, idle)
    request.protocol.set_parser(echo)  # type: ignore[union-attr]
    try:
        await echo.done
    except asyncio.CancelledError:
        if not _ended_by_client(transport):
            raise
    finally:
        echo._finish()
        transport.close()


WEBSOCKET_VERSION = "13"
WEBSOCKET_FORM = (
    "a WebSocket handshake (RFC 6455 §4.1) is a GET with Connection: Upgrade, Upgrade: websocket, "
    f"Sec-WebSocket-Version: {WEBSOCKET_VERSION} and a Sec-WebSocket-Key of 16 base64-encoded bytes"
)


def websocket_problem(request: web.BaseRequest) -> tuple[int, str] | None:
    """What is wrong with a WebSocket handshake, as (status, message), or None.

    Checked here rather than left to aiohttp, whose errors ("Handshake error:
    'x'") do not say what was expected, and which also accepts a POST.
    """
    headers = request.headers
    if request.method != "GET":
        return 400, f"bad WebSocket handshake: method {request.method}; {WEBSOCKET_FORM}"
    tokens = {token.strip().lower() for token in headers.get("Connection", "").split(",")}
    if "upgrade" not in tokens:
        return 400, f"bad WebSocket handshake: Connection {headers.get('Connection', '')!r} lacks upgrade; {WEBSOCKET_FORM}"
    version = headers.get("Sec-WebSocket-Version", "")
    if version.strip() != WEBSOCKET_VERSION:
        # RFC 6455 §4.4: 426 plus the version the server speaks.
        return 426, f"bad WebSocket handshake: Sec-WebSocket-Version {version!r}; {WEBSOCKET_FORM}"
    key = headers.get("Sec-WebSocket-Key", "")
    try:
        raw_key = base64.b64decode(key, validate=True)
    except ValueError:
        raw_key = b""
    if len(raw_key) != 16:
        return 400, f"bad WebSocket handshake: Sec-WebSocket-Key {key!r}; {WEBSOCKET_FORM}"
    return None


def _ended_by_client(transport: asyncio.Transport | None) -> bool:
    """After an upgrade the client closing the connection is the normal end.

    aiohttp (handler_cancellation) cancels the handler when the connection
    drops; for an upgraded session that is the end of it, not a client that
    went away mid-reply (499).  Swallow that one cancellation only.
    """
    if transport is not None and not transport.is_closing():
        return False
    task = asyncio.current_task()
    return task is not None and task.uncancel() == 0


async def send_websocket_echo(request: web.Request) -> web.StreamResponse:
    """A real WebSocket session (RFC 6455) that echoes text and binary messages."""
    transport = request.transport
    ws = web.WebSocketResponse(heartbeat=None)
    await ws.prepare(request)
    try:
        async for message in ws:
            if message.type == web.WSMsgType.TEXT:
                await ws.send_str(message.data)
            elif message.type == web.WSMsgType.BINARY:
                await ws.send_bytes(message.data)
    except asyncio.CancelledError:
        if not _ended_by_client(transport):
            raise
        return RawReply(101)
    return ws


# --- the connection protocol: keep the bytes behind a raw ``Upgrade`` -------------------


_HTTP09 = HttpVersion(0, 9)
_HTTP10 = HttpVersion(1, 0)
_HTTP11 = HttpVersion(1, 1)


def _has_body(message) -> bool:
    if getattr(message, "chunked", False):
        return True
    length = message.headers.get("Content-Length")
    return length is not None and length.strip() != "0"


def _after_heads(data: bytes, count: int) -> bytes | None:
    """The bytes after the ``count``-th end of a header block, or None if not found."""
    end = 0
    for _ in range(count):
        found = data.find(b"\r\n\r\n", end)
        if found < 0:
            return None
        end = found + 4
    return data[end:]


# aiohttp quotes the request line it could not parse: b'FOO /status/200 HTTP/1.1'
_QUOTED_LINE = re.compile(r"b'([^']*)'")
# An HTTP/0.9 request (RFC 1945 §4.1, "Simple-Request"): a method and a target, no version.
_HTTP09_LINE = re.compile(rb"[A-Za-z]+ [^ \r\n]+\r?\n")


def plain_reply(status: int, reason: str, text: str, extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A whole closing reply with a text body, for the protocol level (no request object)."""
    body = f"{status} {reason}: {text}\n".encode("utf-8", "backslashreplace")
    headers = [
        ("Server", SERVER),
        ("Date", http_date()),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
        *extra,
        ("Connection", "close"),
    ]
    return raw_head(status, reason, headers) + body


def _http09_error(line: bytes) -> tuple[_ErrInfo, object]:
    text = (
        f"505 HTTP Version Not Supported: an HTTP/0.9 request ({line!r}); "
        "mockstatus speaks HTTP/1.1 and HTTP/1.0\n"
    )
    return _ErrInfo(status=505, exc=HttpProcessingError(code=505, message=text), message=text), EMPTY_PAYLOAD


class _MessageQueue(list):
    """What aiohttp's RequestHandler uses of its ``_messages`` deque, on a list."""

    __slots__ = ()

    def popleft(self):
        return self.pop(0)

    def appendleft(self, item) -> None:
        self.insert(0, item)


class WireRequestHandler(RequestHandler):
    """aiohttp's HTTP/1.1 connection protocol, keeping the bytes behind a raw upgrade.

    aiohttp's parser switches protocols only for ``Upgrade: websocket``.  For
    any other token (``Upgrade: foo``, ``h2c``) llhttp stops at the end of the
    request and aiohttp drops the rest of that read, so bytes a client sends
    right behind its request (RFC 9110 §7.8 lets it start the new protocol as
    soon as the request is sent) were lost, and so was a request pipelined
    behind a declined upgrade.  When the last request of a read asks for an
    upgrade (``Connection: upgrade`` + ``Upgrade``) and has no body, this
    parks what follows it, as aiohttp does for WebSocket: ``set_parser`` then
    hands it to the echo, or, if the handler declines, aiohttp parses it as
    HTTP again.
    """

    __slots__ = ("_previous", "_head_bytes", "_last_payload", "_counted", "head_parsed_at")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._previous = b""
        self._head_bytes = 0  # bytes of the next request's head received so far
        self._last_payload = None  # the body stream of the last request parsed
        self._counted = False  # counted in the server's open connections (--max-connections)
        self.head_parsed_at = 0.0  # time.monotonic() when the last head was parsed
        # aiohttp queues parsed requests in a deque, 760 bytes even when empty;
        # the queue holds a few pipelined requests at most, so a list does, for
        # 56 bytes: 7 MiB less with 10,000 held connections (issue #4,
        # benchmarks/held_connections.py).
        self._messages = _MessageQueue()

    # -- the header timeout (issue #9) ---------------------------------------------------
    #
    # aiohttp has no timeout for reading a request's head; its keep-alive timer
    # (an hour by default) is the only one, so a client that drips its headers
    # holds the connection that long.  WireRunner sets that timer to
    # --header-timeout: it runs from the connection's start and from each
    # response, and when it fires while the connection waits for a request,
    # aiohttp closes it.  Here, if part of a head has arrived by then, a 408
    # goes out first (no byte of a response is on the wire then).  A connection
    # that sent nothing is closed without a reply, as Apache does: a 408 there
    # could be read as the answer to a request sent at that moment (an idle
    # keep-alive connection, a browser's preconnect).  Re-using aiohttp's timer
    # costs the hot path nothing: it keeps one deadline per connection.

    def _process_keepalive(self) -> None:
        closing = (
            self._head_bytes
            and self._keepalive
            and not self._force_close
            and self.transport is not None
            and self._waiter is not None
            and not self._waiter.done()
            and self._loop.time() >= self._next_keepalive_close_time
        )
        if closing:
            self.transport.write(
                plain_reply(
                    408, "Request Timeout",
                    "the request line and headers did not arrive within "
                    f"{format_seconds(self._keepalive_timeout)} (--header-timeout)",
                )  # fmt: skip
            )
        super()._process_keepalive()

    def finish_response(self, request, resp, start_time):
        # Not async: it hands back aiohttp's coroutine, so no extra frame per request.
        if isinstance(resp, web.HTTPException) and not resp.prepared:
            # Raised by aiohttp's router for a target that is not a path
            # (CONNECT host:443, OPTIONS *): our Server header, and say why.
            resp.headers["Server"] = SERVER
            if resp.status == 404 and not request.raw_path.startswith("/"):
                resp.text = (
                    f"404 Not Found: request target {request.raw_path!r} is not a path; "
                    "mockstatus serves paths such as /status/418 (it is not a proxy)\n"
                )
        return super().finish_response(request, resp, start_time)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._last_payload = None
        manager = self._manager
        if self._counted and manager is not None:
            self._counted = False
            manager.open_connections -= 1
        super().connection_lost(exc)

    def _heads_parsed(self, added: int, data: bytes) -> None:
        """``added`` requests were parsed: answer HTTP/0.9 with 505, close after HTTP/1.0 with TE.

        Runs once per request, so it compares prebuilt versions and reads
        fields directly (issue #8: the hot path).
        """
        self.head_parsed_at = time.monotonic()  # a delay counts from here (issue #4)
        messages = self._messages
        count = len(messages)
        for index in range(count - added, count):
            message, payload = messages[index]
            self._last_payload = payload
            version = getattr(message, "version", None)
            if version is None or version == _HTTP11:
                continue
            if version == _HTTP09:
                # llhttp reads "GET /x\r\n\r\n" as HTTP/0.9; aiohttp would answer it
                # with an "HTTP/0.9 200 OK" status line, which no version has.
                messages[index] = _http09_error(f"{message.method} {message.path}".encode("utf-8", "surrogateescape"))
            elif version == _HTTP10 and "Transfer-Encoding" in message.headers and not message.should_close:
                # RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty
                # framing (a 1.0 proxy in front may have read it differently): answer
                # it, then close, so nothing behind it is read as a request (smuggling).
                messages[index] = (message._replace(should_close=True), payload)
        # The start of a pipelined head behind the last one (one without a body,
        # so whatever follows its blank line is the next head).
        if data.endswith(b"\r\n\r\n"):
            self._head_bytes = 0
        else:
            last = messages[-1][0]
            self._head_bytes = 1 if hasattr(last, "headers") and not _has_body(last) else 0

    def data_received(self, data: bytes) -> None:
        if self._upgraded or self._payload_parser is not None:
            super().data_received(data)
            return
        # Bytes that arrive while the last request's body is still coming are body, not a head.
        last_payload = self._last_payload
        in_body = last_payload is not None and not last_payload.is_eof()
        messages = self._messages
        queued = len(messages)
        RequestHandler.data_received(self, data)
        added = len(messages) - queued
        if added == 1:
            message, payload = messages[-1]
            if getattr(message, "version", None) is HttpVersion11 and not message.upgrade:
                # The common case, kept short (issue #8): one HTTP/1.1 request, nothing
                # to rewrite, nothing to keep for an upgrade.  (llhttp hands out the
                # HttpVersion11 constant, so identity is the test.)
                self.head_parsed_at = time.monotonic()
                self._last_payload = payload
                self._head_bytes = 0 if data.endswith(b"\r\n\r\n") or _has_body(message) else 1
                self._previous = data
                return
        if added > 0:
            self._heads_parsed(added, data)
            if (
                getattr(messages[-1][0], "upgrade", False)
                and not self._upgraded
                and not (self._force_close or self._close)
                and not any(_has_body(m) for m, _ in messages[-added:] if hasattr(m, "headers"))
            ):
                # The request's head may have started in the previous read, so
                # its blank line may straddle the two: look from 3 bytes back.
                carry = self._previous[-3:]
                tail = _after_heads(carry + data, added)
                if tail is not None and len(tail) <= len(data):
                    self._upgraded = True
                    self._message_tail = tail
        elif data and not in_body and not (self._force_close or self._close):
            self._head_bytes += len(data)
            if self._head_bytes == len(data) and _HTTP09_LINE.fullmatch(data):
                # A real HTTP/0.9 client sends "GET /\r\n" and waits; llhttp waits
                # for more, so answer now (the 505 goes out as HTTP/1.x).
                messages.append(_http09_error(data.rstrip(b"\r\n")))
                if self._waiter is not None and not self._waiter.done():
                    self._waiter.set_result(None)
        self._previous = data

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None, message: str | None = None):
        """aiohttp's own replies (a request it cannot parse, a handler that crashed)
        carry the same ``Server`` header as every other reply (issue #2), and a
        method its parser does not know (``FOO``) is named with the ones that work."""
        if message and message.startswith("Pause on PRI/Upgrade"):
            # llhttp stops at the HTTP/2 connection preface (RFC 9113 §3.4).
            status = 505
            message = (
                "505 HTTP Version Not Supported: an HTTP/2 connection preface (PRI * HTTP/2.0); "
                "mockstatus speaks HTTP/1.1 and HTTP/1.0, not HTTP/2 with prior knowledge\n"
            )
        elif isinstance(exc, LineTooLong) and message:
            limit = exc.args[1] if len(exc.args) > 1 else None
            flag = "--max-request-line" if limit == self.max_line_size else "--max-header-size"
            message = f"{message}\n(a limit of this server: raise it with {flag})\n"
        elif message and message.startswith("Too many headers"):
            message = f"{message}: at most {self.max_headers} header fields (raise it with --max-headers)\n"
        response = super().handle_error(request, status, exc, message)
        response.headers["Server"] = SERVER
        # The text quotes the bytes it could not parse: never let a browser sniff it as HTML.
        response.headers["X-Content-Type-Options"] = "nosniff"
        if isinstance(exc, BadHttpMethod) and (line := _QUOTED_LINE.search(message or "")):
            from .server_state import PREFLIGHT_METHODS  # server_state imports this module

            method = line.group(1).split(" ", 1)[0]
            if method in PREFLIGHT_METHODS.split(", "):
                # "GET\r\n": a known method with no target or version after it.
                response.text = f"400 Bad Request: bad request line {line.group(1)!r}; expected METHOD /target HTTP/1.1\n"
            else:
                response.text = f"400 Bad Request: unknown method {method!r}; allowed: {PREFLIGHT_METHODS}\n"
        return response

    def log_exception(self, *args, **kw) -> None:
        # A request aiohttp cannot parse is the client's mistake, answered with a
        # 4xx: no traceback in the server's log (only a crash in mockstatus gets one).
        if isinstance(kw.get("exc_info"), HttpProcessingError):
            self.logger.debug(*args, **kw)
            return
        super().log_exception(*args, **kw)


class _Refused(asyncio.Protocol):
    """A connection above ``--max-connections``: a 503 written raw, then closed.

    It never reaches aiohttp, so it costs no parser, task or handler.  After
    the reply the write side is shut and whatever the client sends is read
    and dropped until it closes (at most a second): closing with its request
    unread would make the kernel send an RST, which can destroy the 503
    before the client reads it.
    """

    LINGER = 1.0

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        transport.write(
            plain_reply(
                503, "Service Unavailable",
                f"{self.limit} connections are open, the --max-connections limit; retry in a second",
                extra=(("Retry-After", "1"),),
            )  # fmt: skip
        )
        if transport.can_write_eof():
            transport.write_eof()
        self.timer = asyncio.get_running_loop().call_later(self.LINGER, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # the transport closes itself

    def connection_lost(self, exc: BaseException | None) -> None:
        if self.timer is not None:
            self.timer.cancel()


class _WireServer(web.Server):
    # Set by WireRunner from the settings.
    max_connections = 0
    open_connections = 0

    def __call__(self) -> asyncio.Protocol:
        if self.max_connections and self.open_connections >= self.max_connections:
            return _Refused(self.max_connections)
        handler = WireRequestHandler(self, loop=self._loop, **self._kwargs)
        handler._counted = True
        self.open_connections += 1
        return handler


# Files the process needs besides its connections: listening sockets, the
# catalog, logs, connections being refused with a 503.
RESERVED_FILES = 64
_log = logging.getLogger("mockstatus")
_warned_limit: set[int] = set()


def connection_limit(wanted: int) -> int:
    """``--max-connections`` as the open-files limit allows: raise the soft limit
    to fit if the hard one lets us, else lower the connection limit (and say so
    once), so that a connection over it gets a 503 rather than a failed accept()."""
    if wanted <= 0:
        return 0
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + RESERVED_FILES
    infinite = resource.RLIM_INFINITY
    if soft != infinite and soft < needed:
        target = needed if hard == infinite else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != infinite and soft < needed:
        lowered = max(1, soft - RESERVED_FILES)
        if wanted not in _warned_limit:
            _warned_limit.add(wanted)
            _log.warning(
                "mockstatus: the open-files limit (%d) allows %d connections, not --max-connections %d",
                soft, lowered, wanted,
            )  # fmt: skip
        return lowered
    return wanted


class WireRunner(web.AppRunner):
    """``web.AppRunner`` whose connections use ``WireRequestHandler``, with the
    connection limit and header timeout from the app's settings."""

    async def _make_server(self) -> web.Server:
        from .server_state import STATE  # server_state imports this module

        server = await super()._make_server()
        server.__class__ = _WireServer
        state = self._app.get(STATE)
        if state is not None:
            if state.settings.header_timeout > 0:  # 0: aiohttp's own keep-alive timeout (an hour)
                server._kwargs["keepalive_timeout"] = state.settings.header_timeout
            server.max_connections = connection_limit(state.settings.max_connections)
            from .status import immediate_first  # status imports this module

            server.request_handler = immediate_first(state, server.request_handler)
        return server
