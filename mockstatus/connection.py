"""The connection protocol: aiohttp's HTTP/1.1 handler with what mockstatus adds.

``WireRequestHandler`` keeps the bytes behind a raw ``Upgrade`` (101 echo),
answers HTTP/0.9 and the HTTP/2 preface with 505, times out a request head
(``--header-timeout``, 408), names aiohttp's parser limits in its 400s and
keeps per-request bookkeeping short (the hot path, issue #8).  ``WireRunner``
installs it, with ``--max-connections`` enforced before aiohttp sees a
connection.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.http_parser import HttpVersion, HttpVersion11
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import RequestHandler, _ErrInfo

from .durations import format_seconds

from .replies import SERVER, http_date, raw_head
from .server_state import PREFLIGHT_METHODS, STATE
from .status import immediate_first


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
        server = await super()._make_server()
        server.__class__ = _WireServer
        state = self._app.get(STATE)
        if state is not None:
            if state.settings.header_timeout > 0:  # 0: aiohttp's own keep-alive timeout (an hour)
                server._kwargs["keepalive_timeout"] = state.settings.header_timeout
            server.max_connections = connection_limit(state.settings.max_connections)
            server.request_handler = immediate_first(state, server.request_handler)
        return server
