"""101 Switching Protocols: a real WebSocket echo, and a raw byte echo for any other Upgrade."""

from __future__ import annotations

import asyncio
import base64
import os
import random
import socket
import threading
import time

import aiohttp
import pytest
import websockets.exceptions
import websockets.sync.client
from wire import connect, read_exactly, read_head, read_response, read_to_end, read_until_close, request_bytes

from mockstatus.heads import SERVER
from mockstatus.wire import ECHO_HIGH_WATER

MESSAGES = ["hello", "", "héllo wörld ✓", "x" * 70_000]
BINARY = [b"\x00\x01\x02\xff", b"", os.urandom(70_000)]


def switched(token: str) -> bytes:
    return f"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {token}\r\nServer: {SERVER}\r\n\r\n".encode()


def unasked(token: str) -> bytes:
    """The 101 to a request that asked for no switch: it says the connection closes."""
    return switched(token).replace(b"Connection: Upgrade\r\n", b"Connection: Upgrade, close\r\n")


def ws_url(server, path: str = "/status/101") -> str:
    return "ws" + server.url(path)[len("http") :]


def tagged(path: str = "/status/101") -> tuple[str, str]:
    """The path with a unique ``?seed=`` (harmless here), to find this test's journal entries:
    a session an earlier test left may be journaled late, when its connection ends."""
    tag = f"seed={random.randrange(10**12)}"
    return f"{path}?{tag}", tag


def journal(server, tag: str, want: int = 1, timeout: float = 3.0) -> list[dict]:
    """This test's entries; a session is journaled when it ends, so wait for ``want`` of them."""
    deadline = time.monotonic() + timeout
    while True:
        found = [entry for entry in server.requests() if entry["query"] == tag]
        if len(found) >= want or time.monotonic() > deadline:
            return found
        time.sleep(0.01)


# --- WebSocket (RFC 6455) ---------------------------------------------------------


async def test_websocket_echo_with_aiohttp_client(mockstatus):
    path, tag = tagged()
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(mockstatus.url(path)) as ws:
            for text in MESSAGES:
                await ws.send_str(text)
                message = await ws.receive(timeout=5)
                assert (message.type, message.data) == (aiohttp.WSMsgType.TEXT, text)
            for data in BINARY:
                await ws.send_bytes(data)
                message = await ws.receive(timeout=5)
                assert (message.type, message.data) == (aiohttp.WSMsgType.BINARY, data)
            assert await ws.close() is True
            assert ws.close_code == aiohttp.WSCloseCode.OK  # the server answered our close frame
    entries = await asyncio.to_thread(journal, mockstatus, tag)
    assert [(entry["status"], entry["client_gone"]) for entry in entries] == [(101, False)]


def test_websocket_echo_with_the_websockets_library(mockstatus):
    with websockets.sync.client.connect(ws_url(mockstatus), max_size=None) as ws:
        assert ws.response.status_code == 101
        assert ws.response.headers["Upgrade"].lower() == "websocket"
        for text in MESSAGES:
            ws.send(text)
            assert ws.recv(timeout=5) == text
        for data in BINARY:
            ws.send(data)
            assert ws.recv(timeout=5) == data
        ws.close()
        # A clean close: the server's close frame came back with 1000.
        assert ws.close_code == 1000
        assert ws.protocol.close_rcvd is not None and ws.protocol.close_rcvd.code == 1000
        with pytest.raises(websockets.exceptions.ConnectionClosedOK):
            ws.recv(timeout=1)


def test_websocket_through_a_sequence_step(mockstatus):
    with websockets.sync.client.connect(ws_url(mockstatus, "/sequence/ws/101,200")) as ws:
        ws.send("step one")
        assert ws.recv(timeout=5) == "step one"


WS_HEADERS = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}
KEY = base64.b64encode(b"0123456789abcdef").decode()


