"""The connection layer: mockstatus owns the socket, aiohttp serves the requests.

``Connection`` is the ``asyncio.Protocol`` the listening socket creates.  It
sees every byte first, frames requests itself (``framing.py``) and forwards
only well-formed ones to the protocol made by aiohttp's public protocol
factory (``AppRunner.server``), handing it a ``_AiohttpTransport`` view of the
socket.  Composition, not inheritance: aiohttp is used only through its
documented API, and behaves the same with either of its parsers.

The connection's state is one named value, changed only in this module:

    IDLE ──head bytes──> HEAD ──head complete──> (BODY ──body complete──>) IDLE
      │                   │                        │
      │                   └── refused: an error reply, then CLOSING
      └── an upgrade request ──> UPGRADE (later bytes held until the reply)
                                   ├── raw 101: DETACHED (mockstatus writes raw bytes)
                                   ├── WebSocket: TUNNEL (bytes pass to aiohttp unframed)
                                   └── declined: a fresh aiohttp protocol, IDLE again

Replies in flight are counted apart (``pending``): a request is "in the
handler" from its head until its aiohttp task is done.  The header timeout
runs while the connection waits for a head with no reply pending; the body
timeout while a body is arriving.
"""

from __future__ import annotations

import asyncio
import enum
import errno
import functools
import logging
import socket
import time
from collections.abc import Callable

from aiohttp import web

from .durations import NO_CONTEXT, format_seconds
from .errors import plain_reply
from .framing import TRAILING_OWS, ChunkedBody, Limits, Refusal, check_start, parse_head

log = logging.getLogger("mockstatus")

# A refused request's reply goes out, then the write side is shut and input is
# read and dropped until the client closes, for at most this long: closing
# with unread input makes the kernel send an RST, which can destroy the reply
# before the client reads it.
LINGER = 1.0
# Bytes held behind an upgrade request while its handler decides; above this
# the socket stops being read until the decision.
UPGRADE_HOLD = 1 << 16


class State(enum.Enum):
    IDLE = "idle"  # waiting for a head; none of it received
    HEAD = "head"  # part of a head received
    BODY = "body"  # a head forwarded, its body still arriving
    UPGRADE = "upgrade"  # an upgrade request forwarded; later bytes held
    TUNNEL = "tunnel"  # aiohttp speaks WebSocket on the socket; bytes pass unframed
    DETACHED = "detached"  # mockstatus writes raw bytes; aiohttp is cut off
    CLOSING = "closing"  # no more requests are read; close after the replies pending
    CLOSED = "closed"


WAITING = (State.IDLE, State.HEAD)
PLAIN_HEADS = 256  # heads remembered as checked, per listener
PLAIN_HEAD_MAX = 2048  # longer heads are checked every time
PAUSED_BY_AIOHTTP = 1
PAUSED_BY_LAYER = 2


class _Forwarding(asyncio.Transport):
    """A view of a connection's socket: every call goes to the socket's transport.

    The two views below change only what they must: what aiohttp may do, and
    what mockstatus writes after a detach.
    """

    __slots__ = ("connection", "transport")

    def __init__(self, connection: Connection, transport: asyncio.Transport) -> None:
        # asyncio.BaseTransport.__init__ is not called: it only makes the dict
        # behind get_extra_info, which a view forwards to the socket's.
        self.connection = connection
        self.transport = transport

    def write(self, data) -> None:
        self.transport.write(data)

    def writelines(self, list_of_data) -> None:
        self.transport.writelines(list_of_data)

    def write_eof(self) -> None:
        self.transport.write_eof()

    def can_write_eof(self) -> bool:
        return self.transport.can_write_eof()

    def close(self) -> None:
        self.transport.close()

    def abort(self) -> None:
        self.transport.abort()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def pause_reading(self) -> None:
        self.transport.pause_reading()

    def resume_reading(self) -> None:
        self.transport.resume_reading()

    def is_reading(self) -> bool:
        return self.transport.is_reading()

    def get_extra_info(self, name, default=None):
        return self.transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size()

    def get_write_buffer_limits(self):
        return self.transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        self.transport.set_write_buffer_limits(high, low)


