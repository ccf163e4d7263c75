"""Raw-socket helpers for tests that need the exact bytes on the wire.

There is one reader: ``Reader`` buffers what a socket receives and hands it out
as a head, an exact number of bytes, the next bytes to arrive, or everything
until the server ends the connection (noting whether by FIN or RST).  Everything
else reads through it:

* ``send`` / ``read_reply``: the strict client.  One request on a new
  connection, the reply parsed (interim 1xx, final head, body by its length),
  and then proof that a connection the reply keeps is still usable.
* ``read_head``, ``read_exactly``, ``read_chunk``, ``read_response``,
  ``read_to_end``, ``read_until_close`` and ``h11_responses`` take a socket and
  share one ``Reader`` per socket (``reader(sock)``), so bytes that arrived
  together with one reply are still there for the next read.  A test that
  reads one of those sockets itself must look at ``reader(sock).buffer`` first.
"""

from __future__ import annotations

import http.client
import os
import socket
import time
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import h11


def connect(server, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


Headers = Mapping[str, "str | bytes"] | Iterable[tuple[str, "str | bytes"]]


def request_bytes(
    path: str, method: str = "GET", version: str = "1.1", headers: Headers | None = None, body: bytes = b""
) -> bytes:
    """A request as bytes.  ``headers`` is a dict or a list of pairs (repeats kept);
    values are str (sent as latin-1) or bytes (sent as they are)."""
    pairs = list(headers.items() if isinstance(headers, Mapping) else headers or ())
    lines = [f"{method} {path} HTTP/{version}".encode("latin-1"), b"Host: localhost"]
    for name, value in pairs:
        lines.append(
            name.encode("latin-1") + b": " + (value if isinstance(value, bytes) else str(value).encode("latin-1"))
        )
    if body and not any(name.lower() in ("content-length", "transfer-encoding") for name, _ in pairs):
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


# --- the reader ---------------------------------------------------------------------


class Reader:
    """What one socket received: ``buffer`` not yet handed out, ``raw`` everything
    so far, ``end`` "open", "close" (FIN) or "reset" (RST).  Reads use the
    socket's timeout; a server that sends nothing in time raises ``TimeoutError``."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        # bytearrays: a reply of megabytes arrives in many small recv()s.
        self.buffer = bytearray()
        self._raw = bytearray()
        self.end = "open"

    @property
    def raw(self) -> bytes:
        return bytes(self._raw)

    def fill(self) -> bool:
        """One recv() into the buffer; False once the server has ended the connection."""
        if self.end != "open":
            return False
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            self.end = "reset"
            return False
        if not chunk:
            self.end = "close"
            return False
        self.buffer += chunk
        self._raw += chunk
        return True

    def _take(self, size: int | None = None) -> bytes:
        size = len(self.buffer) if size is None else size
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def head(self) -> bytes | None:
        """Up to the blank line (without it); None if the connection ends first."""
        while b"\r\n\r\n" not in self.buffer:
            if not self.fill():
                return None
        head = self._take(self.buffer.index(b"\r\n\r\n"))
        del self.buffer[:4]
        return head

    def exactly(self, size: int) -> bytes:
        """``size`` bytes, fewer only if the connection ends first."""
        while len(self.buffer) < size and self.fill():
            pass
        return self._take(size)

    def chunk(self) -> bytes:
        """What is buffered, else the next bytes to arrive (one recv); b"" once ended."""
        if not self.buffer:
            self.fill()
        return self._take()

    def rest(self) -> bytes:
        """Everything until the server ends the connection."""
        while self.fill():
            pass
        return self._take()


@dataclass
class Reply:
    version: str
    interim: list[int]
    status: int | None  # None: no status line (nothing, or bytes that are not HTTP)
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes  # everything read, for faults and 600
    end: str  # "open", "close" (FIN) or "reset" (RST)

    def header(self, name: str) -> str | None:
        found = [v for k, v in self.headers if k.lower() == name.lower()]
        return found[0] if found else None

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


def read_reply(reader: Reader, method: str) -> Reply:
    """The next reply: interim 1xx codes, the final head, its body (by Content-Length,
    or until close without one).  Bytes that are not HTTP are read to the end."""
    interim: list[int] = []
    while True:
        head = reader.head()
        if head is None or not head.startswith(b"HTTP/1."):
            reader.rest()
            return Reply("", interim, None, "", [], b"", reader.raw, reader.end)
        line, *lines = head.decode("latin-1").split("\r\n")
        version, status_text, reason = (line.split(" ", 2) + [""])[:3]
        status = int(status_text)
        headers = []
        for item in lines:
            name, sep, value = item.partition(":")
            if not sep:  # the "malformed" fault: a line that is not a header
                reader.rest()
                return Reply(version, interim, status, reason, headers, b"", reader.raw, reader.end)
            headers.append((name, value.strip(" \t")))  # OWS only: str.strip() would eat 0x85
        if 100 <= status < 200 and status != 101:
            interim.append(status)
            continue
        reply = Reply(version, interim, status, reason, headers, b"", reader.raw, reader.end)
        length = reply.header("Content-Length")
        if method == "HEAD" or status in (101, 204, 304):
            pass
        elif length is not None:
            reply.body = reader.exactly(int(length))
        else:
            reply.body = reader.rest()  # RFC 9112 §6.3: no length, read until close
        reply.raw, reply.end = reader.raw, reader.end
        return reply


HEALTH = b"GET /__mockstatus/health HTTP/1.1\r\nHost: localhost\r\n\r\n"


def send(server, method: str, target: str, headers: Headers = (), body: bytes = b"", *, fault: bool = False) -> Reply:
    """One request on a new connection; then prove the connection was neither dropped
    nor left out of step: a reply that keeps it must be followed by a working one.
    For a fault asked for, read until the server ends the connection instead."""
    with connect(server, timeout=5) as sock:
        sock.sendall(request_bytes(target, method, headers=headers, body=body))
        reader = Reader(sock)
        reply = read_reply(reader, method)
        if fault:
            reader.rest()
            reply.raw, reply.end = reader.raw, reader.end
        elif reply.status is not None and reply.status >= 200 and reply.status != 101 and reply.end == "open":
            connection = (reply.header("Connection") or "").lower()
            # HTTP/1.0 (aiohttp's parser errors) closes unless it says keep-alive.
            if connection == "close" or reply.version == "HTTP/1.0" and connection != "keep-alive":
                extra = reader.rest()
                reply.end = reader.end
                if method == "HEAD" and reply.version == "HTTP/1.0" and reply.status == 400:
                    extra = b""  # a request the parser refused: it cannot know it was a HEAD, so a body follows
                assert extra == b"" and reader.end == "close", f"a closing reply must end in a FIN: {extra[:100]!r}"
            else:
                sock.sendall(HEALTH)
                follow = read_reply(reader, "GET")
                assert follow.status == 200 and b'"status":"ok"' in follow.body, (
                    f"the connection was not usable after {reply.status}: {follow.raw[-300:]!r}"
                )
        return reply


# --- the same reader, for tests that drive a socket themselves -----------------------

_readers: weakref.WeakKeyDictionary[socket.socket, Reader] = weakref.WeakKeyDictionary()


def reader(sock: socket.socket) -> Reader:
    """The socket's one ``Reader``: what it read past one reply is there for the next read."""
    if sock not in _readers:
        _readers[sock] = Reader(sock)
    return _readers[sock]


def _reading(sock: socket.socket, timeout: float) -> Reader:
    sock.settimeout(timeout)
    return reader(sock)


def _raise_if_reset(found: Reader) -> None:
    # A reset where a complete head or body was expected is an error, as recv() makes it;
    # only read_to_end and read_until_close take a reset as an answer.
    if found.end == "reset":
        raise ConnectionResetError(f"connection reset by the server after {found.raw[-200:]!r}")


def read_head(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """One status line and header block, up to and with the blank line; if the server
    closes first, what came before the close (b"" for nothing)."""
    found = _reading(sock, timeout)
    head = found.head()
    if head is None:
        _raise_if_reset(found)
        return found.rest()
    return head + b"\r\n\r\n"


def read_exactly(sock: socket.socket, size: int, timeout: float = 5.0) -> bytes:
    """Exactly ``size`` bytes (fewer only if the server closes first)."""
    found = _reading(sock, timeout)
    data = found.exactly(size)
    if len(data) < size:
        _raise_if_reset(found)
    return data


def read_chunk(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """The next bytes to arrive, as one recv() got them (or what was left buffered)."""
    found = _reading(sock, timeout)
    data = found.chunk()
    if not data:
        _raise_if_reset(found)
    return data


def read_response(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, bytes]:
    """One response as (head, body): the head byte-exact, the body by its Content-Length.

    Whatever follows the response stays with the socket's reader for the next read.
    """
    head = read_head(sock, timeout)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, read_exactly(sock, length, timeout)


def read_to_end(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, str]:
    """Everything until the server ends the connection, and how: "close" (FIN) or "reset" (RST).

    A server that keeps the connection open fails with ``TimeoutError``.
    """
    found = _reading(sock, timeout)
    return found.rest(), found.end


def read_until_close(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything until the server ends the connection, by a FIN or a reset alike."""
    return read_to_end(sock, timeout)[0]


def exchange(server, raw: bytes, timeout: float = 5.0) -> bytes:
    """Send raw request bytes on a new connection; return all bytes until close.

    The request must make the server close (``Connection: close``, HTTP/1.0, or
    a closing reply).  It does not half-close after sending: aiohttp takes a
    client's FIN as the client leaving and cancels the reply, so nothing
    would come back.
    """
    with connect(server, timeout) as sock:
        sock.sendall(raw)
        return read_until_close(sock, timeout)


def h11_responses(sock: socket.socket, request: h11.Request, body: bytes = b"", timeout: float = 5.0):
    """Send one request with h11 and collect (interim responses, final response, body)."""
    conn = h11.Connection(h11.CLIENT)
    found = _reading(sock, timeout)
    sock.sendall(conn.send(request))
    if body:
        sock.sendall(conn.send(h11.Data(data=body)))
    sock.sendall(conn.send(h11.EndOfMessage()))
    interim, final, data = [], None, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            chunk = found.chunk()
            if not chunk:
                _raise_if_reset(found)
            conn.receive_data(chunk)  # b"": the server closed, which h11 must be told
            continue
        if isinstance(event, h11.InformationalResponse):
            interim.append(event)
        elif isinstance(event, h11.Response):
            final = event
        elif isinstance(event, h11.Data):
            data += event.data
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return interim, final, data


def http_request(server, target: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None):
    """One request with http.client, which sends the target as given (no
    re-quoting, like curl); returns (status, headers, body bytes)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


# --- resources a server holds (this process's own, for in-thread servers) ---------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settle(measure, target, timeout: float = 3.0):
    """Wait until ``measure()`` falls back to ``target``; return its last value."""
    deadline = time.monotonic() + timeout
    value = measure()
    while value > target and time.monotonic() < deadline:
        time.sleep(0.02)
        value = measure()
    return value


def free_port() -> int:
    """A loopback port nothing listens on now (for a server a test starts itself)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
