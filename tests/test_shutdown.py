"""Graceful shutdown (issue #4), on a real ``mockstatus`` process.

SIGTERM: stop accepting at once, let replies in flight finish for up to
``--shutdown-grace``, then close what is left and exit 0.
"""

from __future__ import annotations

import socket
import time

from wire import read_chunk, read_head, read_response, read_to_end, request_bytes


def test_sigterm_lets_a_short_delayed_reply_finish(process):
    server = process()
    with server.connect() as sock:
        sent = time.monotonic()
        sock.sendall(request_bytes("/status/200?delay=300ms"))
        time.sleep(0.1)  # the request is in its delay now
        server.sigterm()
        head, body = read_response(sock)
        answered = time.monotonic()
    code, exited = server.wait()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and body == b"200 OK\n"
    assert answered - sent >= 0.3  # the delay was not cut short
    assert code == 0
    assert exited >= answered - 0.05  # exited after answering, not before


def test_sigterm_lets_a_slow_body_finish(process):
    """The head proves the reply is in flight before the signal; the body still comes."""
    server = process()
    with server.connect() as sock:
        sent = time.monotonic()
        sock.sendall(request_bytes("/status/200?body_delay=250ms"))
        head = read_head(sock)
        server.sigterm()
        body = read_chunk(sock)
        body_at = time.monotonic()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert body == b"200 OK\n"
    assert body_at - sent >= 0.25
    assert server.wait()[0] == 0


def test_sigterm_closes_a_long_delay_after_the_grace(process):
    server = process("--shutdown-grace", "0.2")
    with server.connect() as sock:
        sock.sendall(request_bytes("/status/200?delay=30s"))
        time.sleep(0.1)  # the request is in its delay now
        signalled = server.sigterm()
        rest, how = read_to_end(sock, timeout=10)
        closed = time.monotonic()
    code, exited = server.wait()
    assert code == 0
    assert rest == b"" and how in ("close", "reset")  # no reply: the connection was closed
    assert closed - signalled >= 0.19  # it had its grace (timers may fire ~1 ms early)
    assert exited - signalled < 0.2 + 1.5  # about the grace, not the 30 s delay (nor two graces)
    assert "closed 1 reply still running after the 0.2s grace" in server.proc.stderr.read()


def test_the_grace_is_spent_once_not_twice(process):
    """aiohttp's runner alone waited its shutdown_timeout twice for a sleeping handler (1.2 s here)."""
    server = process("--shutdown-grace", "0.6")
    with server.connect() as sock:
        sock.sendall(request_bytes("/status/200?delay=30s"))
        time.sleep(0.1)
        signalled = server.sigterm()
        read_to_end(sock, timeout=10)
    code, exited = server.wait()
    assert code == 0
    assert 0.59 <= exited - signalled < 1.0


def test_sigterm_with_grace_zero_exits_at_once(process):
    """aiohttp reads a shutdown_timeout of 0 as "no timeout": it waited for the whole delay."""
    server = process("--shutdown-grace", "0")
    with server.connect() as sock:
        sock.sendall(request_bytes("/status/200?delay=30s"))
        time.sleep(0.1)
        signalled = server.sigterm()
        rest, _ = read_to_end(sock, timeout=10)
    code, exited = server.wait()
    assert (code, rest) == (0, b"")
    assert exited - signalled < 1.5


def test_new_connections_are_refused_after_sigterm(process):
    server = process()
    with server.connect() as held:
        held.sendall(request_bytes("/status/200?delay=1s"))  # keeps the process in its grace
        time.sleep(0.1)
        server.sigterm()
        deadline = time.monotonic() + 3
        refused = False
        while time.monotonic() < deadline and not refused:
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
                time.sleep(0.01)
            except ConnectionRefusedError:
                refused = True
                still_running = server.proc.poll() is None
        assert refused and still_running  # refused while the old reply was still being served
        head, _ = read_response(held)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert server.wait()[0] == 0


def test_idle_keep_alive_connection_is_closed_on_sigterm(process):
    server = process()
    with server.connect() as sock:
        sock.sendall(request_bytes("/status/200"))
        head, _ = read_response(sock)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        signalled = server.sigterm()
        rest, how = read_to_end(sock, timeout=10)
        closed = time.monotonic()
    assert (rest, how) == (b"", "close")
    assert closed - signalled < 1.5  # not held for the 5 s default grace
    assert server.wait()[0] == 0
