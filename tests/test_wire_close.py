"""Replies that end the connection: 408 (sent with Connection: close) and 444 (nothing sent)."""

from __future__ import annotations

import socket
import time

import pytest
from wire import connect, read_response, read_to_end, request_bytes


def second_request_finds_it_closed(sock: socket.socket) -> bool:
    """After the server closed: a new request gets no byte back (EOF or reset)."""
    try:
        sock.sendall(request_bytes("/status/200"))
        data, _ = read_to_end(sock, timeout=2)
    except (BrokenPipeError, ConnectionResetError):
        return True
    return data == b""


def test_408_is_sent_with_connection_close_then_the_connection_is_closed(mockstatus):
    info = mockstatus.catalog.get(408)
    assert info.kind == "close"
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/408"))
        head, body = read_response(sock)
        rest, how = read_to_end(sock)
        assert second_request_finds_it_closed(sock)
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"\r\nConnection: close\r\n" in head
    assert b"\r\nContent-Length: 20\r\n" in head and body == b"408 Request Timeout\n"
    assert (rest, how) == (b"", "close")  # nothing after the body; a FIN, not a reset


def test_408_pipelined_request_behind_it_is_not_answered(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/408") + request_bytes("/status/200"))
        data, how = read_to_end(sock)
    assert data.count(b"HTTP/1.1 ") == 1 and data.startswith(b"HTTP/1.1 408 ")
    assert how == "close"


def test_408_to_http10_client(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/408", version="1.0", headers={"Connection": "keep-alive"}))
        data, how = read_to_end(sock)
    assert data.startswith(b"HTTP/1.0 408 Request Timeout\r\n") and how == "close"
    assert b"\r\nConnection: close\r\n" in data


@pytest.mark.parametrize(
    "path", ["/status/444", "/status/200?fault=empty", "/sequence/close/444,200"], ids=lambda p: p.lstrip("/")
)
def test_444_closes_without_a_byte(mockstatus, path):
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes(path))
        assert read_to_end(sock) == (b"", "close")  # a FIN, not a reset
        assert second_request_finds_it_closed(sock)


def test_444_is_journaled(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/444"))
        read_to_end(sock)
    assert [(e["status"], e["client_gone"]) for e in mockstatus.requests(path="/status/444")] == [(444, False)]


def test_kind_close_from_a_config_overlay(make_mockstatus):
    server = make_mockstatus({"codes": {503: {"kind": "close"}, 444: {"kind": "normal"}}})
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/503"))
        head, body = read_response(sock)
        assert read_to_end(sock) == (b"", "close")
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"\r\nConnection: close\r\n" in head and b"\r\nRetry-After: 1\r\n" in head
    with connect(server) as sock:  # and 444 made normal answers and keeps the connection
        sock.sendall(request_bytes("/status/444"))
        assert read_response(sock)[0].startswith(b"HTTP/1.1 444 No Response\r\n")
        sock.sendall(request_bytes("/status/200"))
        assert read_response(sock)[1] == b"200 OK\n"


@pytest.mark.parametrize("code", [200, 201, 204, 301, 404, 418, 500, 503], ids=lambda c: f"status/{c}")
def test_normal_replies_keep_the_connection(mockstatus, code):
    with connect(mockstatus) as sock:
        for _ in range(3):
            sock.sendall(request_bytes(f"/status/{code}"))
            head, _ = read_response(sock)
            assert head.startswith(f"HTTP/1.1 {code} ".encode())
            assert b"Connection: close" not in head


def test_408_with_a_delay_still_closes(mockstatus):
    with connect(mockstatus) as sock:
        started = time.monotonic()
        sock.sendall(request_bytes("/status/408?delay=100ms"))
        data, how = read_to_end(sock)
    assert time.monotonic() - started >= 0.1
    assert data.startswith(b"HTTP/1.1 408 ") and how == "close"


@pytest.mark.parametrize("option", ["body_delay=50ms", "drip=50ms&chunks=2"], ids=["body_delay", "drip"])
def test_408_with_a_slow_body_says_close_and_closes(mockstatus, option):
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes(f"/status/408?{option}"))
        head, body = read_response(sock)
        assert read_to_end(sock) == (b"", "close")
    assert b"\r\nConnection: close\r\n" in head and body == b"408 Request Timeout\n"
