"""Raw-socket helpers for tests that need the exact bytes on the wire."""

from __future__ import annotations

import http.client
import socket
import time

import h11


def connect(server, timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def request_bytes(path: str, method: str = "GET", version: str = "1.1", headers: dict | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: mockstatus.test"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k in (headers or {})):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def read_until_close(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


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


def read_head(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Read one status line and header block (up to the blank line)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def h11_responses(sock: socket.socket, request: h11.Request, body: bytes = b"", timeout: float = 5.0):
    """Send one request with h11 and collect (interim responses, final response, body)."""
    conn = h11.Connection(h11.CLIENT)
    sock.settimeout(timeout)
    sock.sendall(conn.send(request))
    if body:
        sock.sendall(conn.send(h11.Data(data=body)))
    sock.sendall(conn.send(h11.EndOfMessage()))
    interim, final, data = [], None, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
            continue
        if isinstance(event, h11.InformationalResponse):
            interim.append(event)
        elif isinstance(event, h11.Response):
            final = event
        elif isinstance(event, h11.Data):
            data += event.data
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            return interim, final, data


def read_exactly(sock: socket.socket, size: int, timeout: float = 5.0) -> bytes:
    """Exactly ``size`` bytes (fewer only if the server closes first)."""
    sock.settimeout(timeout)
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def read_response(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, bytes]:
    """One response as (head, body): the head byte-exact, the body by its Content-Length.

    Reads nothing past the response, so the next read starts at the next one.
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

    Unlike ``read_until_close`` a reset is reported, not folded into a close;
    a server that keeps the connection open fails with ``TimeoutError``.
    """
    sock.settimeout(timeout)
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return b"".join(chunks), "reset"
        if not chunk:
            return b"".join(chunks), "close"
        chunks.append(chunk)


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
