"""Byte-exact status lines over a raw socket.

Clients see the status line before anything else, and aiohttp would happily
write ``HTTP/1.1 799 `` (empty reason, trailing space) for a code it does not
know; these are the exact bytes for codes that are easy to get wrong: a
renamed phrase (302 Found), an unused code (306), an unofficial one (509), the
teapot and a code no catalog lists (799).
"""

from __future__ import annotations

import pytest
from wire import connect, read_head, request_bytes

from mockstatus.bodies import text_body
from mockstatus.catalog import load_catalog

CATALOG = load_catalog()
EXPECTED = {
    200: b"HTTP/1.1 200 OK\r\n",
    302: b"HTTP/1.1 302 Found\r\n",
    306: b"HTTP/1.1 306 Switch Proxy\r\n",
    418: b"HTTP/1.1 418 I'm a teapot\r\n",
    509: b"HTTP/1.1 509 Bandwidth Limit Exceeded\r\n",
    799: b"HTTP/1.1 799 Unknown\r\n",
}


@pytest.mark.parametrize("code", EXPECTED, ids=[f"status/{c}" for c in EXPECTED])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_status_line_bytes(mockstatus, code, method):
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes(f"/status/{code}", method))
        head = read_head(sock)
    assert head[: head.index(b"\r\n") + 2] == EXPECTED[code]


@pytest.mark.parametrize("code", EXPECTED, ids=[f"status/{c},{c}" for c in EXPECTED])
def test_status_line_bytes_from_a_list(mockstatus, code):
    """The weighted-choice path writes the same line as the single-code path."""
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes(f"/status/{code},{code}:2"))
        head = read_head(sock)
    assert head.startswith(EXPECTED[code])
    assert f"\r\nX-Mockstatus-Choice: {code}\r\n".encode() in head


def test_status_lines_on_one_keep_alive_connection(mockstatus):
    """Pipelined requests: each reply starts exactly where the previous one ended."""
    with connect(mockstatus) as sock:
        sock.sendall(b"".join(request_bytes(f"/status/{code}") for code in EXPECTED))
        stream = sock.makefile("rb")
        for code, line in EXPECTED.items():
            assert stream.readline() == line
            length = 0
            while (field := stream.readline()) != b"\r\n":
                if field.lower().startswith(b"content-length:"):
                    length = int(field.split(b":")[1])
            assert stream.read(length) == text_body(CATALOG.get(code)).encode()
