"""Per-request options: ``location=``, ``retry_after=``, ``body=``, ``header=Name:Value``.

Each works on any code, as a query parameter or as a request header
``X-Mockstatus-<Option>`` (and ``X-Mockstatus-Response-<Name>`` for response
headers); the query wins over the header.  Bad values are in test_bad_input.py.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
import requests
from wire import http_request

# --- location= ----------------------------------------------------------------------


LOCATIONS = [
    (302, "/elsewhere"),
    (301, "/status/418?x=1"),
    (307, "https://example.org/moved"),
    (201, "/items/7"),
    (200, "/x"),
]


@pytest.mark.parametrize("code,location", LOCATIONS, ids=[f"status/{c}?location={v}" for c, v in LOCATIONS])
def test_location(mockstatus, code, location):
    status, headers, _ = http_request(mockstatus, f"/status/{code}?location={quote(location, safe='')}")
    assert status == code
    assert headers.get_all("Location") == [location]


def test_location_header_form(mockstatus):
    status, headers, _ = http_request(mockstatus, "/status/303", headers={"X-Mockstatus-Location": "/from-header"})
    assert (status, headers["Location"]) == (303, "/from-header")


def test_query_wins_over_header_for_location(mockstatus):
    _, headers, _ = http_request(
        mockstatus, "/status/302?location=/from-query", headers={"X-Mockstatus-Location": "/from-header"}
    )
    assert headers.get_all("Location") == ["/from-query"]


def test_a_real_client_follows_the_location(mockstatus):
    response = requests.get(mockstatus.url("/status/302?location=/status/418"), timeout=5)
    assert response.status_code == 418
    assert [r.status_code for r in response.history] == [302]


def test_307_keeps_the_method_and_body_when_followed(mockstatus):
    response = requests.post(mockstatus.url("/status/307?location=/status/201"), data=b"payload", timeout=5)
    assert response.status_code == 201
    assert response.history[0].status_code == 307
    entries = mockstatus.requests(path="/status/201")
    assert entries and entries[-1]["method"] == "POST"


def test_allowed_redirect_hosts(make_mockstatus):
    server = make_mockstatus(allowed_redirect_hosts=("example.org",))
    ok, headers, _ = http_request(server, "/status/302?location=https://example.org/x")
    assert (ok, headers["Location"]) == (302, "https://example.org/x")
    status, _, body = http_request(server, "/status/302?location=https://evil.test/x")
    assert status == 400
    assert b"'evil.test' is not allowed" in body and b"example.org" in body
    relative, _, _ = http_request(server, "/status/302?location=/always-fine")
    assert relative == 302


# --- retry_after= -------------------------------------------------------------------


RETRY_AFTER = [(503, "120"), (429, "0"), (503, "Wed, 21 Oct 2026 07:28:00 GMT"), (200, "5"), (301, "3600")]


@pytest.mark.parametrize("code,value", RETRY_AFTER, ids=[f"status/{c}?retry_after={v}" for c, v in RETRY_AFTER])
def test_retry_after(mockstatus, code, value):
    status, headers, _ = http_request(mockstatus, f"/status/{code}?retry_after={quote(value)}")
    assert status == code
    assert headers.get_all("Retry-After") == [value]


def test_retry_after_header_form_and_query_wins(mockstatus):
    _, headers, _ = http_request(mockstatus, "/status/429", headers={"X-Mockstatus-Retry-After": "30"})
    assert headers["Retry-After"] == "30"
    _, headers, _ = http_request(mockstatus, "/status/429?retry_after=7", headers={"X-Mockstatus-Retry-After": "30"})
    assert headers.get_all("Retry-After") == ["7"]


# --- body= --------------------------------------------------------------------------


def test_body(mockstatus):
    status, headers, body = http_request(mockstatus, "/status/500?body=" + quote("database is down"))
    assert (status, body) == (500, b"database is down")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Content-Length"] == str(len(body))


def test_body_utf8(mockstatus):
    _, headers, body = http_request(mockstatus, "/status/400?body=" + quote("参数错误"))
    assert body == "参数错误".encode()
    assert headers["Content-Length"] == str(len("参数错误".encode()))


def test_body_replaces_json_and_html_too(mockstatus):
    for accept in ("application/json", "text/html"):
        _, headers, body = http_request(mockstatus, "/status/422?body=plain", headers={"Accept": accept})
        assert body == b"plain"
        assert headers["Content-Type"] == "text/plain; charset=utf-8"


def test_body_header_form_and_query_wins(mockstatus):
    _, _, body = http_request(mockstatus, "/status/200", headers={"X-Mockstatus-Body": "from header"})
    assert body == b"from header"
    _, _, body = http_request(mockstatus, "/status/200?body=query", headers={"X-Mockstatus-Body": "from header"})
    assert body == b"query"


@pytest.mark.parametrize("code", [204, 304, 205])
def test_body_never_goes_on_a_no_body_code(mockstatus, code):
    status, headers, body = http_request(mockstatus, f"/status/{code}?body=nope")
    assert (status, body) == (code, b"")
    assert headers.get("Content-Length") == ("0" if code == 205 else None)


def test_body_on_head_keeps_its_length(mockstatus):
    _, get_headers, _ = http_request(mockstatus, "/status/200?body=hello")
    status, headers, body = http_request(mockstatus, "/status/200?body=hello", "HEAD")
    assert (status, body) == (200, b"")
    assert headers["Content-Length"] == get_headers["Content-Length"] == "5"


def test_empty_body(mockstatus):
    for method in ("GET", "HEAD"):
        _, headers, body = http_request(mockstatus, "/status/200?body=", method)
        assert body == b"" and headers["Content-Length"] == "0", method


# --- header=Name:Value and X-Mockstatus-Response-<Name> ---------------------------------


def test_header(mockstatus):
    _, headers, _ = http_request(
        mockstatus, "/status/200?header=X-Trace:abc&header=" + quote("Cache-Control:no-store, max-age=0")
    )
    assert headers["X-Trace"] == "abc"
    assert headers["Cache-Control"] == "no-store, max-age=0"


def test_header_repeated_gives_several_lines(mockstatus):
    _, headers, _ = http_request(mockstatus, "/status/200?header=Set-Cookie:a=1&header=Set-Cookie:b=2")
    assert headers.get_all("Set-Cookie") == ["a=1", "b=2"]


def test_header_replaces_the_catalogs(mockstatus):
    challenge = 'Bearer realm="api", error="invalid_token"'
    _, headers, _ = http_request(mockstatus, "/status/401?header=" + quote(f"WWW-Authenticate:{challenge}"))
    assert headers.get_all("WWW-Authenticate") == [challenge]


def test_response_header_request_form(mockstatus):
    _, headers, _ = http_request(
        mockstatus, "/status/429", headers={"X-Mockstatus-Response-X-RateLimit-Remaining": "0"}
    )
    assert headers["X-RateLimit-Remaining"] == "0"
    assert headers["Retry-After"] == "1"  # the catalog's header stays


def test_response_header_prefix_is_case_insensitive(mockstatus):
    _, headers, _ = http_request(mockstatus, "/status/200", headers={"x-mockstatus-response-x-lower": "yes"})
    assert headers["X-Lower"] == "yes"


def test_query_and_response_headers_add_up(mockstatus):
    _, headers, _ = http_request(mockstatus, "/status/200?header=X-A:1", headers={"X-Mockstatus-Response-X-B": "2"})
    assert (headers["X-A"], headers["X-B"]) == ("1", "2")


# --- options work everywhere ------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "DELETE", "PROPFIND"])
def test_options_with_every_method(mockstatus, method):
    status, headers, _ = http_request(mockstatus, "/status/302?location=/m&retry_after=9&header=X-M:1", method)
    assert (status, headers["Location"], headers["Retry-After"], headers["X-M"]) == (302, "/m", "9", "1")


def test_options_on_a_weighted_choice(mockstatus):
    status, headers, body = http_request(mockstatus, "/status/418,418:2?body=short&header=X-A:1")
    assert (status, body, headers["X-A"], headers["X-Mockstatus-Choice"]) == (418, b"short", "1", "418")


def test_options_on_an_unknown_code(mockstatus):
    status, headers, body = http_request(mockstatus, "/status/799?location=/x&body=custom")
    assert (status, headers["Location"], body) == (799, "/x", b"custom")
