"""The header-less "600": body bytes with no status line and no headers, then close.

An HTTP/0.9-style reply (proxies report it as "600 Unparseable Response
Headers"): "源站没有返回响应头部，只返回实体内容".
"""

from __future__ import annotations

import pytest
from wire import connect, read_to_end, request_bytes

CUSTOM = {
    "codes": {
        799: {"reason": "Raw Bytes", "kind": "headerless", "body": "just bytes, no head\n"},
        798: {"reason": "Raw Default", "kind": "headerless"},
    }
}


def test_600_is_exactly_the_catalog_body_then_close(mockstatus):
    body = mockstatus.catalog.get(600).body
    assert body == "源站没有返回响应头部，只返回实体内容\n"
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/600"))
        data, how = read_to_end(sock)
    assert data == body.encode("utf-8")  # no status line, no header, nothing else
    assert how == "close"  # a clean FIN after the body, not a reset


@pytest.mark.parametrize(
    "headers",
    [{}, {"Accept": "application/json"}, {"Accept": "text/html"}, {"Accept-Language": "zh"}],
    ids=["plain", "accept-json", "accept-html", "accept-zh"],
)
def test_600_body_does_not_depend_on_negotiation(mockstatus, headers):
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/600", headers=headers))
        assert read_to_end(sock) == (mockstatus.catalog.get(600).body.encode(), "close")


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD", "DELETE"])
def test_600_for_every_method(mockstatus, method):
    # HTTP/0.9 has no HEAD: without a head there is nothing to say "no body" with.
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/600", method=method, body=b"x" if method == "POST" else b""))
        assert read_to_end(sock) == (mockstatus.catalog.get(600).body.encode(), "close")


def test_600_to_an_http10_client(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/600", version="1.0"))
        assert read_to_end(sock) == (mockstatus.catalog.get(600).body.encode(), "close")


def test_600_closes_so_a_second_request_on_the_socket_gets_nothing(mockstatus):
    with connect(mockstatus) as sock:
        # Two requests in one packet: only the first is answered, then the connection ends.
        sock.sendall(request_bytes("/status/600") + request_bytes("/status/200"))
        data, how = read_to_end(sock)
    assert data == mockstatus.catalog.get(600).body.encode()
    assert b"HTTP/1.1" not in data and how == "close"


def test_600_body_option_replaces_the_bytes(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/600?body=raw%20only"))
        assert read_to_end(sock) == (b"raw only", "close")


def test_600_after_an_interim_response(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/100?then=600"))
        data, how = read_to_end(sock)
    assert data == b"HTTP/1.1 100 Continue\r\n\r\n" + mockstatus.catalog.get(600).body.encode()
    assert how == "close"


def test_600_in_a_sequence(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/sequence/headerless/600,200"))
        assert read_to_end(sock) == (mockstatus.catalog.get(600).body.encode(), "close")


def test_custom_code_with_kind_headerless_from_a_config_overlay(make_mockstatus):
    server = make_mockstatus(CUSTOM)
    assert server.catalog.get(799).kind == "headerless"
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/799"))
        assert read_to_end(sock) == (b"just bytes, no head\n", "close")
    # Without a body in the catalog: the plain-text body "<code> <reason>\n".
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/798"))
        assert read_to_end(sock) == (b"798 Raw Default\n", "close")
    assert [e["status"] for e in server.requests()] == [799, 798]


def test_overlay_can_turn_600_into_a_normal_reply(make_mockstatus):
    server = make_mockstatus({"codes": {600: {"kind": "normal"}}})
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/600", headers={"Connection": "close"}))
        data, _ = read_to_end(sock)
    assert data.startswith(b"HTTP/1.1 600 Unparseable Response Headers\r\n")
    assert data.endswith(server.catalog.get(600).body.encode())
