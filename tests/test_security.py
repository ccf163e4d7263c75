"""SECURITY.md's promises, one test each (or a pointer to the file that has it).

* Request data never becomes HTML: HTML error pages escape the values they
  name, per-code HTML pages and the browser page at ``/`` do not depend on the
  request at all, and a body given with ``body=`` is always served as text.
* ``location=`` (and a Location or Refresh set with ``header=`` or
  ``X-Mockstatus-Response-*``) is a relative path or an absolute http(s) URL;
  ``--allowed-redirect-hosts`` narrows the absolute ones.
* The default bind address is loopback.

The admin token is tested in test_journal.py; fuzzed HTML escaping in
test_properties.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from urllib.parse import quote

import pytest
from wire import exchange, http_request

MARKUP = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


# --- nothing from the request becomes markup ----------------------------------------------------

M = quote(MARKUP, safe="")
HTML_ERRORS = [
    ("bad-code", f"/status/{M}", 400),
    ("bad-list", f"/status/200,{M}", 400),
    ("bad-weight", f"/status/200:{M}", 400),
    ("bad-option-value", f"/status/200?retry_after={M}", 400),
    ("bad-location", f"/status/302?location={M}", 400),
    ("bad-header-option", f"/status/200?header={M}", 400),
    ("bad-sequence-name", f"/sequence/{M}/200", 400),
    ("bad-sequence-step", f"/sequence/s/200*{M}", 400),
    ("no-route", f"/{M}", 404),
    ("page-bad-lang", f"/?lang={M}", 400),
    ("page-no-static-file", f"/__mockstatus/static/{M}", 404),
]


@pytest.mark.parametrize("target,status", [c[1:] for c in HTML_ERRORS], ids=[f"html/{c[0]}" for c in HTML_ERRORS])
def test_html_error_pages_escape_the_value_they_name(mockstatus, target, status):
    code, headers, body = http_request(mockstatus, target, headers={"Accept": "text/html"})
    assert code == status, body
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    text = body.decode()
    assert "<script" not in text and ESCAPED.split("alert")[0] in text, text


@pytest.mark.parametrize(
    "target", [f"/status/200?{M}=1", f"/?{M}=1"], ids=["html/unknown-option", "html/page-unknown-param"]
)
def test_html_error_pages_escape_an_unknown_parameter_under_strict_options(make_mockstatus, target):
    """Only --strict-options names a parameter that looks like no option; escaped like the rest."""
    code, headers, body = http_request(make_mockstatus(strict_options=True), target, headers={"Accept": "text/html"})
    assert code == 400 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<script" not in body.decode() and "&lt;script&gt;" in body.decode()


def test_html_error_escapes_a_value_given_in_a_header(mockstatus):
    code, _, body = http_request(
        mockstatus, "/status/200", headers={"Accept": "text/html", "X-Mockstatus-Delay": MARKUP}
    )
    assert code == 400 and "<script" not in body.decode() and "&lt;script&gt;" in body.decode()


def test_parser_errors_are_plain_text_that_is_never_sniffed(mockstatus):
    """The connection layer's 400s quote the bytes they refused: text/plain plus nosniff."""
    raw = exchange(mockstatus, f"GET /status/200 HTTP/1.1\r\nHost: x\r\n{MARKUP}: 1\r\n\r\n".encode())
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"\r\nContent-Type: text/plain; charset=utf-8\r\n" in head
    assert b"\r\nX-Content-Type-Options: nosniff\r\n" in head