@pytest.mark.parametrize(
    "method, headers, status, named",
    [
        ("GET", {**WS_HEADERS}, 400, "Sec-WebSocket-Key ''"),
        ("GET", {**WS_HEADERS, "Sec-WebSocket-Key": "short"}, 400, "Sec-WebSocket-Key 'short'"),
        ("GET", {**WS_HEADERS, "Sec-WebSocket-Key": base64.b64encode(b"15 bytes only!!").decode()}, 400, "Sec-WebSocket-Key"),
        ("GET", {**WS_HEADERS, "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "8"}, 426, "Sec-WebSocket-Version '8'"),
        ("GET", {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": KEY}, 426, "Sec-WebSocket-Version ''"),
        ("GET", {"Upgrade": "websocket", "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13"}, 400, "Connection ''"),
        ("POST", {**WS_HEADERS, "Sec-WebSocket-Key": KEY, "Content-Length": "0"}, 400, "method POST"),
    ],
    ids=["bad/no-key", "bad/short-key", "bad/15-byte-key", "bad/version-8", "bad/no-version", "bad/no-connection", "bad/post"],
)  # fmt: skip
def test_invalid_websocket_handshake_gets_4xx_naming_the_problem(mockstatus, method, headers, status, named):
    path, tag = tagged()
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes(path, method=method, headers=headers))
        head, body = read_response(sock)
    reason = {400: "Bad Request", 426: "Upgrade Required"}[status]
    assert head.startswith(f"HTTP/1.1 {status} {reason}\r\n".encode()), head
    assert f"Server: {SERVER}".encode() in head  # our 4xx, not aiohttp's bare one
    text = body.decode()
    assert named in text
    assert "Sec-WebSocket-Version: 13" in text and "RFC 6455" in text  # ... and what is expected
    if status == 426:  # RFC 6455 §4.4: say which version we speak
        assert b"\r\nSec-WebSocket-Version: 13\r\n" in head
    assert [entry["status"] for entry in journal(mockstatus, tag)] == [status]


def test_valid_handshake_over_raw_socket_switches(mockstatus):
    headers = {**WS_HEADERS, "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/101", headers=headers))
        head = read_head(sock)
    assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    # RFC 6455 §1.3's worked example.
    assert b"\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in head


# --- any other Upgrade token: raw byte echo -----------------------------------------


def upgrade_request(token: str | None, path: str = "/status/101") -> bytes:
    headers = {"Connection": "Upgrade", "Upgrade": token} if token is not None else {}
    return request_bytes(path, headers=headers)


@pytest.mark.parametrize("token", ["X", "foo", "h2c", "TLS/1.2", "IRC/6.9"], ids=lambda t: f"upgrade/{t}")
def test_raw_upgrade_switches_and_echoes_bytes(mockstatus, token):
    payloads = [b"hello", bytes(range(256)), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\r\n\r\n", os.urandom(100_000)]
    path, tag = tagged()
    with connect(mockstatus) as sock:
        sock.sendall(upgrade_request(token, path))
        assert read_exactly(sock, len(switched(token))) == switched(token)
        for payload in payloads:  # echoed as bytes: nothing is parsed as HTTP any more
            sock.sendall(payload)
            assert read_exactly(sock, len(payload)) == payload
        sock.shutdown(socket.SHUT_WR)
        assert read_until_close(sock) == b""  # the client closed: so does the server
    assert [(e["status"], e["client_gone"]) for e in journal(mockstatus, tag)] == [(101, False)]


def test_raw_upgrade_takes_the_first_protocol_listed(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(upgrade_request("foo/2, bar"))
        assert read_head(sock) == switched("foo/2")


def test_raw_upgrade_bad_token_gets_400(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(upgrade_request("foo bar"))
        head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"'foo bar'" in body and b"protocol name" in body


def test_bytes_sent_in_the_same_packet_as_the_upgrade_request_are_echoed(mockstatus):
    """aiohttp's parser drops the rest of a read after a non-WebSocket upgrade
    request; WireRequestHandler keeps it (RFC 9110 §7.8 allows sending it)."""
    with connect(mockstatus) as sock:
        early = b"early bytes\r\n\r\nGET / HTTP/1.1\r\n\r\n"
        sock.sendall(upgrade_request("foo") + early)
        assert read_exactly(sock, len(switched("foo")) + len(early)) == switched("foo") + early


def test_bytes_behind_an_upgrade_request_split_across_packets(mockstatus):
    raw = upgrade_request("foo") + b"early"
    cut = raw.index(b"\r\n\r\n") + 2  # the blank line straddles two packets
    with connect(mockstatus) as sock:
        sock.sendall(raw[:cut])
        time.sleep(0.05)
        sock.sendall(raw[cut:])
        assert read_exactly(sock, len(switched("foo")) + 5) == switched("foo") + b"early"


def test_request_pipelined_behind_a_declined_upgrade_is_answered(mockstatus):
    """/status/200 declines `Upgrade: foo`; the request behind it in the same packet still gets its reply."""
    with connect(mockstatus) as sock:
        sock.sendall(upgrade_request("foo", "/status/200") + request_bytes("/status/201"))
        first, body1 = read_response(sock, timeout=2)
        second, body2 = read_response(sock, timeout=2)
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and body1 == b"200 OK\n"
    assert second.startswith(b"HTTP/1.1 201 Created\r\n") and body2 == b"201 Created\n"


def test_no_upgrade_header_gets_the_catalogs_101_and_then_the_close(mockstatus):
    """Nobody asked to switch: the catalog's 101, then a FIN; nothing is echoed or parsed."""
    token = mockstatus.catalog.get(101).header("Upgrade")
    assert token  # the catalog names one
    with connect(mockstatus) as sock:
        sock.sendall(upgrade_request(None))
        assert read_to_end(sock) == (unasked(token), "close")


def test_no_upgrade_header_with_a_request_pipelined_behind_is_closed_not_echoed(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(upgrade_request(None) + request_bytes("/status/200"))
        received = read_until_close(sock)
    assert received.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    assert b"GET /status/200" not in received and b"200 OK" not in received


def test_default_token_comes_from_a_config_overlay(make_mockstatus):
    server = make_mockstatus({"codes": {101: {"headers": {"Upgrade": "my-proto/1"}}}})
    with connect(server) as sock:
        sock.sendall(upgrade_request(None))
        assert read_to_end(sock) == (unasked("my-proto/1"), "close")


def test_custom_code_with_kind_upgrade(make_mockstatus):
    server = make_mockstatus({"codes": {299: {"reason": "Switch Here", "kind": "upgrade"}}})
    with connect(server) as sock:
        sock.sendall(upgrade_request("foo", "/status/299"))
        assert read_head(sock) == switched("foo")
        sock.sendall(b"echo?")
        assert read_exactly(sock, 5) == b"echo?"


def test_idle_raw_connection_is_closed_after_the_idle_timeout(make_mockstatus):
    server = make_mockstatus(upgrade_idle_timeout=0.2)
    with connect(server) as sock:
        sock.sendall(upgrade_request("foo"))
        assert read_head(sock) == switched("foo")
        # Traffic keeps it open: 0.3 s in all, never idle for 0.2 s.
        for _ in range(3):
            time.sleep(0.1)
            sock.sendall(b"tick")
            assert read_exactly(sock, 4) == b"tick"
        started = time.monotonic()
        assert read_until_close(sock, timeout=3) == b""  # then idle: the server closes
        assert time.monotonic() - started >= 0.15
    assert [entry["status"] for entry in journal(server, "")] == [101]


def test_http10_upgrade_is_refused(mockstatus):
    path, tag = tagged()
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes(path, version="1.0", headers={"Upgrade": "foo", "Connection": "Upgrade"}))
        data = read_until_close(sock)
    assert data.startswith(b"HTTP/1.0 400 Bad Request\r\n")
    assert data.endswith(b"101 Switching Protocols needs an HTTP/1.1 request\n")
    assert [entry["status"] for entry in journal(mockstatus, tag)] == [400]


def test_other_paths_ignore_upgrade_and_keep_alive(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(upgrade_request("foo", "/status/204"))
        assert read_head(sock).startswith(b"HTTP/1.1 204 No Content\r\n")
        sock.sendall(request_bytes("/status/200"))
        assert read_response(sock)[1] == b"200 OK\n"


def test_echo_to_a_client_that_does_not_read_stays_bounded(mockstatus):
    """The echo stops reading while ~1 MiB waits for the client, then carries on."""
    payload = os.urandom(8 << 20)
    with connect(mockstatus, timeout=20) as sock:
        sock.sendall(upgrade_request("foo"))
        assert read_head(sock) == switched("foo")
        sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
        sender.start()
        time.sleep(0.3)  # the client reads nothing for a while

        def queued():
            return [
                c.transport.get_write_buffer_size() for c in mockstatus._server.runner.server.connections if c.transport
            ]

        assert max(mockstatus.call(queued)) <= ECHO_HIGH_WATER + (1 << 18)  # bounded: not the 8 MiB sent
        assert read_exactly(sock, len(payload), timeout=20) == payload  # then every byte comes back
        sender.join(5)
        assert not sender.is_alive()


def test_upgrade_behind_a_pipelined_request_keeps_its_bytes(mockstatus):
    """Two requests and the first raw bytes in one packet: a reply, the switch, the echo."""
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/204") + upgrade_request("foo") + b"early")
        assert read_head(sock).startswith(b"HTTP/1.1 204 No Content\r\n")
        assert read_exactly(sock, len(switched("foo")) + 5) == switched("foo") + b"early"