class _AiohttpTransport(_Forwarding):
    """The socket as aiohttp sees it: writes go through until aiohttp is cut off.

    Once cut (a raw reply took the socket, or a fresh aiohttp protocol took
    over), nothing aiohttp writes or closes reaches the socket.
    """

    __slots__ = ("cut",)

    def __init__(self, connection: Connection, transport: asyncio.Transport) -> None:
        super().__init__(connection, transport)
        self.cut = False

    def write(self, data) -> None:
        if not self.cut:
            self.connection.replied = True
            self.transport.write(data)

    def writelines(self, list_of_data) -> None:
        if not self.cut:
            self.connection.replied = True
            self.transport.writelines(list_of_data)

    def write_eof(self) -> None:
        if not self.cut:
            self.transport.write_eof()

    def close(self) -> None:
        if not self.cut:
            self.connection.aiohttp_closed()

    def abort(self) -> None:
        if not self.cut:
            self.transport.abort()

    def is_closing(self) -> bool:
        return self.cut or self.transport.is_closing()

    def pause_reading(self) -> None:
        if not self.cut:
            self.connection.pause(aiohttp=True)

    def resume_reading(self) -> None:
        if not self.cut:
            self.connection.resume(aiohttp=True)

    def set_protocol(self, protocol) -> None:  # aiohttp never swaps protocols on a server socket
        raise NotImplementedError

    def get_protocol(self):
        return self.connection.inner


class _Counted(_Forwarding):
    """The socket after a detach: counts what mockstatus writes, for the journal."""

    __slots__ = ()

    def write(self, data) -> None:
        self.connection.sent += len(data)
        self.transport.write(data)

    def writelines(self, list_of_data) -> None:
        for data in list_of_data:
            self.write(data)


