"""The connection layer (mockstatus/protocol.py), judged from what it received itself.

Pipelining, upgrade tails, large bodies with requests behind them, and the
body timeout: each case ends in a defined answer and a defined end of the
connection, whatever aiohttp's parser buffered or paused on.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from wire import connect, read_exactly, read_head, read_response, read_to_end, request_bytes

pytestmark = pytest.mark.usefixtures("no_server_errors")

HEADER_TIMEOUT = 0.3
BODY_TIMEOUT = 0.3


@pytest.fixture
def quick(make_mockstatus):
    """A server whose header and body timeouts are short enough to wait for here."""
    return make_mockstatus(header_timeout=HEADER_TIMEOUT, body_timeout=BODY_TIMEOUT)


def read_replies(sock: socket.socket, count: int) -> list[bytes]:
    return [read_response(sock)[0].split(b"\r\n", 1)[0] for _ in range(count)]


def test_1000_pipelined_requests_then_idle_end_in_a_silent_close(quick):
    """Every request answered in order; then, idle, the connection closes without a 408."""
    codes = [200 + (index % 7) for index in range(1000)]
    raw = b"".join(request_bytes(f"/status/{code}") for code in codes)
    with connect(quick, timeout=10) as sock:
        sock.sendall(raw)
        lines = read_replies(sock, len(codes))
        rest, how = read_to_end(sock, timeout=5)
    assert [int(line.split()[1]) for line in lines] == codes
    assert rest == b"" and how == "close"  # silent: no unsolicited 408


def test_upgrade_behind_40_pipelined_requests_echoes_its_bytes(quick):
    raw = b"".join(request_bytes("/status/204") for _ in range(40))
    raw += request_bytes("/status/101", headers={"Connection": "Upgrade", "Upgrade": "foo"}) + b"right behind"
    with connect(quick) as sock:
        sock.sendall(raw)
        lines = read_replies(sock, 40)
        head = read_head(sock)
        echoed = read_exactly(sock, len(b"right behind"))
        sock.sendall(b"and later")
        later = read_exactly(sock, len(b"and later"))
    assert lines == [b"HTTP/1.1 204 No Content"] * 40
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n") and b"\r\nUpgrade: foo\r\n" in head
    assert echoed == b"right behind" and later == b"and later"


def test_900k_post_with_a_get_behind_it_then_idle_ends_in_a_silent_close(quick):
    body = b"x" * 900_000
    raw = request_bytes("/status/201", method="POST", body=body) + request_bytes("/status/202")
    with connect(quick, timeout=10) as sock:
        sock.sendall(raw)
        lines = read_replies(sock, 2)
        rest, how = read_to_end(sock, timeout=5)
    assert lines == [b"HTTP/1.1 201 Created", b"HTTP/1.1 202 Accepted"]
    assert rest == b"" and how == "close"
    assert quick.requests(path="/status/201")[-1]["body_size"] == len(body)


def test_chunked_body_broken_after_a_pause_gets_400_and_a_close(quick):
    """The handler is already reading the body when its framing breaks: 400 naming it, then close."""
    with connect(quick) as sock:
        sock.sendall(
            request_bytes("/status/201", method="POST", headers={"Transfer-Encoding": "chunked"}) + b"5\r\nhello\r\n"
        )
        time.sleep(0.1)  # the handler has started on the body
        began = time.monotonic()
        sock.sendall(b"zz\r\n")  # not a chunk size
        head, body = read_response(sock)
        rest, how = read_to_end(sock)
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"\r\nConnection: close\r\n" in head
    assert b"Invalid character in chunk size 'zz'" in body
    assert rest == b"" and how == "close"
    assert time.monotonic() - began < BODY_TIMEOUT


def test_stalled_body_gets_408_within_the_body_timeout(quick):
    with connect(quick) as sock:
        sock.sendall(request_bytes("/status/201", method="POST", headers={"Content-Length": "10"}) + b"hello")
        began = time.monotonic()
        head, body = read_response(sock)
        waited = time.monotonic() - began
        rest, how = read_to_end(sock)
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"--body-timeout" in body
    assert rest == b"" and how == "close"
    assert BODY_TIMEOUT * 0.8 <= waited < BODY_TIMEOUT + 2


def test_body_timeout_shorter_than_the_header_timeout_fires_on_time(make_mockstatus):
    """The body's deadline comes before the header timeout armed when the connection
    went idle: the stall is answered at the body timeout, not at the later one."""
    server = make_mockstatus(header_timeout=5, body_timeout=BODY_TIMEOUT)
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/201", method="POST", headers={"Content-Length": "10"}) + b"hello")
        began = time.monotonic()
        head, _ = read_response(sock)
        waited = time.monotonic() - began
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert BODY_TIMEOUT * 0.8 <= waited < 2


def test_header_timeout_starts_when_a_long_reply_is_done(quick):
    """No timeout runs while a reply is held (here longer than the header timeout):
    the connection then gets the whole header timeout for its next request."""
    with connect(quick) as sock:
        sock.sendall(request_bytes("/status/200?delay=500ms"))
        head, _ = read_response(sock)
        done = time.monotonic()
        time.sleep(HEADER_TIMEOUT / 2)
        sock.sendall(request_bytes("/status/204"))
        second, _ = read_response(sock)
        rest, how = read_to_end(sock, timeout=5)
        idle = time.monotonic() - done
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and second.startswith(b"HTTP/1.1 204 No Content\r\n")
    assert rest == b"" and how == "close"
    assert HEADER_TIMEOUT * 1.3 <= idle < HEADER_TIMEOUT + 2


def test_slow_body_that_keeps_coming_is_not_cut(quick):
    """The body timeout is the longest pause between bytes, not a deadline for the whole body."""
    with connect(quick) as sock:
        sock.sendall(request_bytes("/status/201", method="POST", headers={"Content-Length": "6"}))
        for byte in b"abcdef":
            time.sleep(BODY_TIMEOUT / 3)
            sock.sendall(bytes([byte]))
        head, _ = read_response(sock)
    assert head.startswith(b"HTTP/1.1 201 Created\r\n")


def test_body_timeout_zero_turns_it_off(make_mockstatus):
    server = make_mockstatus(body_timeout=0)
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/201", method="POST", headers={"Content-Length": "2"}) + b"a")
        sock.settimeout(0.4)
        with pytest.raises(TimeoutError):
            sock.recv(1)
        sock.sendall(b"b")
        head, _ = read_response(sock)
    assert head.startswith(b"HTTP/1.1 201 Created\r\n")


def test_refusal_behind_pipelined_requests_comes_after_their_replies(make_mockstatus):
    """A bad request pipelined behind good ones: they are answered first, in order, then the 400."""
    server = make_mockstatus()
    raw = (
        request_bytes("/status/200?delay=100ms")
        + request_bytes("/status/202")
        + b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    with connect(server) as sock:
        sock.sendall(raw)
        lines = read_replies(sock, 3)
        rest, how = read_to_end(sock)
    assert lines == [b"HTTP/1.1 200 OK", b"HTTP/1.1 202 Accepted", b"HTTP/1.1 400 Bad Request"]
    assert rest == b"" and how == "close"


def test_after_a_detach_nothing_aiohttp_writes_reaches_the_socket(make_mockstatus):
    """A raw reply owns the socket: the header-less 600 is its body bytes, then a close, nothing else."""
    server = make_mockstatus()
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/600?body=raw") + request_bytes("/status/200"))
        data, how = read_to_end(sock)
    assert data == b"raw" and how == "close"


def test_the_parser_in_use_is_the_one_the_environment_asks_for():
    """.ci/run repeats the wire tests with aiohttp's pure-Python parser: prove which one ran."""
    from aiohttp import http_parser

    pure = os.environ.get("AIOHTTP_NO_EXTENSIONS", "") not in ("", "0")
    assert (http_parser.HttpRequestParser is http_parser.HttpRequestParserPy) == pure


