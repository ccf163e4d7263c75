"""Replies written to the socket by hand: interim 1xx, header-less, faults, upgrades.

aiohttp would send a 1xx as a *final* response and always puts a status line
and headers before a body, so these kinds bypass ``web.Response``: an interim
head is written through aiohttp's view of the socket (the final reply
follows on the same connection); the others take the socket from aiohttp
(``protocol.connection_of(request).detach()``) and the handler returns
``AlreadySent``.
"""

from __future__ import annotations

import asyncio
import base64
import random
import socket
import struct

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from .catalog import StatusInfo
from .durations import format_seconds
from .heads import SERVER, http_date, raw_head
from .protocol import connection_of


class AlreadySent(web.StreamResponse):
    """What a handler returns after writing (or refusing) the reply itself.

    aiohttp calls ``prepare()`` and ``write_eof()`` on whatever a handler
    returns.  A real ``web.Response`` would then try to write a second reply
    to a transport we already closed; this one writes nothing, keeps the
    status for the access log, and tells aiohttp not to keep the connection.
    """

    def __init__(self, status: int, reason: str | None = None, *, sent: int | None = None) -> None:
        super().__init__(status=status, reason=reason)
        self.force_close()
        self.sent = sent  # bytes of it that went out, for the journal (None: not counted)

    async def prepare(self, request: web.BaseRequest) -> None:
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def _transport(request: web.BaseRequest) -> asyncio.Transport:
    """The socket, taken from aiohttp: what the caller writes is all that goes out."""
    return connection_of(request).detach()


def write_interim(request: web.BaseRequest, status: int, reason: str, headers=()) -> bool:
    """Send one interim 1xx response (RFC 9110 §15.2); never to an HTTP/1.0 client.

    Written through aiohttp's view of the socket, which stays attached: the
    final reply follows on the same connection.
    """
    if request.version < (1, 1):
        return False
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("client went away")
    transport.write(raw_head(status, reason, headers))
    return True


def send_headerless(request: web.BaseRequest, body: bytes) -> None:
    """The '600' reply: body bytes with no status line or headers, then close."""
    transport = _transport(request)
    transport.write(body)
    transport.close()