class Connection(asyncio.Protocol):
    """One client connection: framing, timeouts, and who speaks on the socket."""

    __slots__ = (
        "listener", "inner", "view", "transport", "state", "buffer", "body_left", "chunked",
        "pending", "arrivals", "arrived", "deadline", "slot", "task", "paused_by", "held", "refusal",
        "receiver", "close_after", "replied", "linger", "refuse_at", "last_begun", "requests_begun", "sent",
    )  # fmt: skip

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.inner: asyncio.Protocol = listener.factory()
        self.view: _AiohttpTransport | None = None
        self.transport: asyncio.Transport | None = None
        self.state = State.IDLE
        self.buffer = b""  # the part of a head received so far
        self.body_left = 0  # Content-Length bytes still to come
        self.chunked: ChunkedBody | None = None
        self.pending = 0  # requests forwarded whose aiohttp task has not finished
        # When each pending head was complete: a tuple, since it holds one or two
        # times, and none (the shared empty tuple) while a request is held.
        self.arrivals: tuple[float, ...] = ()
        self.arrived = 0.0  # when the head of the request begun last was complete
        self.deadline = 0.0  # of the header or body timeout, on the loop's clock
        self.slot: int | None = None  # its place in the listener's Deadlines, while one runs
        self.task: asyncio.Task | None = None  # the handler task running now (aiohttp runs one at a time)
        self.paused_by = 0  # who stopped reading the socket: PAUSED_BY_AIOHTTP | PAUSED_BY_LAYER
        self.held = b""  # bytes behind an upgrade request
        self.refusal: bytes | None = None  # an error reply waiting for the replies ahead of it
        self.refuse_at = 0  # ... sent once no more than this many replies are pending
        self.receiver: Callable[[bytes], None] | None = None  # raw bytes after a detach
        self.close_after = False  # close once the replies pending are done
        self.replied = False  # aiohttp wrote part of a reply since the last head
        self.linger: asyncio.TimerHandle | None = None
        self.last_begun: web.BaseRequest | None = None  # the request a handler started on last
        self.requests_begun = 0  # handlers started on this connection: the current one is number ``requests_begun``
        self.sent = 0  # bytes written by mockstatus itself after a detach (for the journal)

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.view = _AiohttpTransport(self, transport)
        self.inner.connection_made(self.view)
        self._wait_for_head()

    def connection_lost(self, exc) -> None:
        self.state = State.CLOSED
        self._unschedule()
        if self.linger is not None:
            self.linger.cancel()
        self.listener.lost(self)
        self.receiver = None
        # Forwarded even when cut off, so aiohttp's tasks for this connection end.
        self.inner.connection_lost(exc)

    def eof_received(self):
        state = self.state
        if state is State.DETACHED or self.linger is not None:
            return False
        if state in (State.TUNNEL, State.IDLE, State.BODY, State.HEAD):
            return self.inner.eof_received()
        return False

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state is State.IDLE and self.refusal is None:
            # The common read: one whole head with no body.  Replies still pending
            # are no reason to frame it slowly: aiohttp answers pipelined requests
            # in order, and a client that got a reply may send the next request
            # before the reply's task has finished.
            if data in self.listener.plain_heads:
                # The same bytes as a head already checked and found plain (a client
                # repeats its head from request to request): forwarded as they are.
                self._request_started()
                self.inner.data_received(data)
                return
            if data.endswith(b"\r\n\r\n") and data.find(b"\r\n\r\n") == len(data) - 4 and data[:1] != b"\r":
                try:
                    head = parse_head(data[:-4], self.listener.limits)
                except Refusal as refusal:
                    self._refuse(refusal)
                    return
                if not (head.length or head.chunked or head.upgrade or head.close or head.padded):
                    self.listener.remember_plain(data)
                    self._request_started()
                    self.inner.data_received(data)
                    return
                # One whole head that needs more than forwarding: framed from here,
                # without parsing it a second time in _frame.
                forwarded = TRAILING_OWS.sub(b"\r\n", data) if head.padded else data
                self._head_complete(head)
                self.inner.data_received(forwarded)
                return
        if state is State.DETACHED:
            if self.receiver is not None:
                self.receiver(data)
            return
        if state is State.TUNNEL:
            self.inner.data_received(data)
            return
        if state is State.UPGRADE:
            self.held += data
            if len(self.held) > UPGRADE_HOLD:
                self.pause(aiohttp=False)
            return
        if state in (State.CLOSING, State.CLOSED) or self.linger is not None:
            return  # read and dropped: nothing more is answered
        self._frame(data)

    # -- framing -------------------------------------------------------------------------

    def _frame(self, data: bytes) -> None:
        """Split ``data`` into heads and bodies; forward what is well formed."""
        forward: list[bytes] = []
        pos = 0
        size = len(data)
        limits = self.listener.limits
        try:
            while pos < size:
                state = self.state
                if state is State.BODY:
                    if self.chunked is not None:
                        taken = self.chunked.feed(data[pos:] if pos else data)
                        done = self.chunked.done
                    else:
                        taken = min(self.body_left, size - pos)
                        self.body_left -= taken
                        done = not self.body_left
                    forward.append(data[pos : pos + taken])
                    pos += taken
                    if self.slot is not None:
                        self.deadline = self.listener.loop.time() + self.listener.body_timeout
                    if done:
                        self.chunked = None
                        self._request_read()
                    continue
                if state not in WAITING:
                    # UPGRADE or CLOSING after a head in this read: the rest is not framed here.
                    rest = data[pos:]
                    if state is State.UPGRADE:
                        self.held += rest
                    pos = size
                    break
                chunk = self.buffer + data[pos:] if self.buffer else data[pos:]
                if not self.buffer:
                    # RFC 9112 §2.2: empty lines before a request line are ignored.
                    stripped = chunk.lstrip(b"\r\n")
                    pos += len(chunk) - len(stripped)
                    chunk = stripped
                    if not chunk:
                        break
                end = chunk.find(b"\r\n\r\n")
                if end < 0:
                    if not self.buffer:
                        check_start(chunk, limits)
                    if len(chunk) > limits.max_head:
                        raise Refusal(
                            431, "Request Header Fields Too Large",
                            f"the request head is longer than {limits.max_head} bytes "
                            "(--max-headers times --max-header-size)",
                        )  # fmt: skip
                    self._check_partial(chunk)
                    self.buffer = chunk
                    self.state = State.HEAD
                    break
                check_start(chunk, limits)
                consumed = end + 4 - len(self.buffer)
                head = parse_head(chunk[:end], limits)
                raw = chunk[: end + 4] if self.buffer else data[pos : pos + consumed]
                # RFC 9112 §5: whitespace around a field value is not part of it;
                # aiohttp's older parsers keep the trailing part, so it goes here.
                forward.append(TRAILING_OWS.sub(b"\r\n", raw) if head.padded else raw)
                self.buffer = b""
                pos += consumed
                self._head_complete(head)
        except Refusal as refusal:
            if forward:
                self.inner.data_received(b"".join(forward))
            self._refuse(refusal)
            return
        if forward:
            self.inner.data_received(forward[0] if len(forward) == 1 else b"".join(forward))

    def _check_partial(self, chunk: bytes) -> None:
        """A head that can never end well is refused before it ends."""
        newline = chunk.find(b"\n")
        if newline >= 0 and (newline == 0 or chunk[newline - 1] != 0x0D):
            end = chunk.find(b"\r\n")
            line = chunk[: newline if end < 0 else end]
            raise Refusal(
                400, "Bad Request", f"bare LF in {line[:60].decode('latin-1')!a}: lines end with CRLF (RFC 9112 §2.2)"
            )
        cr = chunk.find(b"\r")
        while cr >= 0:
            if cr + 1 < len(chunk) and chunk[cr + 1] != 0x0A:
                raise Refusal(
                    400,
                    "Bad Request",
                    f"bare CR in {chunk[:60].decode('latin-1')!a}: lines end with CRLF (RFC 9112 §2.2)",
                )
            cr = chunk.find(b"\r", cr + 1)

    def _request_started(self) -> None:
        """A head goes to aiohttp: one more reply pending, arriving now."""
        self.pending += 1
        self.arrivals += (time.monotonic(),)
        self.replied = False

    def _head_complete(self, head) -> None:
        self._request_started()
        if head.close:
            self.close_after = True
        if head.chunked or head.length:
            if head.chunked:
                self.chunked = ChunkedBody(self.listener.limits.max_field)
            else:
                self.body_left = head.length
            self.state = State.BODY
            if self.listener.body_timeout > 0:
                self._arm(self.listener.body_timeout)
        else:
            self._request_read()
        if head.upgrade and self.state is State.IDLE and not head.length and not head.chunked:
            self.state = State.UPGRADE

    def _request_read(self) -> None:
        """A whole request (head and body) has been forwarded."""
        self.state = State.CLOSING if self.close_after else State.IDLE

    # -- what handlers call (through the accessors below) ------------------------------------

    def begin(self, request: web.BaseRequest) -> None:
        """A handler starts on the next pending request: note its arrival, watch its end."""
        if request is self.last_begun:
            return  # the expect handler began it, before the route handler
        self.last_begun = request
        arrivals = self.arrivals
        if arrivals:
            self.arrived, self.arrivals = arrivals[0], arrivals[1:]
        else:
            self.arrived = time.monotonic()
        self.requests_begun += 1
        if self.state is not State.BODY:
            # No timeout runs while a reply is pending and no body arrives: the
            # header timeout starts again when the reply is done.  A request
            # held in a long delay then costs no timer.
            self._unschedule()
        task = asyncio.current_task(self.listener.loop)
        if task is not None:
            self.task = task
            task.add_done_callback(self._reply_done, context=NO_CONTEXT)

    def detach(self) -> asyncio.Transport:
        """Take the socket from aiohttp: from now on only the caller writes to it.

        Bytes that arrive afterwards go to ``receiver`` when the caller sets
        one (and are dropped otherwise); ``take_held`` gives the ones that
        arrived right behind an upgrade request.
        """
        transport = self.transport
        if transport is None or transport.is_closing() or self.state is State.CLOSED:
            raise ConnectionResetError("client went away")
        assert self.view is not None
        self.view.cut = True
        self.state = State.DETACHED
        self._unschedule()
        if self.paused_by:
            self.paused_by = 0
            transport.resume_reading()
        return _Counted(self, transport)

    def close_after_this(self) -> None:
        """Close the connection once the reply being written is out, without saying so."""
        self.close_after = True
        if self.state in WAITING:
            self.state = State.CLOSING

    def take_held(self) -> bytes:
        held, self.held = self.held, b""
        return held

    def tunnel(self) -> None:
        """aiohttp takes the socket over for a WebSocket: bytes pass to it unframed."""
        held, self.held = self.held, b""
        self.state = State.TUNNEL
        self._unschedule()
        if self.paused_by & PAUSED_BY_LAYER:
            self.resume(aiohttp=False)
        if held:
            self.inner.data_received(held)

    # -- replies done, timers, refusals ------------------------------------------------

    def _reply_done(self, task) -> None:
        if self.task is task:
            self.task = None
        self.pending -= 1
        if not self.pending:
            self.last_begun = None  # no request can be between its expect handler and its route handler
        if self.refusal is not None and self.pending <= self.refuse_at:
            self._send_refusal()
            return
        if self.pending or self.state in (State.DETACHED, State.TUNNEL, State.CLOSED):
            return
        if self.state is State.UPGRADE:
            self._reseat()
        elif self.state is State.CLOSING and self.transport is not None:
            self.transport.close()
        elif self.state in WAITING:
            self._wait_for_head()

    def _reseat(self) -> None:
        """A declined upgrade: aiohttp may still treat the socket as upgraded
        (some releases keep every later byte for a protocol switch that never
        came), so a fresh aiohttp protocol takes the connection from here."""
        assert self.view is not None and self.transport is not None
        old, old_view = self.inner, self.view
        old_view.cut = True
        self.inner = self.listener.factory()
        self.view = _AiohttpTransport(self, self.transport)
        old.connection_lost(None)
        self.inner.connection_made(self.view)
        self.state = State.IDLE
        held, self.held = self.held, b""
        if self.paused_by & PAUSED_BY_LAYER:
            self.resume(aiohttp=False)
        self._wait_for_head()
        if held:
            self.data_received(held)

    def aiohttp_closed(self) -> None:
        """aiohttp closes the connection (after a reply that does not keep it)."""
        if self.transport is not None:
            self.transport.close()

    def _refuse(self, refusal: Refusal) -> None:
        """A request this layer will not forward: answer after the replies ahead of it.

        A body that breaks belongs to the last request forwarded, whose handler
        may be waiting for the rest of it: that request is answered with the
        refusal (if none of its reply went out) instead of waiting for it.
        """
        in_body = self.state is State.BODY
        self.refusal = plain_reply(
            refusal.status, refusal.reason, refusal.text, nosniff=True, head_only=refusal.method == b"HEAD"
        )
        self.refuse_at = 1 if in_body else 0
        self.state = State.CLOSING
        self.buffer = b""
        self.chunked = None
        if self.pending <= self.refuse_at:
            self._send_refusal()

    def _send_refusal(self) -> None:
        reply, self.refusal = self.refusal, None
        # Part of the broken request's reply already went out: a 400 behind it
        # would read as the next reply; the connection just ends.
        self.finish(b"" if self.pending and self.replied else reply)

    def finish(self, reply: bytes = b"") -> None:
        """Write a last reply of our own, shut the write side, drop input, close soon."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.view is not None:
            self.view.cut = True
        self.state = State.CLOSING
        self._unschedule()
        if reply:
            self.sent += len(reply)
            transport.write(reply)
        if self.paused_by:
            self.paused_by = 0
            transport.resume_reading()
        if transport.can_write_eof():
            transport.write_eof()
        self.linger = self.listener.loop.call_later(LINGER, transport.close)

    def _wait_for_head(self) -> None:
        if self.listener.header_timeout > 0:
            self._arm(self.listener.header_timeout)

    def _arm(self, seconds: float) -> None:
        self.deadline = self.listener.loop.time() + seconds
        self.slot = self.listener.deadlines.place(self, self.slot, self.deadline)

    def _unschedule(self) -> None:
        if self.slot is not None:
            self.listener.deadlines.discard(self, self.slot)
            self.slot = None

    def expired(self, slot: int) -> None:
        """The listener's Deadlines reached the slot this connection was in."""
        self.slot = None
        state = self.state
        waiting = state in WAITING and not self.pending
        if not (waiting or state is State.BODY):
            return  # armed again when the connection waits again
        if self.deadline > Deadlines.time_of(slot):  # moved on since it was placed
            self.slot = self.listener.deadlines.place(self, None, self.deadline)
            return
        if state is State.BODY:
            if self.pending and not self.replied:
                self.finish(
                    plain_reply(
                        408,
                        "Request Timeout",
                        f"no byte of the request body arrived for {format_seconds(self.listener.body_timeout)} "
                        "(--body-timeout)",
                    )  # fmt: skip
                )
            else:
                self.finish()
        elif state is State.HEAD:
            self.finish(
                plain_reply(
                    408,
                    "Request Timeout",
                    "the request line and headers did not arrive within "
                    f"{format_seconds(self.listener.header_timeout)} (--header-timeout)",
                )  # fmt: skip
            )
        else:
            # Nothing of a request arrived: close without a word, as Apache does (a
            # 408 here could be read as the answer to a request sent at that moment
            # on an idle keep-alive connection, or a browser's preconnect).
            if self.transport is not None:
                self.transport.close()

    # -- flow control: the socket is read only if neither side paused it ----------------

    def pause(self, *, aiohttp: bool) -> None:
        self.paused_by |= PAUSED_BY_AIOHTTP if aiohttp else PAUSED_BY_LAYER
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume(self, *, aiohttp: bool) -> None:
        self.paused_by &= ~(PAUSED_BY_AIOHTTP if aiohttp else PAUSED_BY_LAYER)
        if not self.paused_by and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()


