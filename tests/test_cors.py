"""CORS for browser callers: Allow-Origin, Expose-Headers, real preflights, plain OPTIONS.

The header checks use requests; the last test makes a real cross-origin
``fetch()`` from headless chromium (page on 127.0.0.1, API on localhost), which
is what the headers are for.
"""

from __future__ import annotations

import os

import pytest
import requests

from mockstatus.cors import PREFLIGHT_METHODS

ORIGIN = "http://app.test:3000"
MUST_EXPOSE = {"Location", "Retry-After", "WWW-Authenticate", "Proxy-Authenticate"}


def exposed(response: requests.Response) -> set[str]:
    return {name.strip() for name in response.headers["Access-Control-Expose-Headers"].split(",")}


def test_without_origin_any_origin_may_read(mockstatus):
    response = requests.get(mockstatus.url("/status/503"), timeout=5)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    # Expose-Headers matters only to a cross-origin fetch(), which always sends Origin.
    assert "Access-Control-Expose-Headers" not in response.headers


@pytest.mark.parametrize("path", ["/status/503", "/status/401", "/status/200,503", "/status/abc", "/nowhere"])
def test_origin_is_echoed(mockstatus, path):
    response = requests.get(mockstatus.url(path), headers={"Origin": ORIGIN}, allow_redirects=False, timeout=5)
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in [v.strip() for v in response.headers["Vary"].split(",")]  # caches keep origins apart
    assert MUST_EXPOSE <= exposed(response)


@pytest.mark.parametrize("code", [201, 301, 302, 304, 401, 407, 429, 503], ids=lambda c: f"status/{c}")
def test_the_headers_a_code_sets_are_exposed(mockstatus, code):
    response = requests.get(
        mockstatus.url(f"/status/{code}"), headers={"Origin": ORIGIN}, allow_redirects=False, timeout=5
    )
    assert MUST_EXPOSE <= exposed(response)
    semantic = {"Location", "Retry-After", "WWW-Authenticate", "Proxy-Authenticate", "ETag"}
    for name in response.headers:
        if name in semantic:
            assert name in exposed(response), name


def test_every_mockstatus_response_header_is_exposed(mockstatus):
    """Whatever X-Mockstatus-* header a reply carries, a page's fetch() may read it."""
    seen: set[str] = set()
    for path in ("/status/200,503?seed=1", "/sequence/cors-check/503,200", "/status/418:2,500"):
        response = requests.get(mockstatus.url(path), headers={"Origin": ORIGIN}, timeout=5)
        names = {name for name in response.headers if name.lower().startswith("x-mockstatus-")}
        assert names <= exposed(response), names - exposed(response)
        seen |= names
    assert {"X-Mockstatus-Choice", "X-Mockstatus-Sequence", "X-Mockstatus-Step"} <= seen


PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type, x-mockstatus-delay"}  # fmt: skip


@pytest.mark.parametrize("path", ["/status/500", "/status/200", "/status/200,503:2", "/status/423"])
def test_preflight(mockstatus, path):
    response = requests.options(mockstatus.url(path), headers=PREFLIGHT, timeout=5)
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "PUT", "DELETE", "PATCH", "PROPFIND", "LOCK", "UNLOCK", "MKCOL", "COPY", "MOVE"} <= methods
    assert response.headers["Access-Control-Allow-Headers"] == "content-type, x-mockstatus-delay"
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "X-Mockstatus-Choice" not in response.headers  # nothing was picked


def test_preflight_without_origin_header(mockstatus):
    response = requests.options(
        mockstatus.url("/status/500"), headers={"Access-Control-Request-Method": "GET"}, timeout=5
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_preflight_does_not_use_up_a_sequence_step(mockstatus):
    assert (
        requests.options(mockstatus.url("/sequence/cors-pre/503,200"), headers=PREFLIGHT, timeout=5).status_code == 204
    )
    assert requests.get(mockstatus.url("/sequence/cors-pre/503,200"), timeout=5).status_code == 503


@pytest.mark.parametrize("headers", [{}, {"Origin": ORIGIN}], ids=["plain", "with-origin"])
def test_plain_options_gets_the_code(mockstatus, headers):
    response = requests.options(mockstatus.url("/status/500"), headers=headers, timeout=5)
    assert response.status_code == 500
    assert response.text == "500 Internal Server Error\n"


def test_advertised_methods_all_work(mockstatus):
    for method in (m.strip() for m in PREFLIGHT_METHODS.split(",")):
        response = requests.request(method, mockstatus.url("/status/423"), timeout=5)
        assert response.status_code == 423, method


# --- a real browser -----------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def chromium():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs it", pytrace=False)
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield browser
        browser.close()


FETCH = """async ([url, init]) => {
  const r = await fetch(url, init);
  return {status: r.status, retry: r.headers.get("Retry-After"), location: r.headers.get("Location"),
          choice: r.headers.get("X-Mockstatus-Choice"), body: await r.text()};
}"""


@pytest.mark.browser
def test_cross_origin_fetch_from_a_browser(mockstatus, chromium):
    """Page on 127.0.0.1, API on localhost: a preflighted, credentialed fetch reads the semantic headers."""
    page = chromium.new_page()
    try:
        page.goto(mockstatus.url("/__mockstatus/health"))
        api = f"http://localhost:{mockstatus.port}"
        init = {"method": "PUT", "credentials": "include", "headers": {"X-Mockstatus-Retry-After": "7"}}
        result = page.evaluate(FETCH, [f"{api}/status/503,503", init])
        assert result == {"status": 503, "retry": "7", "location": None, "choice": "503",
                          "body": "503 Service Unavailable\n"}  # fmt: skip
        result = page.evaluate(FETCH, [f"{api}/status/201", {"credentials": "include"}])
        assert (result["status"], result["location"]) == (201, "/status/200")
    finally:
        page.close()
    methods = [entry["method"] for entry in mockstatus.requests(path="/status/503,503")]
    assert methods == ["OPTIONS", "PUT"]  # the browser really preflighted
