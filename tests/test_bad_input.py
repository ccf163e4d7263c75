"""Every bad input of issue 2 gets a 4xx whose body names the bad value and the allowed form.

Never a 500, a traceback or a hung connection: each test also checks that the
server logged no error (``caplog`` sees the server thread's records).
"""

from __future__ import annotations

import json

import pytest
from wire import exchange, http_request, request_bytes

from mockstatus import __version__
from mockstatus.catalog import CODE_FORM

pytestmark = pytest.mark.usefixtures("no_server_errors")


def request(server, target: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None):
    status, response_headers, data = http_request(server, target, method, headers, body)
    return status, response_headers, data.decode("utf-8")


def assert_names(status: int, body: str, *fragments: str, expected: int = 400) -> None:
    assert status == expected, body
    for fragment in fragments:
        assert fragment in body, f"{fragment!r} not in {body!r}"


# --- the code in /status/{code} -----------------------------------------------------

BAD_CODES = [
    # (path segment as sent, the value the server decoded and must name)
    ("abc", "abc"),
    ("2_00", "2_00"),  # int() would take it
    ("+200", "+200"),  # int() would take it
    ("%20200", " 200"),  # int() would take it
    ("%D9%A2%D9%A0%D9%A0", "٢٠٠"),  # Arabic-Indic digits: int() would take them
    ("99", "99"),
    ("1000", "1000"),
    ("20", "20"),
    ("", ""),
    ("099", "099"),
    ("200.0", "200.0"),
]


@pytest.mark.parametrize("segment,value", BAD_CODES, ids=[f"bad/status/{s}" for s, _ in BAD_CODES])
def test_bad_code(mockstatus, segment, value):
    status, headers, body = request(mockstatus, f"/status/{segment}")
    assert_names(status, body, repr(value), CODE_FORM)
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Server"] == f"mockstatus/{__version__}"


@pytest.mark.parametrize("segment,value", BAD_CODES[:5], ids=[f"bad/status/{s}?json" for s, _ in BAD_CODES[:5]])
def test_bad_code_as_json(mockstatus, segment, value):
    status, headers, body = request(mockstatus, f"/status/{segment}", headers={"Accept": "application/json"})
    assert status == 400
    data = json.loads(body)
    assert data["code"] == 400 and repr(value) in data["error"] and CODE_FORM in data["error"]


def test_missing_code(mockstatus):
    status, _, body = request(mockstatus, "/status")
    assert_names(status, body, "missing code", "/status/<code>", CODE_FORM)


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "PROPFIND"])
def test_bad_code_with_any_method(mockstatus, method):
    status, headers, body = request(mockstatus, "/status/2_00", method)
    assert status == 400
    assert body == ("" if method == "HEAD" else body) and int(headers["Content-Length"]) > 0


# --- weighted lists -----------------------------------------------------------------

BAD_LISTS = [
    ("200:0,500", "'0'"),  # zero weight
    ("200:0.0,500", "'0.0'"),
    ("200:-1,500", "'-1'"),  # negative weight
    ("200:abc", "'abc'"),  # not a number
    ("200:1e3", "'1e3'"),
    ("200:inf", "'inf'"),
    ("200:nan", "'nan'"),
    ("200:", "''"),
    ("200:1:2", "'1:2'"),
    ("200,,500", "empty item"),  # empty item
    ("200,", "empty item"),
    (",200", "empty item"),
    ("200,abc", "'abc'"),  # bad code in a list
    ("200,1000:1", "'1000'"),
    ("200,%20200", "' 200'"),
]


@pytest.mark.parametrize("codes,named", BAD_LISTS, ids=[f"bad/status/{c}" for c, _ in BAD_LISTS])
def test_bad_weighted_list(mockstatus, codes, named):
    status, _, body = request(mockstatus, f"/status/{codes}")
    assert_names(status, body, named)
    assert "weight" in body or "code" in body


# --- per-request options ------------------------------------------------------------

BAD_QUERIES = [
    ("location=javascript:alert(1)", "'javascript:alert(1)'", "relative URL"),
    ("location=ftp://files.test/x", "'ftp://files.test/x'", "http(s)"),
    ("location=//evil.test/x", "'//evil.test/x'", "relative URL"),
    ("location=/a%0D%0ASet-Cookie:%20x=1", "'/a\\r\\nSet-Cookie: x=1'", "relative URL"),
    ("location=", "''", "relative URL"),
    ("retry_after=soon", "'soon'", "HTTP-date"),
    ("retry_after=-1", "'-1'", "whole seconds"),
    ("retry_after=1.5", "'1.5'", "whole seconds"),
    ("retry_after=Wed,%2021%20Oct%202026%2007:28:00", "'Wed, 21 Oct 2026 07:28:00'", "HTTP-date"),
    ("header=Content-Length:5", "'Content-Length'", "set by the server"),
    ("header=content-length:5", "'content-length'", "set by the server"),
    ("header=Transfer-Encoding:chunked", "'Transfer-Encoding'", "set by the server"),
    ("header=Connection:close", "'Connection'", "set by the server"),
    ("header=Keep-Alive:timeout=5", "'Keep-Alive'", "set by the server"),
    ("header=TE:trailers", "'TE'", "set by the server"),
    ("header=Trailer:X-Sum", "'Trailer'", "set by the server"),
    ("header=X-A:a%0D%0AX-B:b", "'a\\r\\nX-B:b'", "CR, LF"),
    ("header=X-A:a%0Ab", "'a\\nb'", "CR, LF"),
    ("header=X-A%0D%0AX-B:b", "'X-A\\r\\nX-B'", "token"),
    ("header=Bad%20Name:1", "'Bad Name'", "token"),
    ("header=NoColon", "'NoColon'", "Name:Value"),
    ("seed=abc", "'abc'", "whole number"),
    ("dealy=1s", "'dealy'", "did you mean 'delay'?"),
    ("Retry-After=5", "'Retry-After'", "did you mean 'retry_after'?"),
    ("location=/a&location=/b", "'location'", "once"),
]