class _Refused(asyncio.Protocol):
    """A connection above ``--max-connections``: a 503 written raw, then closed.

    It never reaches aiohttp, so it costs no parser, task or handler; its
    input is read and dropped for a moment so the close sends no RST.
    """

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.limit = listener.max_connections
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        self.listener.refusing += 1  # until connection_lost, which follows only a connection_made
        transport.write(
            plain_reply(
                503,
                "Service Unavailable",
                f"{self.limit} connections are open, the --max-connections limit; retry in a second",
                extra=(("Retry-After", "1"),),
            )  # fmt: skip
        )
        if transport.can_write_eof():
            transport.write_eof()
        self.timer = asyncio.get_running_loop().call_later(LINGER, transport.close)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.listener.refusing -= 1
        self.listener.room()


class Deadlines:
    """The header and body timeouts of every connection, on few loop timers.

    A deadline is rounded up to a slot of ``RESOLUTION`` seconds and joins the
    slot's set; one loop timer per slot in use calls ``expired`` on each member.
    A keep-alive connection leaves its slot when a request begins and takes one
    when the reply is done: a set's add and discard cost far less than making
    and cancelling a loop timer, and a request held in a delay costs no timer.
    """

    RESOLUTION = 0.01  # seconds; a timeout fires at most this late

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.slots: dict[int, set[Connection]] = {}  # slots with members
        # Slots whose loop timer is pending: at most the longest timeout over
        # RESOLUTION of them, however many connections come and go.
        self.armed: set[int] = set()

    @classmethod
    def time_of(cls, slot: int) -> float:
        return slot * cls.RESOLUTION

    def place(self, connection: Connection, slot: int | None, at: float) -> int:
        """The slot for a deadline ``at``, ``slot`` being the one the connection is in (or None).

        A slot that comes no later than needed is kept: the connection looks
        at its deadline when it fires and moves on if it moved.
        """
        wanted = -int(-at // self.RESOLUTION)  # rounded up: never before the deadline
        if slot is not None:
            if slot <= wanted:
                return slot
            self.discard(connection, slot)
        members = self.slots.get(wanted)
        if members is None:
            members = self.slots[wanted] = set()
            if wanted not in self.armed:
                self.armed.add(wanted)
                self.loop.call_at(self.time_of(wanted), self._fire, wanted, context=NO_CONTEXT)
        members.add(connection)
        return wanted

    def discard(self, connection: Connection, slot: int) -> None:
        members = self.slots.get(slot)
        if members is not None:
            members.discard(connection)
            if not members:
                del self.slots[slot]  # its timer stays armed, and finds nobody

    def _fire(self, slot: int) -> None:
        self.armed.discard(slot)
        for connection in self.slots.pop(slot, ()):
            connection.expired(slot)


class Listener:
    """The protocol factory for ``loop.create_server``: one ``Connection`` per client.

    ``factory`` is aiohttp's public protocol factory (``AppRunner.server``).
    """

    def __init__(
        self,
        factory: Callable[[], asyncio.Protocol],
        *,
        limits: Limits,
        header_timeout: float,
        body_timeout: float,
        max_connections: int,
    ) -> None:
        self.factory = factory
        self.limits = limits
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.max_connections = max_connections
        self.connections: set[Connection] = set()
        self.loop = asyncio.get_running_loop()
        self.deadlines = Deadlines(self.loop)
        self.refusing = 0  # connections over the limit, being answered 503
        self.accepting = 0  # accepted sockets whose transport is still being made
        self.sockets: list[socket.socket] = []
        self.paused = True  # not accepting (yet, or for want of room)
        self.stopped = False
        # Whole heads (blank line included) that parse_head accepted and that need
        # nothing but forwarding: parsing is a pure function of the bytes and the
        # limits, so a repeated head is not parsed again.  Bounded in count and size.
        self.plain_heads: set[bytes] = set()

    def remember_plain(self, head: bytes) -> None:
        if len(head) > PLAIN_HEAD_MAX:
            return
        if len(self.plain_heads) >= PLAIN_HEADS:
            self.plain_heads.clear()
        self.plain_heads.add(head)

    def __call__(self) -> asyncio.Protocol:
        if self.max_connections and len(self.connections) >= self.max_connections:
            return _Refused(self)
        connection = Connection(self)
        self.connections.add(connection)
        return connection

    def lost(self, connection: Connection) -> None:
        self.connections.discard(connection)
        self.room()

    # -- accepting: paused while the files a refusal needs are short ----------------------
    #
    # The event loop's own accept loop takes every connection waiting, and when
    # accept() fails for want of a file descriptor, libuv accepts on a spare
    # one and closes it at once: the client sees a close with no reply.  So
    # mockstatus accepts itself, and stops while it is at --max-connections
    # plus the refusals it has files for; the kernel's backlog holds the rest
    # until a connection closes, and each of them then gets a reply.

    def serve(self, sockets: list[socket.socket]) -> None:
        self.sockets = sockets
        for sock in sockets:
            sock.setblocking(False)
        self._resume()

    def _full(self) -> bool:
        return bool(self.max_connections) and (
            len(self.connections) + self.refusing + self.accepting >= self.max_connections + REFUSALS_AT_ONCE
        )

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            if self._full():
                self._pause()
                return
            try:
                client, _ = sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of files: the connection waits in the backlog, not closed unanswered.
                    self._pause()
                    self.loop.call_later(ACCEPT_RETRY, self._resume)
                    return
                log.warning("mockstatus: accept() failed: %s", exc)
                return
            client.setblocking(False)
            keep_alive_probes(client)
            self.accepting += 1
            task = self.loop.create_task(self.loop.connect_accepted_socket(self, sock=client))
            task.add_done_callback(self._accepted)
        # More may be waiting: go on after the callbacks due (uvloop's readiness
        # is edge-triggered, so nothing would call again for these).
        self.loop.call_soon(self._accept_more, sock)

    def _accept_more(self, sock: socket.socket) -> None:
        if not self.paused and not self.stopped:
            self._accept(sock)

    def _accepted(self, task: asyncio.Task) -> None:
        self.accepting -= 1
        if not task.cancelled() and task.exception() is not None:
            # Gone before its transport was made: nothing to answer.
            log.debug("mockstatus: accepted connection lost at once: %s", task.exception())
        self.room()  # counted twice while its transport was made (connections and accepting)

    def _pause(self) -> None:
        if not self.paused:
            self.paused = True
            for sock in self.sockets:
                self.loop.remove_reader(sock.fileno())

    def _resume(self) -> None:
        if self.paused and not self.stopped:
            self.paused = False
            for sock in self.sockets:
                self.loop.add_reader(sock.fileno(), self._accept, sock)
                # Connections that queued while paused raise no new readiness.
                self.loop.call_soon(self._accept_more, sock)

    def room(self) -> None:
        """A connection or refusal closed: accept again if accepting was paused for want of room."""
        if self.paused and not self._full():
            self._resume()

    def stop_accepting(self) -> None:
        self._pause()
        self.stopped = True
        for sock in self.sockets:
            sock.close()

    def cancel_tasks(self) -> int:
        """The shutdown grace is over: cancel every request handler still running
        (admin, page and body reads included)."""
        running = [
            task
            for task in (connection.task for connection in self.connections)
            if task is not None and not task.done() and not task.cancelling()
        ]
        for task in running:
            task.cancel()
        return len(running)

    def close_all(self) -> None:
        """At shutdown, after aiohttp's own: close what mockstatus still speaks on."""
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()


# -- typed accessors for handlers ----------------------------------------------------------


def connection_of(request: web.BaseRequest) -> Connection:
    """The connection a request came on; raises ConnectionResetError when it is gone."""
    view = request.transport
    if not isinstance(view, _AiohttpTransport) or view.cut or view.transport.is_closing():
        raise ConnectionResetError("client went away")
    return view.connection


def bytes_sent(request: web.BaseRequest) -> int | None:
    """Bytes mockstatus wrote itself on the request's connection (after a detach), or None."""
    view = request.transport
    if isinstance(view, _AiohttpTransport) and view.cut:
        return view.connection.sent
    return None


def arrival(request: web.BaseRequest) -> float | None:
    """When the request's head was complete (``time.monotonic()``), if it came through a Connection."""
    view = request.transport
    if isinstance(view, _AiohttpTransport) and view.connection.last_begun is request:
        return view.connection.arrived
    return None


def tracked(handler):
    """A route's handler that first tells the connection it started, so the layer
    knows the request's arrival and, when the handler's task ends, that the reply
    is out.  A wrapper on each route, not a middleware: aiohttp builds a
    middleware chain for every request, which costs more than the handlers of
    the fast path themselves.  Every route of the app is registered through it
    (app.py), the catch-all included, so no request reaches aiohttp's own
    404/405 handlers."""

    @functools.wraps(handler)
    async def run(request: web.Request) -> web.StreamResponse:
        view = request.transport
        if isinstance(view, _AiohttpTransport):
            view.connection.begin(request)
        return await handler(request)

    return run


def keep_alive_probes(client: socket.socket) -> None:
    """TCP keep-alive on an accepted socket, so the kernel finds out a peer that
    vanished without a FIN (what aiohttp's ``tcp_keepalive`` would do)."""
    if hasattr(socket, "SO_KEEPALIVE"):
        client.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)


def begin(request: web.BaseRequest) -> None:
    """For code that runs before the route's handler (aiohttp's expect handler)."""
    view = request.transport
    if isinstance(view, _AiohttpTransport):
        view.connection.begin(request)


# Files the process needs besides its connections: listening sockets, the
# catalog, logs, connections being refused with a 503.
RESERVED_FILES = 64
# Refusals answered at once, within RESERVED_FILES; more wait in the backlog.
REFUSALS_AT_ONCE = 32
ACCEPT_BATCH = 16  # connections accepted per wake-up
ACCEPT_RETRY = 0.1  # seconds before accepting again after running out of files
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
            log.warning(
                "mockstatus: the open-files limit (%d) allows %d connections, not --max-connections %d",
                soft, lowered, wanted,
            )  # fmt: skip
        return lowered
    return wanted
