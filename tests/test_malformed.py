"""Malformed requests over a raw socket: each gets a defined answer, and the server carries on.

Bad request lines, invalid header bytes, oversized lines and headers (with the
limits from the settings), bad Content-Length, Content-Length together with
Transfer-Encoding (request smuggling), bad chunked bodies, HTTP/0.9 and the
HTTP/2 preface, a client that drips its head (the header timeout), and
connections beyond ``--max-connections``.  After each case a new connection
must still get ``/__mockstatus/health``, and the server must have logged no
error or traceback.  (The code, option and body-size errors of issue 2 are in
test_bad_input.py; the default line and field limits are there too.)
"""

from __future__ import annotations

import re
import socket
import time

import pytest
from wire import connect, read_chunk, read_head, read_response, read_to_end, request_bytes

from mockstatus import __version__

SERVER = f"Server: mockstatus/{__version__}".encode()


pytestmark = pytest.mark.usefixtures("no_server_errors")


def healthy(server) -> None:
    """The server carries on: a new connection gets its health check."""
    with connect(server) as sock:
        sock.sendall(b"GET /__mockstatus/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b'"status":"ok"' in body


def answer(server, raw: bytes, timeout: float = 5.0) -> tuple[bytes, bytes, bytes, str]:
    """Send raw bytes; return (status line, head, body, how the connection ended).

    The body is read by Content-Length; then the server must end the connection
    (these answers all close it) unless the reply keeps it alive.
    """
    with connect(server, timeout) as sock:
        sock.sendall(raw)
        head, body = read_response(sock, timeout)
        keep = b"\r\nConnection: keep-alive" in head or (
            head.startswith(b"HTTP/1.1") and b"\r\nConnection: close" not in head
        )
        if keep:
            return head.split(b"\r\n", 1)[0], head, body, "open"
        rest, how = read_to_end(sock, timeout)
        assert rest == b"", rest[:200]
        return head.split(b"\r\n", 1)[0], head, body, how


def assert_400(server, raw: bytes, *fragments: bytes, status: bytes = b"400 Bad Request") -> bytes:
    line, head, body, how = answer(server, raw)
    assert line in (b"HTTP/1.0 " + status, b"HTTP/1.1 " + status), (line, body)
    assert SERVER in head
    for fragment in fragments:
        assert fragment in body, (fragment, body)
    assert how == "close"  # a request the parser refused ends the connection
    healthy(server)
    return body


HOST = b"Host: x\r\n"

# --- request lines --------------------------------------------------------------------------

BAD_LINES = [
    ("no-target", b"GET\r\n\r\n", b"bad request line 'GET'; expected METHOD /target HTTP/1.1"),
    ("unknown-method", b"FETCH /status/200 HTTP/1.1\r\nHost: x\r\n\r\n", b"unknown method 'FETCH'"),
    ("lowercase-method", b"get /status/200 HTTP/1.1\r\nHost: x\r\n\r\n", b"unknown method 'get'"),
    (
        "junk-after-version",
        b"GET /status/200 HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        b"bad request line 'GET /status/200 HTTP/1.1 extra'; expected METHOD /target HTTP/1.1",
    ),
    (
        "space-in-target",
        b"GET /status/2 00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"bad request line 'GET /status/2 00 HTTP/1.1'",
    ),
    ("not-http", b"GET /status/200 HTXP/1.1\r\nHost: x\r\n\r\n", b"bad HTTP version 'HTXP/1.1'"),
    (
        "nul-in-target",
        b"GET /sta\x00tus/200 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"invalid character in the request target '/sta\\x00tus/200'",
    ),
    ("binary", b"\x00\x01\x02\x03\r\n\r\n", b"unknown method"),
    ("tls-client-hello", bytes.fromhex("16030100a5010000a10303") + bytes(64), b"HTTPS traffic on an HTTP port"),
    ("bare-lf", b"GET /status/200 HTTP/1.1\nHost: x\n\n", b"bare LF in 'GET /status/200 HTTP/1.1'"),
    ("bare-cr", b"GET /status/200 HTTP/1.1\rHost: x\r\n\r\n", b"bare CR in the request line"),
]


@pytest.mark.parametrize("raw,fragment", [c[1:] for c in BAD_LINES], ids=[f"400/{c[0]}" for c in BAD_LINES])
def test_bad_request_line_is_a_400_naming_it(mockstatus, raw, fragment):
    assert_400(mockstatus, raw, fragment)


def test_blank_line_before_the_request_is_ignored(mockstatus):
    # RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
    line, _, body, _ = answer(mockstatus, b"\r\nGET /status/418 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert line == b"HTTP/1.1 418 I'm a teapot"


def test_http09_request_gets_505_at_once(mockstatus):
    """A real HTTP/0.9 client sends ``GET /`` and a CRLF, nothing more, and waits."""
    began = time.monotonic()
    body = assert_400(
        mockstatus,
        b"GET /status/200\r\n",
        b"HTTP/0.9 request ('GET /status/200')",
        status=b"505 HTTP Version Not Supported",
    )
    assert time.monotonic() - began < 1.0  # not left to the header timeout
    assert b"HTTP/1.1 and HTTP/1.0" in body


def test_http09_line_with_a_blank_line_gets_505(mockstatus):
    # llhttp reads this as an HTTP/0.9 request; aiohttp alone would answer "HTTP/0.9 200 OK".
    assert_400(mockstatus, b"GET /status/200\r\n\r\n", b"HTTP/0.9", status=b"505 HTTP Version Not Supported")


def test_unknown_http_version_gets_505(mockstatus):
    # RFC 9110 §15.6.6: 505 is the answer to a major version the server does not speak.
    assert_400(
        mockstatus,
        b"GET /status/200 HTTP/9.9\r\nHost: x\r\n\r\n",
        b"HTTP version 'HTTP/9.9'",
        status=b"505 HTTP Version Not Supported",
    )


def test_http2_preface_gets_505(mockstatus):
    """Prior-knowledge HTTP/2 (RFC 9113 §3.4): the preface, then a SETTINGS frame."""
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")
    assert_400(mockstatus, preface, b"HTTP/2 connection preface", status=b"505 HTTP Version Not Supported")


@pytest.mark.parametrize("method,target", [("CONNECT", "example.test:443"), ("OPTIONS", "*")])
def test_target_that_is_not_a_path_is_a_404_naming_it(mockstatus, method, target):
    line, head, body, _ = answer(
        mockstatus, f"{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    )
    assert line == b"HTTP/1.1 404 Not Found" and SERVER in head
    assert f"request target {target!r} is not a path".encode() in body
    healthy(mockstatus)


# --- header fields --------------------------------------------------------------------------

BAD_HEADERS = [
    ("no-colon", b"NoColon\r\n", b"invalid field name in 'NoColon'"),
    ("space-before-colon", b"X-A : 1\r\n", b"no space before the colon"),  # RFC 9112 §5.1: MUST be a 400
    ("empty-name", b": value\r\n", b"invalid field name in ': value'"),
    ("non-token-name", b"X-\xff: 1\r\n", b"invalid field name in 'X-\\xff: 1'"),
    ("nul-in-value", b"X-A: a\x00b\r\n", b"invalid character in the value of field 'X-A'"),
    ("del-in-value", b"X-A: a\x7fb\r\n", b"invalid character in the value of field 'X-A'"),
    ("obs-fold", b"X-A: 1\r\n  continued\r\n", b"whitespace"),  # RFC 9112 §5.2: may reject with 400
    ("space-before-first-header", None, b"starts with whitespace"),
]


@pytest.mark.parametrize("line,fragment", [c[1:] for c in BAD_HEADERS], ids=[f"400/{c[0]}" for c in BAD_HEADERS])
def test_invalid_header_bytes_are_a_400_naming_them(mockstatus, line, fragment):
    if line is None:
        raw = b"GET /status/200 HTTP/1.1\r\n Host: x\r\n\r\n"
    else:
        raw = b"GET /status/200 HTTP/1.1\r\n" + HOST + line + b"\r\n"
    assert_400(mockstatus, raw, fragment)


def test_obs_text_in_a_header_value_is_accepted(mockstatus):
    # RFC 9110 §5.5: field values may carry obs-text (0x80-0xFF); they are not a reason to refuse.
    line, _, _, _ = answer(
        mockstatus, b"GET /status/204 HTTP/1.1\r\nHost: x\r\nX-A: caf\xe9 \xff\r\nConnection: close\r\n\r\n"
    )
    assert line == b"HTTP/1.1 204 No Content"


@pytest.mark.parametrize(
    "raw,fragment",
    [(b"GET /status/200 HTTP/1.1\r\nConnection: close\r\n\r\n", b"missing Host field"),
     (b"GET /status/200 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b"2 Host fields")],
    ids=["400/no-host", "400/two-hosts"],
)  # fmt: skip
def test_host_rules_of_http11(mockstatus, raw, fragment):
    # RFC 9112 §3.2: a 1.1 request without Host, or with more than one, gets a 400.
    assert_400(mockstatus, raw, fragment)


# --- limits: request line, header field, header count (settings) ------------------------------


@pytest.fixture(scope="module")
def tight(make_mockstatus_session):
    return make_mockstatus_session(max_request_line=512, max_header_size=1024, max_headers=8)


def test_request_line_at_the_limit_is_read(tight):
    target = "/status/200?body=" + "a" * (512 - len("/status/200?body="))
    line, _, body, _ = answer(tight, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert line == b"HTTP/1.1 200 OK" and body == b"a" * (512 - len("/status/200?body="))


def test_request_line_over_the_limit_is_a_400_naming_the_limit_and_flag(tight):
    target = "/status/200?body=" + "a" * (513 - len("/status/200?body="))
    assert_400(
        tight,
        f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        b"request target of 513 bytes is longer than 512 bytes",
        b"--max-request-line",
    )


def test_head_request_line_too_long_to_finish_gets_a_400_head_and_no_body(tight):
    """Refused before its line ends (no CRLF yet): the method is known, and a HEAD reply has no body (RFC 9110 §9.3.2)."""
    with connect(tight) as sock:
        sock.sendall(b"HEAD /status/200?body=" + b"a" * 700)  # over 512 + 64, no CRLF
        head = read_head(sock)
        rest, how = read_to_end(sock)
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"\r\nContent-Length: " in head
    assert rest == b"" and how == "close"


def test_header_value_at_the_limit_is_read(tight):
    # --max-header-size limits each field's value (its name and the whitespace around it aside).
    value = "v" * 1024
    line, _, body, _ = answer(
        tight,
        f"GET /status/200 HTTP/1.1\r\nHost: x\r\nX-Mockstatus-Body: {value}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert line == b"HTTP/1.1 200 OK" and body == value.encode()


def test_header_value_over_the_limit_is_a_400_naming_the_limit_and_flag(tight):
    value = "v" * 1025
    raw = f"GET /status/200 HTTP/1.1\r\nHost: x\r\nX-Mockstatus-Body: {value}\r\n\r\n".encode()
    assert_400(tight, raw, b"has a value longer than 1024 bytes", b"--max-header-size")


def test_header_count_at_the_limit_is_read(tight):
    headers = "".join(f"X-{i}: {i}\r\n" for i in range(6))  # + Host + Connection = 8
    line, _, _, _ = answer(tight, f"GET /status/204 HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n".encode())
    assert line == b"HTTP/1.1 204 No Content"


def test_header_count_over_the_limit_is_a_400_naming_the_limit_and_flag(tight):
    headers = "".join(f"X-{i}: {i}\r\n" for i in range(8))  # + Host = 9
    raw = f"GET /status/204 HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode()
    assert_400(tight, raw, b"9 header fields", b"at most 8 header fields", b"--max-headers")


# --- Content-Length and Transfer-Encoding ----------------------------------------------------

POST = b"POST /status/201 HTTP/1.1\r\nHost: x\r\n"
BAD_FRAMING = [
    ("cl-not-a-number", b"Content-Length: abc\r\n\r\n", b"Invalid character in Content-Length"),
    ("cl-negative", b"Content-Length: -1\r\n\r\n", b"Invalid character in Content-Length"),
    ("cl-plus-sign", b"Content-Length: +5\r\n\r\nhello", b"Invalid character in Content-Length"),
    ("cl-list", b"Content-Length: 5, 5\r\n\r\nhello", b"Invalid character in Content-Length"),
    ("cl-overflow", b"Content-Length: 99999999999999999999999\r\n\r\n", b"Content-Length overflow"),
    ("cl-twice-different", b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", b"Duplicate Content-Length"),
    ("cl-twice-same", b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", b"Duplicate Content-Length"),
    # Request smuggling (RFC 9112 §6.3, §11.2): never pick one of two framings.
    (
        "cl-then-te",
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"Content-Length and Transfer-Encoding together",
    ),
    (
        "te-then-cl",
        b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        b"Content-Length and Transfer-Encoding together",
    ),
    ("te-twice", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"Transfer-Encoding"),
    ("te-chunked-not-last", b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", b"Transfer-Encoding"),
    ("te-without-chunked", b"Transfer-Encoding: gzip\r\n\r\n", b"Transfer-Encoding"),
    ("te-unknown", b"Transfer-Encoding: xchunked\r\n\r\n", b"Transfer-Encoding"),
    ("te-space-before-colon", b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", b"no space before the colon"),
    ("cl-folded", b"Content-Length: 1\r\n\tContent-Length: 5\r\n\r\nhello", b"whitespace"),
    # Bad chunked bodies.
    (
        "chunk-size-not-hex",
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"Invalid character in chunk size",
    ),
    (
        "chunk-size-0x",
        b"Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
        b"Invalid character in chunk size",
    ),
    (
        "chunk-longer-than-size",
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
        b"Expected CRLF after chunk data",
    ),
    (
        "chunk-without-crlf",
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        b"Expected CRLF after chunk data",
    ),
    (
        "chunk-size-overflow",
        b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        b"Chunk size overflow",
    ),
    ("chunk-bare-lf", b"Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n", b"CR after chunk size"),
]


@pytest.mark.parametrize("rest,fragment", [c[1:] for c in BAD_FRAMING], ids=[f"400/{c[0]}" for c in BAD_FRAMING])
def test_bad_body_framing_is_a_400_naming_it(mockstatus, rest, fragment):
    assert_400(mockstatus, POST + rest, fragment)


def test_smuggled_request_behind_cl_and_te_is_never_answered(mockstatus):
    """The classic CL.TE payload: a server that took either framing would answer two requests."""
    smuggled = b"GET /status/404 HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = POST + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % (5 + len(smuggled)) + smuggled
    with connect(mockstatus) as sock:
        sock.sendall(raw)
        data, how = read_to_end(sock)
    assert data.count(b"HTTP/1.") == 1 and data.startswith(b"HTTP/1.1 400 Bad Request\r\n") and how == "close"
    healthy(mockstatus)


def test_chunked_body_with_extensions_and_trailers_is_read(mockstatus):
    raw = POST + b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n"
    line, _, _, _ = answer(mockstatus, raw)
    assert line == b"HTTP/1.1 201 Created"
    assert mockstatus.requests(path="/status/201")[-1]["body"] == "hello"


def test_http10_request_with_transfer_encoding_closes_after_its_reply(mockstatus):
    """RFC 9112 §6.1: HTTP/1.0 with Transfer-Encoding has faulty framing: answer, then close,
    so the bytes behind it are never read as a request (even with keep-alive asked for)."""
    behind = b"GET /status/202 HTTP/1.0\r\nHost: x\r\n\r\n"
    raw = (
        b"POST /status/201 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    with connect(mockstatus) as sock:
        sock.sendall(raw + behind)
        data, how = read_to_end(sock)
    assert data.startswith(b"HTTP/1.0 201 Created\r\n") and b"202 Accepted" not in data and how == "close"
    healthy(mockstatus)


def test_http10_keep_alive_with_content_length_stays_open(mockstatus):
    # The same request framed by Content-Length is fine: the one behind it is answered.
    raw = b"POST /status/201 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nab"
    with connect(mockstatus) as sock:
        sock.sendall(raw + b"GET /status/202 HTTP/1.0\r\nHost: x\r\n\r\n")
        data, _ = read_to_end(sock)
    assert data.startswith(b"HTTP/1.0 201 Created\r\n") and b"HTTP/1.0 202 Accepted\r\n" in data


@pytest.fixture(scope="module")
def small_body(make_mockstatus_session):
    return make_mockstatus_session(max_body_size=64)


def test_expect_100_continue_with_a_body_over_the_limit_gets_413_not_100(small_body):
    """The client has not sent the body yet: it is told at once, never invited to send it."""
    with connect(small_body) as sock:
        sock.sendall(POST + b"Expect: 100-continue\r\nContent-Length: 65\r\n\r\n")
        head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 413 Content Too Large\r\n") and b"100 Continue" not in head
    assert b"65 bytes is above the max body size of 64 bytes" in body
    healthy(small_body)


def test_bytes_beyond_content_length_are_the_next_request(small_body):
    """More bytes than Content-Length said: the body is the first 5, the rest is parsed
    as the next request (here junk: a 400 naming it), never as more body."""
    with connect(small_body) as sock:
        sock.sendall(POST + b"Content-Length: 5\r\n\r\nhello")
        head, _ = read_response(sock)
        sock.sendall(b"JUNK\r\n\r\n")
        data, how = read_to_end(sock)
    assert head.startswith(b"HTTP/1.1 201 Created\r\n")
    assert data.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"unknown method 'JUNK'" in data and how == "close"
    assert small_body.requests(path="/status/201")[-1]["body"] == "hello"
    healthy(small_body)


# --- the header timeout ---------------------------------------------------------------------

TIMEOUT = 0.2


@pytest.fixture(scope="module")
def impatient(make_mockstatus_session):
    return make_mockstatus_session(header_timeout=TIMEOUT)


def drip(sock: socket.socket, data: bytes, gap: float) -> None:
    for index in range(len(data)):
        try:
            sock.sendall(data[index : index + 1])
        except (BrokenPipeError, ConnectionResetError):
            return
        time.sleep(gap)


def test_client_dripping_its_head_gets_408_and_is_closed(impatient):
    with connect(impatient) as sock:
        began = time.monotonic()
        drip(sock, b"GET /status/200 HTTP/1.1\r\nHost: x\r\n", gap=0.02)  # ~0.7 s if it were all read
        data, how = read_to_end(sock)
        took = time.monotonic() - began
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data
    assert b"\r\nConnection: close\r\n" in data and SERVER in data
    assert data.endswith(
        b"408 Request Timeout: the request line and headers did not arrive within 0.2s (--header-timeout)\n"
    )
    assert how == "close" and TIMEOUT - 0.02 <= took < TIMEOUT + 0.6
    healthy(impatient)


def test_connection_that_sends_nothing_is_closed_without_a_reply(impatient):
    """No byte of a request: a 408 could be taken as the answer to a request sent just then
    (a browser's preconnect); it is closed silently, as Apache does."""
    with connect(impatient) as sock:
        began = time.monotonic()
        data, how = read_to_end(sock)
        took = time.monotonic() - began
    assert data == b"" and how == "close" and TIMEOUT - 0.02 <= took < TIMEOUT + 0.5


def test_idle_keep_alive_connection_is_closed_after_the_timeout(impatient):
    with connect(impatient) as sock:
        sock.sendall(b"GET /status/200 HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _ = read_response(sock)
        began = time.monotonic()
        data, how = read_to_end(sock)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    # The timer started when the reply was written, a moment before it was read here.
    assert data == b"" and how == "close" and TIMEOUT - 0.05 <= time.monotonic() - began < TIMEOUT + 0.5


def test_second_head_dripped_on_a_kept_connection_gets_408(impatient):
    with connect(impatient) as sock:
        sock.sendall(b"GET /status/200 HTTP/1.1\r\nHost: x\r\n\r\nGET /status/201 HTTP/1.1\r\n")
        head, _ = read_response(sock)
        data, how = read_to_end(sock)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n") and how == "close"


def test_a_head_sent_in_time_is_answered_and_the_timer_restarts(impatient):
    with connect(impatient) as sock:
        for code in (200, 201, 202):
            time.sleep(TIMEOUT / 2)  # idle for half the timeout before each request
            sock.sendall(f"GET /status/{code} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head, _ = read_response(sock)
            assert head.startswith(f"HTTP/1.1 {code} ".encode())


def test_slow_body_and_long_delay_are_not_cut_by_the_header_timeout(impatient):
    """The timer stops once the head is in: a body sent slowly or a delay longer than the
    header timeout are the request's business."""
    with connect(impatient) as sock:
        sock.sendall(b"POST /status/201 HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n")
        drip(sock, b"abcdef", gap=0.05)  # 0.3 s of body
        head, _ = read_response(sock)
        assert head.startswith(b"HTTP/1.1 201 Created\r\n")
        sock.sendall(b"GET /status/200?delay=300ms HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _ = read_response(sock)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")


def test_header_timeout_zero_turns_it_off(make_mockstatus):
    server = make_mockstatus(header_timeout=0)
    with connect(server) as sock:
        sock.sendall(b"GET /status/200 HTTP/1.1\r\n")
        with pytest.raises(TimeoutError):
            read_chunk(sock, timeout=0.3)  # still open, nothing sent
        sock.sendall(b"Host: x\r\nConnection: close\r\n\r\n")
        data, _ = read_to_end(sock)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")


# --- max connections --------------------------------------------------------------------------


def open_count(server) -> int:
    return server.call(lambda: server._server.open_connections)


def wait_for(predicate, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_connection_over_the_limit_gets_503_and_is_closed(make_mockstatus):
    server = make_mockstatus(max_connections=3)
    held = [connect(server) for _ in range(3)]
    try:
        wait_for(lambda: open_count(server) == 3)
        with connect(server) as sock:
            sock.sendall(request_bytes("/status/200"))  # a request already on its way is no RST
            head, body = read_response(sock)
            rest, how = read_to_end(sock)
        assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert b"\r\nRetry-After: 1\r\n" in head and b"\r\nConnection: close\r\n" in head and SERVER in head
        assert (
            body == b"503 Service Unavailable: 3 connections are open, the --max-connections limit; retry in a second\n"
        )
        assert rest == b"" and how == "close"
        # The held ones still work.
        held[0].sendall(request_bytes("/status/418"))
        assert read_response(held[0])[0].startswith(b"HTTP/1.1 418 ")
    finally:
        for sock in held:
            sock.close()
    # Once they are gone, new connections are served again.
    wait_for(lambda: open_count(server) == 0)
    healthy(server)


def test_refused_connection_that_sends_nothing_still_gets_its_503(make_mockstatus):
    server = make_mockstatus(max_connections=1)
    with connect(server):
        wait_for(lambda: open_count(server) == 1)
        with connect(server) as sock:
            data, how = read_to_end(sock)
    assert data.startswith(b"HTTP/1.1 503 Service Unavailable\r\n") and how == "close"


def test_max_connections_zero_means_no_limit(make_mockstatus):
    server = make_mockstatus(max_connections=0)
    held = [connect(server) for _ in range(20)]
    try:
        for sock in held:
            sock.sendall(request_bytes("/status/204"))
        for sock in held:
            assert read_response(sock)[0].startswith(b"HTTP/1.1 204 ")
    finally:
        for sock in held:
            sock.close()


# --- the README's limits table ---------------------------------------------------------------

LIMIT_SETTINGS = {
    "max_body_size", "max_request_line", "max_header_size", "max_headers", "header_timeout", "body_timeout",
    "max_connections", "max_delay", "journal_size", "journal_max_bytes", "max_sequences", "max_buckets",
    "upgrade_idle_timeout",
}  # fmt: skip


def test_readme_limits_table_shows_each_limit_with_its_default_and_both_names():
    from pathlib import Path

    from mockstatus.settings import SETTINGS

    text = (Path(__file__).resolve().parent.parent / "docs" / "limits.md").read_text(encoding="utf-8")
    section = text.split("\n", 1)[1].split("\n### ", 1)[0]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")] for line in section.splitlines() if line.startswith("| ")
    ]
    shown = {}
    for _, default, names, beyond in rows[2:]:
        flag, env = re.findall(r"`([^`]+)`", names)
        (option,) = [o for o in SETTINGS if o.flag == flag]
        assert option.env == env and beyond
        assert option.parse(re.findall(r"`([^`]+)`", default)[0]) == option.default, (flag, default)
        shown[option.name] = default
    assert set(shown) == LIMIT_SETTINGS


# --- the connection limit and the open-files limit ------------------------------------------


def serve_with_files(soft: int, hard: int, *flags: str):
    import resource
    import subprocess
    import sys

    def limit() -> None:  # in the child, before exec
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    process = subprocess.Popen(
        [sys.executable, "-m", "mockstatus", "serve", "--port", "0", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limit,
    )  # fmt: skip
    line = process.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    assert match, (line, process.stderr.read() if process.poll() is not None else "")
    return process, int(match.group(1))


def soft_files(pid: int) -> int:
    for line in open(f"/proc/{pid}/limits"):
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no Max open files line")


def test_open_files_limit_is_raised_to_fit_the_connection_limit():
    process, _ = serve_with_files(256, 4096, "--max-connections", "1000")
    try:
        assert soft_files(process.pid) == 1000 + 64
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert stderr == ""


def test_connection_limit_is_lowered_to_what_the_hard_limit_allows():
    """Above the hard open-files limit, accept() would fail and clients would see resets:
    the connection limit comes down to fit, with one warning, and the one over it gets a 503."""
    import types

    process, port = serve_with_files(128, 128, "--max-connections", "1000")
    server = types.SimpleNamespace(host="127.0.0.1", port=port)
    held = []
    try:
        for _ in range(128 - 64):
            held.append(connect(server))
            held[-1].sendall(request_bytes("/status/204"))
            assert read_response(held[-1])[0].startswith(b"HTTP/1.1 204 ")
        with connect(server) as sock:
            sock.sendall(request_bytes("/status/204"))
            head, body = read_response(sock)
        assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n") and b"64 connections are open" in body
    finally:
        for sock in held:
            sock.close()
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert stderr == "mockstatus: the open-files limit (128) allows 64 connections, not --max-connections 1000\n"


# --- bytes that are not UTF-8 ------------------------------------------------------------------


def test_body_given_as_non_utf8_header_bytes_goes_back_as_sent(mockstatus):
    """aiohttp hands such bytes over as surrogates; encoding them strictly was a 500."""
    raw = b"GET /status/200 HTTP/1.1\r\nHost: x\r\nX-Mockstatus-Body: caf\xe9 \xff\xfe\r\nConnection: close\r\n\r\n"
    line, head, body, _ = answer(mockstatus, raw)
    assert line == b"HTTP/1.1 200 OK" and body == b"caf\xe9 \xff\xfe"
    healthy(mockstatus)


@pytest.mark.parametrize("header", [b"X-Mockstatus-Response-X-A: \xff", b"X-Mockstatus-Location: /\xff"])
def test_non_utf8_bytes_for_a_response_header_are_a_400_naming_them(mockstatus, header):
    """aiohttp would drop the byte from the response header without a word."""
    raw = b"GET /status/302 HTTP/1.1\r\nHost: x\r\n" + header + b"\r\nConnection: close\r\n\r\n"
    line, _, body, _ = answer(mockstatus, raw)
    assert line == b"HTTP/1.1 400 Bad Request" and b"\\udcff" in body