@pytest.mark.parametrize("query,named,form", BAD_QUERIES, ids=[f"bad/status/302?{q}" for q, _, _ in BAD_QUERIES])
def test_bad_option(mockstatus, query, named, form):
    status, headers, body = request(mockstatus, f"/status/302?{query}")
    assert_names(status, body, named, form)
    assert "Set-Cookie" not in headers and "X-B" not in headers


BAD_HEADERS = [
    ({"X-Mockstatus-Response-Content-Length": "5"}, "'Content-Length'", "set by the server"),
    ({"X-Mockstatus-Response-Transfer-Encoding": "chunked"}, "'Transfer-Encoding'", "set by the server"),
    ({"X-Mockstatus-Response-Connection": "close"}, "'Connection'", "set by the server"),
    ({"X-Mockstatus-Location": "javascript:alert(1)"}, "'javascript:alert(1)'", "relative URL"),
    ({"X-Mockstatus-Retry-After": "soon"}, "'soon'", "HTTP-date"),
    ({"X-Mockstatus-Dealy": "1"}, "'X-Mockstatus-Dealy'", "did you mean 'X-Mockstatus-Delay'?"),
    ({"X-Mockstatus-Header": "A:1"}, "'X-Mockstatus-Header'", "X-Mockstatus-Response-<Name>"),
]


@pytest.mark.parametrize(
    "headers,named,form", BAD_HEADERS, ids=[f"bad/header/{next(iter(h))}" for h, _, _ in BAD_HEADERS]
)
def test_bad_option_header(mockstatus, headers, named, form):
    status, _, body = request(mockstatus, "/status/302", headers=headers)
    assert_names(status, body, named, form)


def test_oversized_request_header_is_refused_by_the_parser(mockstatus):
    """aiohttp reads at most 16 KiB per header field (``max_field_size``): a 4xx naming the limit."""
    status, headers, body = request(mockstatus, "/status/200", headers={"X-Mockstatus-Body": "x" * 20_000})
    assert_names(status, body, "16384 bytes")
    assert headers["Server"] == f"mockstatus/{__version__}"


def test_oversized_request_line_is_refused_by_the_parser(mockstatus):
    """aiohttp reads a request line of at most 8190 bytes: a long ?body= is a 400, not a hang."""
    status, headers, body = request(mockstatus, "/status/200?body=" + "a" * 9000)
    assert_names(status, body, "8190")
    assert headers["Server"] == f"mockstatus/{__version__}"


def test_control_character_in_a_request_header_is_refused_by_the_parser(mockstatus):
    """A header value with a control byte never reaches the handler: aiohttp's parser answers 400."""
    raw = exchange(mockstatus, b"GET /status/200 HTTP/1.1\r\nHost: x\r\nX-Mockstatus-Response-X-A: a\x01b\r\n\r\n")
    assert raw.startswith(b"HTTP/1.0 400 Bad Request\r\n") or raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nX-A:" not in raw


# --- request body size --------------------------------------------------------------


@pytest.fixture(scope="module")
def small(make_mockstatus_session):
    return make_mockstatus_session(max_body_size=1024)


def test_body_at_the_limit_is_read(small):
    status, _, _ = request(small, "/status/201", "POST", body=b"x" * 1024)
    assert status == 201


@pytest.mark.parametrize("method", ["POST", "PUT", "PROPFIND"])
def test_body_over_the_limit_is_413(small, method):
    status, headers, body = request(small, "/status/201", method, body=b"x" * 1025)
    assert_names(status, body, "1025", "1024", "max body size", expected=413)
    assert headers["Connection"] == "close"  # the rest of the body is never read


def test_chunked_body_over_the_limit_is_413(small):
    chunks = b"".join(b"200\r\n" + b"x" * 512 + b"\r\n" for _ in range(3)) + b"0\r\n\r\n"
    raw = exchange(small, request_bytes("/status/201", "POST", headers={"Transfer-Encoding": "chunked"}, body=chunks))
    assert raw.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert b"above the max body size of 1024 bytes" in raw


# --- paths and methods --------------------------------------------------------------

UNKNOWN_PATHS = ["/nope", "/statuses/200", "/status200", "/__mockstatus/nope", "/STATUS/200", "/static/x.css"]


@pytest.mark.parametrize("path", UNKNOWN_PATHS, ids=[f"404{p}" for p in UNKNOWN_PATHS])
def test_unknown_path_points_to_status(mockstatus, path):
    status, headers, body = request(mockstatus, path)
    assert_names(status, body, repr(path), "/status/<code>", "/status/418", expected=404)
    assert headers["Server"] == f"mockstatus/{__version__}"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_admin_route_with_another_method_is_405(mockstatus, method):
    status, headers, body = request(mockstatus, "/__mockstatus/health", method)
    assert_names(status, body, method, "GET, HEAD", expected=405)
    assert headers["Allow"] == "GET, HEAD"


def test_unknown_method_is_named(mockstatus):
    raw = exchange(mockstatus, b"FOO /status/200 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b" 400 Bad Request\r\n" in raw.split(b"\r\n", 1)[0] + b"\r\n"
    assert b"unknown method 'FOO'; allowed: GET, HEAD, POST" in raw
    assert f"\r\nServer: mockstatus/{__version__}\r\n".encode() in raw