def test_html_status_page_does_not_depend_on_the_request(mockstatus):
    """The per-code HTML page is the catalog's: request headers, query and cookies change no byte."""
    _, _, plain = http_request(mockstatus, "/status/418", headers={"Accept": "text/html"})
    noisy = {
        "Accept": "text/html",
        "Referer": f"http://x.test/{MARKUP}",
        "User-Agent": MARKUP,
        "Cookie": f"a={MARKUP}",
        "X-Forwarded-Host": MARKUP,
        "Origin": "http://page.test",
    }
    _, headers, body = http_request(mockstatus, "/status/418?seed=1", headers=noisy)
    assert body == plain and b"<script" not in body
    assert headers["Content-Type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize(
    "target,headers",
    [
        (f"/status/200?body={M}", {"Accept": "text/html"}),
        (f"/status/200?body={M}&header=Content-Type:text/html", {"Accept": "text/html"}),
        (
            "/status/200",
            {"Accept": "text/html", "X-Mockstatus-Body": MARKUP, "X-Mockstatus-Response-Content-Type": "text/html"},
        ),
        (f"/status/404?body={M}", {"Accept": "application/json"}),
    ],
    ids=["body", "body+content-type-header", "body+content-type-as-headers", "json-accept"],
)
def test_a_body_from_the_request_is_always_served_as_text(mockstatus, target, headers):
    code, response_headers, body = http_request(mockstatus, target, headers=headers)
    assert body == MARKUP.encode()
    assert response_headers["Content-Type"] == "text/plain; charset=utf-8"  # never text/html


def test_browser_page_does_not_reflect_the_request(mockstatus):
    """The page at / is rendered once from the catalog: the same bytes whatever the request says."""
    _, _, plain = http_request(mockstatus, "/?lang=en")
    for headers in (
        {"Host": f"{MARKUP}.test", "Referer": MARKUP, "User-Agent": MARKUP, "Cookie": f"x={MARKUP}"},
        {"X-Forwarded-Host": MARKUP, "X-Forwarded-Proto": "javascript", "Accept-Language": MARKUP},
    ):
        code, response_headers, body = http_request(mockstatus, "/?lang=en", headers=headers)
        assert code == 200 and body == plain
        assert "script-src 'self'" in response_headers["Content-Security-Policy"]
    assert b"<script>alert" not in plain


# --- location= -----------------------------------------------------------------------------------

ALLOWED_LOCATIONS = [
    "/", "/status/200", "/a/b?c=d#e", "/é", "http://example.test", "https://example.test:8443/x?y#z",
    "HTTPS://EXAMPLE.TEST/", "http://user:pass@example.test/", "http://[::1]:8080/", "http://127.0.0.1/",
]  # fmt: skip
REFUSED_LOCATIONS = [
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "data:text/html,<b>x</b>",
    "vbscript:msgbox(1)", "file:///etc/passwd", "ftp://example.test/", "mailto:a@example.test",
    "//evil.test", "///evil.test", "/\\evil.test", "\\\\evil.test", "/\\/evil.test", "/\t/evil.test",
    "http://evil.test\\@good.test", "http:evil.test", "https:/evil.test", "http://", "http:///x",
    "http://[::1", " /x", "", "/x\r\nSet-Cookie: a=b", "/x\x00", "/x\x7f",
]  # fmt: skip


@pytest.mark.parametrize("location", ALLOWED_LOCATIONS)
def test_location_accepts_paths_and_http_urls(mockstatus, location):
    code, headers, _ = http_request(mockstatus, f"/status/302?location={quote(location, safe='')}")
    assert code == 302 and headers["Location"] == location.encode().decode("latin-1")


@pytest.mark.parametrize("location", REFUSED_LOCATIONS, ids=[repr(x) for x in REFUSED_LOCATIONS])
def test_location_refuses_everything_else_naming_it(mockstatus, location):
    code, headers, body = http_request(mockstatus, f"/status/302?location={quote(location, safe='')}")
    assert code == 400 and "Location" not in headers and "Set-Cookie" not in headers
    assert repr(location) in body.decode() and "bad location" in body.decode()