def test_a_repeated_head_is_answered_like_the_first_each_time_it_is_sent(make_mockstatus):
    """A head sent again byte for byte (as clients do) gets the same answer every time,
    alone or behind replies still pending, and a refused head is refused every time."""
    server = make_mockstatus()
    plain = request_bytes("/status/203")
    refused = b"GET /status/200 HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n"
    with connect(server) as sock:
        for _ in range(3):
            sock.sendall(plain)
            assert read_replies(sock, 1) == [b"HTTP/1.1 203 Non-Authoritative Information"]
        sock.sendall(plain * 5)  # each one read while the one before may still be pending
        assert read_replies(sock, 5) == [b"HTTP/1.1 203 Non-Authoritative Information"] * 5
    for _ in range(2):
        with connect(server) as sock:
            sock.sendall(refused)
            head, _ = read_response(sock)
        assert head.startswith(b"HTTP/1.1 400 ")


def test_accepted_sockets_have_tcp_keepalive(make_mockstatus):
    """The Listener sets SO_KEEPALIVE itself (aiohttp's tcp_keepalive is off)."""
    server = make_mockstatus()
    listener = server._server.listener  # our own RunningServer, not aiohttp's

    def flags():
        return [
            connection.transport.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
            for connection in listener.connections
            if connection.transport is not None
        ]

    with connect(server) as sock:
        sock.sendall(request_bytes("/status/200?delay=300ms"))
        deadline = time.monotonic() + 5
        while not server.call(flags) and time.monotonic() < deadline:
            time.sleep(0.01)
        seen = server.call(flags)
        head, _ = read_response(sock)
    assert seen == [1]
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
