"""Interim 1xx responses on the wire (RFC 9110 §15.2), byte by byte.

aiohttp cannot send a 1xx as an interim response, so mockstatus writes them to
the socket itself; these tests read the raw bytes (and h11 checks the framing).
"""

from __future__ import annotations

import re
import socket
import struct

import h11
import pytest
from wire import connect, h11_responses, read_head, read_response, read_until_close, request_bytes

STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3}) ")


def interim_bytes(code: int, reason: str, headers=()) -> bytes:
    lines = [f"HTTP/1.1 {code} {reason}\r\n", *(f"{name}: {value}\r\n" for name, value in headers), "\r\n"]
    return "".join(lines).encode("latin-1")


def header_values(head: bytes, name: str) -> list[str]:
    values = []
    for line in head.decode("latin-1").split("\r\n")[1:]:
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name.lower():
            values.append(value.strip())
    return values


def status_of(head: bytes) -> int:
    match = STATUS_LINE.match(head)
    assert match, head
    return int(match.group(1))


def test_100_continue_then_200(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/100"))
        interim, _ = read_response(sock)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert body == b"200 OK\n"


@pytest.mark.parametrize("then", [201, 302, 503, 204, 418], ids=lambda c: f"status/100?then={c}")
def test_100_then_code_has_that_codes_semantics(mockstatus, then):
    """The final reply after the interim one is exactly what /status/<then> sends."""
    info = mockstatus.catalog.get(then)
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes(f"/status/100?then={then}"))
        assert read_response(sock) == (b"HTTP/1.1 100 Continue\r\n\r\n", b"")
        head, body = read_response(sock)
        sock.sendall(request_bytes(f"/status/{then}"))
        plain_head, plain_body = read_response(sock)
    assert head.startswith(f"HTTP/1.1 {then} {info.reason}\r\n".encode())
    for name, value in info.headers:  # Location on 302, Retry-After on 503, ...
        assert value in header_values(head, name)
    dateless = [line for line in head.split(b"\r\n") if not line.startswith(b"Date:")]
    assert dateless == [line for line in plain_head.split(b"\r\n") if not line.startswith(b"Date:")]
    assert body == plain_body
    if then == 204:
        assert body == b"" and not header_values(head, "Content-Length")


def test_100_then_408_closes_after_the_final_reply(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/100?then=408"))
        data = read_until_close(sock)
    assert data.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 408 Request Timeout\r\n")
    assert b"\r\nConnection: close\r\n" in data


def test_102_heartbeats_every_interval_during_the_delay(mockstatus):
    # 102 at 0, 100 and 200 ms; the final reply at 250 ms: three heartbeats.
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/102?delay=250ms&interval=100ms"))
        heads = []
        while True:
            head, body = read_response(sock)
            heads.append(head)
            if status_of(head) >= 200:
                break
    assert heads[:-1] == [b"HTTP/1.1 102 Processing\r\n\r\n"] * 3
    assert heads[-1].startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Server-Timing: delay;dur=250\r\n" in heads[-1]
    assert body == b"200 OK\n"


def test_102_without_delay_sends_exactly_one(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/102"))
        assert read_response(sock) == (b"HTTP/1.1 102 Processing\r\n\r\n", b"")
        head, body = read_response(sock)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert body == b"200 OK\n"
        # Nothing else is pending: the next bytes are the answer to a new request.
        sock.sendall(request_bytes("/status/204"))
        assert read_head(sock).startswith(b"HTTP/1.1 204 No Content\r\n")


def test_102_heartbeats_parse_as_informational_responses_with_h11(mockstatus):
    with connect(mockstatus) as sock:
        request = h11.Request(method="GET", target="/status/102?delay=250ms&interval=100ms", headers=[("Host", "x")])
        interim, final, body = h11_responses(sock, request)
    assert [(r.status_code, r.reason) for r in interim] == [(102, b"Processing")] * 3
    assert final.status_code == 200 and body == b"200 OK\n"


def test_103_early_hints_carry_the_catalogs_link_headers(mockstatus):
    info = mockstatus.catalog.get(103)
    links = [(name, value) for name, value in info.headers if name.lower() == "link"]
    assert links, "the catalog's 103 lists Link headers"
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/103"))
        interim, _ = read_response(sock)
        head, body = read_response(sock)
    assert interim == interim_bytes(103, "Early Hints", links)
    assert interim == (
        b"HTTP/1.1 103 Early Hints\r\n"
        b"Link: </style.css>; rel=preload; as=style\r\n"
        b"Link: </app.js>; rel=preload; as=script\r\n\r\n"
    )
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and body == b"200 OK\n"


@pytest.mark.parametrize("code", [104, 150, 199], ids=lambda c: f"status/{c}")
def test_other_1xx_sends_one_interim_then_the_final(mockstatus, code):
    reason = mockstatus.catalog.get(code).reason
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes(f"/status/{code}?then=202"))
        interim, _ = read_response(sock)
        head, body = read_response(sock)
    assert interim == f"HTTP/1.1 {code} {reason}\r\n\r\n".encode()
    assert head.startswith(b"HTTP/1.1 202 Accepted\r\n")
    assert body == b"202 Accepted\n"


@pytest.mark.parametrize("code", [150, 199], ids=lambda c: f"status/{c}")
def test_other_1xx_with_h11(mockstatus, code):
    with connect(mockstatus) as sock:
        request = h11.Request(method="GET", target=f"/status/{code}", headers=[("Host", "x")])
        interim, final, body = h11_responses(sock, request)
    assert [r.status_code for r in interim] == [code]
    assert final.status_code == 200 and body == b"200 OK\n"


@pytest.mark.parametrize(
    "path", ["/status/100", "/status/102?delay=150ms&interval=50ms", "/status/103", "/status/150"],
    ids=lambda p: p.lstrip("/"),
)  # fmt: skip
def test_http10_request_gets_no_interim_response(mockstatus, path):
    """RFC 9110 §15.2: a server must not send a 1xx to an HTTP/1.0 client."""
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes(path, version="1.0"))
        data = read_until_close(sock)
    assert [int(code) for code in STATUS_LINE.findall(data)] == [200]
    assert re.match(rb"HTTP/1\.[01] 200 OK\r\n", data)
    assert data.endswith(b"\r\n\r\n200 OK\n")