@pytest.mark.parametrize(
    "how",
    ["header-option", "response-header", "location-header", "refresh-header-option", "refresh-response-header"],
)
@pytest.mark.parametrize("location", ["javascript:alert(1)", "//evil.test", "/\\evil.test"])
def test_every_way_to_set_a_location_is_checked(mockstatus, how, location):
    """header=Location:..., X-Mockstatus-Response-Location and Refresh are no way around the check."""
    target, headers = "/status/302", {}
    if how == "header-option":
        target += "?header=" + quote(f"Location:{location}", safe="")
    elif how == "response-header":
        headers["X-Mockstatus-Response-Location"] = location
    elif how == "location-header":
        headers["X-Mockstatus-Location"] = location
    elif how == "refresh-header-option":
        target += "?header=" + quote(f"Refresh:0; url={location}", safe="")
    else:
        headers["X-Mockstatus-Response-Refresh"] = f"5;URL='{location}'"
    code, response_headers, body = http_request(mockstatus, target, headers=headers)
    assert code == 400, body
    assert repr(location) in body.decode()
    assert "Refresh" not in response_headers


def test_refresh_with_a_path_is_fine(mockstatus):
    code, headers, _ = http_request(mockstatus, "/status/200?header=" + quote("Refresh:0; url=/status/204", safe=""))
    assert code == 200 and headers["Refresh"] == "0; url=/status/204"


@pytest.fixture(scope="module")
def narrowed(make_mockstatus_session):
    return make_mockstatus_session(allowed_redirect_hosts=("good.test", "127.0.0.2"))


@pytest.mark.parametrize(
    "location",
    [
        "http://good.test/x",
        "HTTPS://GOOD.TEST",
        "https://user@good.test:8443/",
        "http://127.0.0.2:9/",
        "/relative/is/always/fine",
    ],
)
def test_allowed_redirect_hosts_lets_its_hosts_through(narrowed, location):
    code, headers, _ = http_request(narrowed, f"/status/302?location={quote(location, safe='')}")
    assert code == 302 and headers["Location"] == location


@pytest.mark.parametrize(
    "location,host",
    [
        ("http://evil.test/", "evil.test"),
        ("http://good.test.evil.test/", "good.test.evil.test"),
        ("http://evilgood.test/", "evilgood.test"),
        ("http://good.test@evil.test/", "evil.test"),  # userinfo, then the real host
        ("http://good.test:80@evil.test/", "evil.test"),
        ("http://evil.test#@good.test", "evil.test"),
        ("http://evil.test?@good.test", "evil.test"),
        ("http://good.test./", "good.test."),
        ("http://127.0.0.1/", "127.0.0.1"),
        ("http://good\u3002test/", "good\u3002test"),  # an ideographic full stop, which IDNA maps to "."
    ],
)
def test_allowed_redirect_hosts_refuses_other_hosts_naming_them(narrowed, location, host):
    code, headers, body = http_request(narrowed, f"/status/302?location={quote(location, safe='')}")
    assert code == 400 and "Location" not in headers
    assert f"host {host!r} is not allowed; allowed hosts: good.test, 127.0.0.2" in body.decode()


def test_allowed_redirect_hosts_also_covers_header_option(narrowed):
    code, _, body = http_request(narrowed, "/status/302?header=" + quote("Location:http://evil.test/", safe=""))
    assert code == 400 and "'evil.test' is not allowed" in body.decode()


def test_catalog_locations_are_the_operators_and_not_narrowed(narrowed):
    # 305's catalog Location is absolute, to a host not on the list: the check is for request input.
    code, headers, _ = http_request(narrowed, "/status/305")
    assert code == 305 and headers["Location"] == "http://127.0.0.1:8080/"


# --- the bind address ---------------------------------------------------------------------------


def test_default_bind_address_is_loopback(tmp_path):
    """Started with no --host, the server listens on 127.0.0.1 only (checked in /proc/net/tcp)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mockstatus", "serve", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        match = re.fullmatch(r"mockstatus listening on http://127\.0\.0\.1:(\d+)\n", line)
        assert match, line
        port = int(match.group(1))
        listening = [
            row.split()[1]
            for row in open(f"/proc/{process.pid}/net/tcp").read().splitlines()[1:]
            if row.split()[3] == "0A"  # LISTEN
        ]
        assert f"0100007F:{port:04X}" in listening, listening  # 127.0.0.1, not 00000000 (any)
        assert not [
            address for address in listening if address.endswith(f":{port:04X}") and address != f"0100007F:{port:04X}"
        ]
    finally:
        process.terminate()
        process.wait(10)
