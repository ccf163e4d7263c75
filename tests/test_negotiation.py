"""Bodies by content negotiation: text by default, JSON, HTML; English or Chinese; Vary.

Expected texts come from the catalog (load_catalog), whose Chinese texts
test_catalog.py checks against the seed list.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
import requests

from mockstatus.catalog import load_catalog

CATALOG = load_catalog()
WITH_BODY = [i.code for i in CATALOG if i.kind in ("normal", "close") and i.code not in (204, 205, 304)]
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.fixture
def session():
    with requests.Session() as s:
        yield s


def fetch(session, mockstatus, path: str, **headers) -> requests.Response:
    return session.get(mockstatus.url(path), headers=headers, allow_redirects=False, timeout=5)


class Page(HTMLParser):
    """The <title>, <h1> and <html lang> of a page, as a browser would read them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.lang = None
        self.texts: dict[str, str] = {}
        self._open: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "html":
            self.lang = dict(attrs).get("lang")
        self._open = tag

    def handle_endtag(self, tag):
        self._open = None

    def handle_data(self, data):
        if self._open:
            self.texts[self._open] = self.texts.get(self._open, "") + data


@pytest.mark.parametrize("accept", [None, "*/*", "text/plain", "image/png", "text/*"])
def test_text_is_the_default(session, mockstatus, accept):
    response = fetch(session, mockstatus, "/status/503", **({"Accept": accept} if accept else {}))
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.text == "503 Service Unavailable\n"


JSON_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/problem+json",
    "application/vnd.api+json",
    "text/plain;q=0.5, application/json",
]


@pytest.mark.parametrize("accept", JSON_TYPES)
def test_json_for_json_and_plus_json(session, mockstatus, accept):
    response = fetch(session, mockstatus, "/status/422", Accept=accept)
    assert response.headers["Content-Type"] == "application/json"
    info = CATALOG.get(422)
    assert response.json() == {
        "code": 422, "reason": "Unprocessable Content", "description": info.description_en, "standard": True,
    }  # fmt: skip


@pytest.mark.parametrize("code", WITH_BODY, ids=[f"json/status/{c}" for c in WITH_BODY])
def test_json_for_every_code(session, mockstatus, code):
    info = CATALOG.get(code)
    response = fetch(session, mockstatus, f"/status/{code}", Accept="application/json")
    assert response.status_code == code
    assert int(response.headers["Content-Length"]) == len(response.content)
    assert response.json() == {
        "code": code, "reason": info.reason, "description": info.description_en, "standard": info.standard,
    }  # fmt: skip


@pytest.mark.parametrize("code", WITH_BODY, ids=[f"zh/status/{c}" for c in WITH_BODY])
def test_chinese_description(session, mockstatus, code):
    info = CATALOG.get(code)
    response = fetch(session, mockstatus, f"/status/{code}", Accept="application/json", **{"Accept-Language": "zh"})
    assert info.description_zh and response.json()["description"] == info.description_zh


def test_chinese_is_the_seed_text(session, mockstatus):
    response = fetch(session, mockstatus, "/status/509", Accept="application/json", **{"Accept-Language": "zh-CN"})
    assert response.json()["description"] == "服务器达到带宽限制。"


@pytest.mark.parametrize(
    "accept_language,lang",
    [
        ("zh", "zh"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("zh-Hant-TW", "zh"),
        ("en-US,en;q=0.9,zh;q=0.8", "en"),
        ("en;q=0.2, zh;q=0.7", "zh"),
        ("zh;q=0", "en"),
        ("fr-FR, de", "en"),
        ("", "en"),
    ],
    ids=lambda v: v or "empty",
)
def test_language_choice(session, mockstatus, accept_language, lang):
    info = CATALOG.get(404)
    response = fetch(
        session, mockstatus, "/status/404", Accept="application/json", **{"Accept-Language": accept_language}
    )
    assert response.json()["description"] == (info.description_zh if lang == "zh" else info.description_en)


@pytest.mark.parametrize("accept", ["text/html", BROWSER_ACCEPT], ids=["text/html", "browser"])
def test_html_page(session, mockstatus, accept):
    response = fetch(session, mockstatus, "/status/418", Accept=accept)
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = Page(response.text)
    assert page.texts["title"] == "418 I'm a teapot"
    assert page.texts["h1"] == "418 I'm a teapot"
    assert page.lang == "en"
    assert CATALOG.get(418).description_en in response.text.replace("&#x27;", "'").replace("&quot;", '"')


def test_html_page_in_chinese(session, mockstatus):
    response = fetch(session, mockstatus, "/status/503", Accept="text/html", **{"Accept-Language": "zh-CN,zh"})
    page = Page(response.text)
    assert page.lang == "zh"
    assert "由于临时的服务器维护或者过载，服务器当前无法处理请求。" in response.text


def test_text_body_ignores_the_language(session, mockstatus):
    response = fetch(session, mockstatus, "/status/418", **{"Accept-Language": "zh"})
    assert response.text == CATALOG.get(418).body


@pytest.mark.parametrize("code", [200, 204, 302, 418, 503, 799], ids=lambda c: f"status/{c}")
def test_vary(session, mockstatus, code):
    response = fetch(session, mockstatus, f"/status/{code}")
    assert response.headers["Vary"] == "Accept, Accept-Language"


def test_vary_with_origin(session, mockstatus):
    response = fetch(session, mockstatus, "/status/200", Origin="http://app.test")
    assert response.headers["Vary"] == "Accept, Accept-Language, Origin"


@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_head_has_the_length_of_the_negotiated_body(session, mockstatus, accept):
    full = fetch(session, mockstatus, "/status/429", Accept=accept)
    head = session.head(mockstatus.url("/status/429"), headers={"Accept": accept}, timeout=5)
    assert head.content == b""
    assert head.headers["Content-Length"] == full.headers["Content-Length"] == str(len(full.content))
    assert head.headers["Content-Type"] == full.headers["Content-Type"]


@pytest.mark.parametrize("code", [204, 304, 205])
def test_no_body_codes_stay_empty_in_every_format(session, mockstatus, code):
    for accept in ("application/json", "text/html"):
        response = fetch(session, mockstatus, f"/status/{code}", Accept=accept)
        assert response.content == b"" and "Content-Type" not in response.headers


def test_errors_are_negotiated_too(session, mockstatus):
    as_json = fetch(session, mockstatus, "/status/abc", Accept="application/json")
    assert as_json.headers["Content-Type"] == "application/json"
    assert json.loads(as_json.text)["error"].startswith("bad code 'abc'")
    as_html = fetch(session, mockstatus, "/nowhere", Accept="text/html")
    assert as_html.headers["Content-Type"] == "text/html; charset=utf-8"
    assert Page(as_html.text).texts["h1"] == "404 Not Found"