@pytest.mark.parametrize(
    "path", ["/status/100", "/status/102", "/status/102?delay=120ms&interval=50ms", "/status/103", "/status/150"],
    ids=lambda p: p.lstrip("/"),
)  # fmt: skip
def test_keep_alive_after_interim_and_final(mockstatus, path):
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes(path))
        while status_of(read_response(sock)[0]) < 200:
            pass
        sock.sendall(request_bytes("/status/201"))
        head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 201 Created\r\n")
    assert body == b"201 Created\n"


# --- Expect: 100-continue (RFC 9110 §10.1.1) -----------------------------------------


@pytest.mark.parametrize(
    "path, status", [("/status/201", 201), ("/sequence/expect/202", 202), ("/no/such/route", 404)],
    ids=["status/201", "sequence/expect/202", "no/such/route"],
)  # fmt: skip
def test_expect_100_continue_is_answered_before_the_body_is_sent(mockstatus, path, status):
    body = b"hello"
    head = request_bytes(path, method="POST", headers={"Expect": "100-continue", "Content-Length": str(len(body))})
    with connect(mockstatus) as sock:
        sock.sendall(head)  # headers only: the server must answer before it gets a body
        assert read_head(sock) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        final, _ = read_response(sock)
        sock.sendall(request_bytes("/status/200"))  # and the connection stays usable
        assert read_response(sock)[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert status_of(final) == status
    if status != 404:  # the status routes read the body (after the 100) and journal it
        entry = next(e for e in mockstatus.requests() if e["path"] == path)
        assert entry["body_size"] == len(body) and entry["body"] == "hello"


def test_expect_100_continue_with_a_body_above_the_limit_gets_413_unread(mockstatus):
    limit = mockstatus.settings.max_body_size
    head = request_bytes(
        "/status/201", method="POST", headers={"Expect": "100-continue", "Content-Length": str(limit + 1)}
    )
    with connect(mockstatus) as sock:
        sock.sendall(head)  # the body is never sent: the answer must not wait for it
        head, body = read_response(sock)
        # Connection: close, then the server lingers (RFC 9112 §9.6) only until we are done.
        sock.shutdown(socket.SHUT_WR)
        assert read_until_close(sock, timeout=2) == b""
    assert head.startswith(b"HTTP/1.1 413 Content Too Large\r\n"), head
    assert b"\r\nConnection: close\r\n" in head
    assert f"{limit + 1} bytes".encode() in body and f"{limit} bytes".encode() in body


def test_expect_other_than_100_continue_gets_417(mockstatus):
    head = request_bytes("/status/201", method="POST", headers={"Expect": "teapot", "Content-Length": "0"})
    with connect(mockstatus) as sock:
        sock.sendall(head)
        head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 417 Expectation Failed\r\n")
    assert b"'teapot'" in body and b"100-continue" in body


def test_expect_100_continue_then_status_100_sends_two_interims(mockstatus):
    """The 100 that answers Expect, then the one /status/100 always sends, then 200."""
    with connect(mockstatus) as sock:
        sock.sendall(
            request_bytes("/status/100", method="POST", headers={"Expect": "100-continue", "Content-Length": "2"})
        )
        assert read_head(sock) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hi")
        assert read_response(sock) == (b"HTTP/1.1 100 Continue\r\n\r\n", b"")
        assert read_response(sock)[0].startswith(b"HTTP/1.1 200 OK\r\n")


def test_interim_then_client_gone_leaves_the_server_answering(mockstatus):
    # A client that leaves during the 102 heartbeats must not break the server.
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/102?delay=300ms&interval=50ms"))
        assert read_head(sock) == b"HTTP/1.1 102 Processing\r\n\r\n"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/__mockstatus/health"))
        assert read_response(sock)[0].startswith(b"HTTP/1.1 200 OK\r\n")