def send_fault(
    request: web.BaseRequest, fault: str, info: StatusInfo, headers: CIMultiDict, body: bytes | None, rng: random.Random
) -> None:
    """Break the exchange on purpose: each fault is a different client error.

    ``headers`` and ``body`` are the reply as asked for; a fault that sends a
    head sends these headers, and the body it cuts or sends is this one.
    """
    transport = _transport(request)
    if fault == "reset":
        _reset(transport)
        return
    if fault == "empty":
        transport.close()
        return
    if fault == "garbage":
        # Bytes 0x80-0xff never start "HTTP/", so no client mistakes them for a reply.
        transport.write(bytes(rng.randrange(0x80, 0x100) for _ in range(64)))
        transport.close()
        return
    body = body or b""
    if fault == "malformed":
        transport.write(
            f"HTTP/1.1 {info.code} {info.reason}\r\n".encode("latin-1", "replace")
            + b"this line is not a header\r\n\x00\x01\x02 neither is this\r\n\r\n"
        )
        transport.close()
        return
    head = [(k, v) for k, v in headers.items() if k.lower() != "content-length"]
    head.append(("Date", http_date()))
    # A reply to HEAD has no body (RFC 9110 §9.3.2): body bytes after its head would
    # be read as the next response, a failure nobody asked for. HEAD gets the head.
    sent = b"" if request.method == "HEAD" else body
    if fault == "truncate":
        head.append(("Content-Length", str(len(body))))
        transport.write(raw_head(info.code, info.reason, head) + sent[: len(sent) // 2])
    elif fault == "no-length":
        # RFC 9112 §6.3 rule 8: no length and no chunking means "read until close".
        head.append(("Connection", "close"))
        transport.write(raw_head(info.code, info.reason, head) + sent)
    else:  # pragma: no cover - options/catalog validation keeps this unreachable
        raise ValueError(fault)
    transport.close()


# --- faults around a reply: the connection stalls, closes or resets at a chosen point --


def _reset(transport: asyncio.Transport) -> None:
    # SO_LINGER with a zero timeout turns close() into an RST (WireMock's
    # CONNECTION_RESET_BY_PEER does the same).
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _flushed(transport: asyncio.Transport) -> None:
    """Until asyncio has handed every byte written to the kernel: abort() drops
    what is still queued in the transport, and reset-after:N promises N bytes."""
    while transport.get_write_buffer_size() and not transport.is_closing():
        await asyncio.sleep(0.001)


async def send_then_cut(request: web.BaseRequest, data: bytes, *, reset: bool) -> int:
    """Write ``data`` (the first N bytes of a reply), then a TCP reset or a clean FIN."""
    connection = connection_of(request)
    if reset:
        transport = connection.detach()
        transport.write(data)
        await _flushed(transport)
        if not transport.is_closing():
            _reset(transport)
    else:
        connection.detach()
        # FIN, then input read and dropped for a moment: a close with unread
        # input would turn into an RST that can destroy the bytes just sent.
        connection.finish(data)
    return connection.sent


async def send_and_stall(request: web.BaseRequest, data: bytes, hold: float) -> int:
    """Write ``data`` (maybe nothing), then silence for ``hold`` seconds or until the client leaves."""
    connection = connection_of(request)
    transport = connection.detach()
    if data:
        transport.write(data)
    try:
        await asyncio.sleep(hold)
    except asyncio.CancelledError:
        if not _ended_by_client(transport):
            raise
        return connection.sent  # the client gave up first: the usual end of a stall
    connection.finish()
    return connection.sent


def send_then_go_stale(request: web.BaseRequest, data: bytes, after: float) -> int:
    """A whole reply that keeps the connection, then a silent close ``after`` seconds
    later; a request sent on it meanwhile is read and never answered."""
    connection = connection_of(request)
    transport = connection.detach()
    transport.write(data)
    asyncio.get_running_loop().call_later(after, transport.close)
    return connection.sent


def send_early(request: web.BaseRequest, data: bytes) -> int:
    """A whole reply before the request body is read, then FIN (the body is read and dropped)."""
    connection = connection_of(request)
    connection.detach()
    connection.finish(data)
    return connection.sent


async def cut_upload(request: web.BaseRequest, *, reset: bool) -> int:
    """Read half the request body (by Content-Length, else its first chunk), then close or reset.

    Returns the body bytes read.
    """
    received = 0
    if request.body_exists:
        length = request.content_length
        try:
            if length is not None:
                received = len(await request.content.readexactly(length // 2))
            else:
                end_of_chunk = False
                while not end_of_chunk:
                    data, end_of_chunk = await request.content.readchunk()
                    received += len(data)
                    if not data and not end_of_chunk:
                        break
        except asyncio.IncompleteReadError as exc:
            received = len(exc.partial)
    connection = connection_of(request)
    transport = connection.detach()
    if reset:
        _reset(transport)
    else:
        connection.finish()
    return received


# A client that sends to the echo without reading: stop reading from it above
# the high-water mark and go on below the low one, so memory stays bounded.
ECHO_HIGH_WATER = 1 << 20
ECHO_LOW_WATER = 1 << 18


class _Echo:
    """After a raw 101 switch the connection carries bytes: echo them back.

    The connection layer hands it every byte that arrives after the upgrade
    request, starting with the ones the client sent right behind it.
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
        self.finish()

    def finish(self) -> None:
        self.timer.cancel()
        if not self.done.done():
            self.done.set_result(None)

    def _active(self) -> None:
        self.timer.cancel()
        self.timer = self.loop.call_later(self.idle, self._timeout)

    def feed(self, data: bytes) -> None:
        self._active()
        if not self.transport.is_closing():
            self.transport.write(data)
            if not self.paused and self.transport.get_write_buffer_size() > ECHO_HIGH_WATER:
                self.paused = True
                self.queued = self.transport.get_write_buffer_size()
                self.transport.pause_reading()
                self.loop.call_later(0.01, self._resume_when_drained)

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


def _upgrade_head(token: str, connection: str = "Upgrade") -> bytes:
    return raw_head(101, "Switching Protocols", (("Connection", connection), ("Upgrade", token), ("Server", SERVER)))


def send_unasked_upgrade(request: web.BaseRequest, token: str) -> None:
    """A 101 to a request without ``Upgrade``, then close: nothing was agreed to speak next.

    ``close`` joins ``upgrade`` in Connection (RFC 9112 §9.6: a server that
    closes after a reply says so in it): a pooling client (urllib3, aiohttp)
    otherwise puts the connection back and may send its next request on it
    before the FIN arrives, and that request fails.
    """
    transport = _transport(request)
    transport.write(_upgrade_head(token, "Upgrade, close"))
    transport.close()


async def send_raw_upgrade(request: web.BaseRequest, token: str, idle: float) -> None:
    """101 with Connection/Upgrade (RFC 9110 §7.8), then a raw byte echo."""
    connection = connection_of(request)
    transport = connection.detach()
    transport.write(_upgrade_head(token))
    echo = _Echo(transport, idle)
    connection.receiver = echo.feed
    held = connection.take_held()
    if held:
        echo.feed(held)
    try:
        await echo.done
    except asyncio.CancelledError:
        if not _ended_by_client(transport):
            raise
    finally:
        echo.finish()
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
        return (
            400,
            f"bad WebSocket handshake: Connection {headers.get('Connection', '')!r} lacks upgrade; {WEBSOCKET_FORM}",
        )
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


async def send_websocket_echo(request: web.Request, idle: float) -> web.StreamResponse:
    """A real WebSocket session (RFC 6455) that echoes text and binary messages.

    A session with no message for ``idle`` seconds is closed with 1001
    (going away), as a raw upgraded connection is: an idle session would
    otherwise hold its socket and memory until the client leaves.
    """
    transport = request.transport
    ws = web.WebSocketResponse(heartbeat=None)
    connection_of(request).tunnel()  # from here the socket carries WebSocket frames
    await ws.prepare(request)
    try:
        while True:
            try:
                message = await ws.receive(timeout=idle if idle > 0 else None)
            except TimeoutError:
                reason = f"idle for {format_seconds(idle)} (--upgrade-idle-timeout)"
                await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=reason.encode())
                break
            if message.type == web.WSMsgType.TEXT:
                await ws.send_str(message.data)
            elif message.type == web.WSMsgType.BINARY:
                await ws.send_bytes(message.data)
            elif message.type in (web.WSMsgType.CLOSE, web.WSMsgType.CLOSING, web.WSMsgType.CLOSED):
                break
            elif message.type == web.WSMsgType.ERROR:
                break
    except asyncio.CancelledError:
        if not _ended_by_client(transport):
            raise
        return AlreadySent(101)
    return ws
