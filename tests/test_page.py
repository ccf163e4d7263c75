"""``GET /``: the HTML the server sends, read without a browser.

What the page looks like and does in a real browser is in test_browser.py.
"""

from __future__ import annotations

import gzip
import re
from html.parser import HTMLParser

import pytest
import requests

from mockstatus.page import wire_badges

IDENTITY = {"Accept-Encoding": "identity"}


class Outline(HTMLParser):
    """The parts of the page the tests look at: code entries, their class section, badges, assets."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.codes: dict[int, dict] = {}
        self.order: list[int] = []
        self.section: str | None = None
        self.current: dict | None = None
        self.assets: list[str] = []
        self.scripts = 0
        self.html_lang: str | None = None
        self._in_desc = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "html":
            self.html_lang = a.get("lang")
        if tag == "section" and "group" in classes:
            self.section = a["id"]
        if tag == "li" and "code" in classes:
            code = int(a["data-code"])
            self.current = {"section": self.section, "badges": [], "links": [], "search": a["data-search"], "desc": ""}
            self.codes[code] = self.current
            self.order.append(code)
        if self.current is not None:
            if tag == "span" and "badge" in classes:
                self.current["badges"].append(next(c[2:] for c in classes if c.startswith("b-")))
            if tag == "a":
                self.current["links"].append(a.get("href"))
            if tag == "p" and "desc" in classes:
                self._in_desc = True
        if tag == "script":
            self.scripts += 1
            if a.get("src"):
                self.assets.append(a["src"])
        if tag == "link" and a.get("rel") == "stylesheet":
            self.assets.append(a["href"])

    def handle_endtag(self, tag):
        if tag == "li":
            self.current = None
        if tag == "p":
            self._in_desc = False

    def handle_data(self, data):
        if self._in_desc and self.current is not None:
            self.current["desc"] += data


def outline(text: str) -> Outline:
    parser = Outline()
    parser.feed(text)
    return parser


def get_page(server, path="/", **headers) -> requests.Response:
    return requests.get(server.url(path), headers={**IDENTITY, **headers}, timeout=5)


def test_index_lists_every_catalog_code_grouped_by_class(mockstatus):
    response = get_page(mockstatus)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    page = outline(response.text)
    catalog = mockstatus.state.catalog
    assert page.order == [info.code for info in catalog]
    for info in catalog:
        entry = page.codes[info.code]
        assert entry["section"] == f"class-{info.code // 100}"
        assert f"status/{info.code}" in entry["links"]
        assert f'href="#wire-{info.code}" data-code="{info.code}"' in response.text  # the card's "Show the wire"
        assert entry["desc"] == info.description("en")
    assert 'id="t-wire"' in response.text and '<dialog id="wire"' in response.text


def test_badges_are_derived_from_the_catalog(mockstatus):
    page = outline(get_page(mockstatus).text)
    for info in mockstatus.state.catalog:
        expected = wire_badges(info) + ([] if info.standard else ["unofficial"])
        assert page.codes[info.code]["badges"] == expected, info.code


OVERLAY_BADGES = {
    "codes": {
        250: {"reason": "Closing", "kind": "close"},
        251: {"reason": "Later", "headers": {"Retry-After": "7"}},
        252: {"reason": "Who", "headers": {"WWW-Authenticate": 'Bearer realm="x"'}},
        253: {"reason": "Elsewhere", "headers": {"Location": "/status/200"}},
        254: {"reason": "Slow", "delay": "1s"},
        255: {"reason": "Broken", "kind": "truncate", "standard": True},
    }
}


@pytest.mark.parametrize(
    ("code", "badge"),
    [(250, "closes"), (251, "retry-after"), (252, "auth"), (253, "location"), (254, "delay"), (255, "closes")],
    ids=["kind-close", "retry-after", "www-authenticate", "location", "delay", "kind-truncate"],
)
def test_badge_follows_a_catalog_overlay(make_mockstatus, code, badge):
    server = make_mockstatus(OVERLAY_BADGES)
    entry = outline(get_page(server).text).codes[code]
    assert badge in entry["badges"]
    assert ("unofficial" in entry["badges"]) == (code != 255)


def _wire_badge_cases():
    from mockstatus.catalog import load_catalog

    for info in load_catalog():
        if info.kind != "normal":
            continue
        for badge in wire_badges(info):
            if badge in ("location", "no-body", "retry-after", "auth"):
                yield pytest.param(info.code, badge, id=f"{badge}/status/{info.code}")


@pytest.mark.parametrize(("code", "badge"), list(_wire_badge_cases()))
def test_badge_tells_the_truth_about_the_wire(mockstatus, code, badge):
    response = requests.get(mockstatus.url(f"/status/{code}"), allow_redirects=False, timeout=5)
    assert response.status_code == code
    if badge == "location":
        assert response.headers.get("Location")
    elif badge == "no-body":
        assert response.content == b""
    elif badge == "retry-after":
        assert response.headers.get("Retry-After")
    elif badge == "auth":
        assert response.headers.get("WWW-Authenticate") or response.headers.get("Proxy-Authenticate")


EVIL = {
    "codes": {
        299: {
            "reason": "<img src=x onerror=alert(1)>",
            "source": '"><script>alert("source")</script>',
            "description": {"en": "<script>alert('en')</script> & </script>", "zh": "<script>alert('zh')</script>"},
            "headers": {"X-Evil": "<script>alert('header')</script>"},
        },
        418: {"description": {"en": "</script><script>alert('json')</script>"}},
    }
}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_catalog_values_are_escaped(make_mockstatus, lang):
    server = make_mockstatus(EVIL)
    text = get_page(server, f"/?lang={lang}").text
    lowered = text.lower()
    assert "<script>alert" not in lowered
    assert "<img src=x" not in lowered
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&lt;script&gt;alert(" in text
    page = outline(text)
    # Two real <script> elements (page.js and the JSON block), nothing more.
    assert page.scripts == 2
    assert lowered.count("</script>") == 2
    entry = page.codes[299]
    # Escaped, not dropped: the parsed text and attributes are the catalog's own.
    assert entry["desc"] == server.state.catalog.get(299).description(lang)
    assert "<img src=x onerror=alert(1)>" in entry["search"]


@pytest.mark.parametrize(
    ("accept_language", "query", "lang"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "", "zh"),
        ("zh", "", "zh"),
        ("en-US,en;q=0.9,zh;q=0.5", "", "en"),
        (None, "", "en"),
        ("zh-CN", "?lang=en", "en"),
        ("en", "?lang=zh", "zh"),
    ],
    ids=["zh-CN-first", "zh", "en-first", "none", "query-en-wins", "query-zh-wins"],
)
def test_language_from_accept_language_or_query(mockstatus, accept_language, query, lang):
    headers = {"Accept-Language": accept_language} if accept_language else {}
    response = get_page(mockstatus, "/" + query, **headers)
    assert response.status_code == 200
    assert response.headers["Content-Language"] == lang
    assert "Accept-Language" in response.headers["Vary"]
    page = outline(response.text)
    assert page.html_lang == lang
    for info in mockstatus.state.catalog:
        assert page.codes[info.code]["desc"] == info.description(lang)
    chinese = mockstatus.state.catalog.get(100).description_zh
    assert (chinese in response.text) == (lang == "zh")


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/?lang=fr", ["'fr'", "en, zh"]),
        ("/?lang=", ["''", "en, zh"]),
        ("/?lnag=zh", ["'lnag'", "did you mean 'lang'?"]),
    ],
    ids=["bad/?lang=fr", "bad/?lang=", "bad/?lnag=zh"],
)
def test_bad_query_is_a_400_that_names_it(mockstatus, path, words):
    response = get_page(mockstatus, path)
    assert response.status_code == 400
    for word in words:
        assert word in response.text


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_get_405_with_allow(mockstatus, method):
    response = requests.request(method, mockstatus.url("/"), timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert method in response.text


def test_head_has_the_headers_and_no_body(mockstatus):
    get = get_page(mockstatus)
    head = requests.head(mockstatus.url("/"), headers=IDENTITY, timeout=5)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Length"] == str(len(get.content))
    assert head.headers["ETag"] == get.headers["ETag"]


def test_page_views_are_not_in_the_journal(mockstatus):
    get_page(mockstatus)
    get_page(mockstatus, "/__mockstatus/static/page.js")
    requests.get(mockstatus.url("/status/204"), timeout=5)
    assert [entry["path"] for entry in mockstatus.requests()] == ["/status/204"]


def test_page_is_self_contained_and_locked_to_its_origin(mockstatus):
    response = get_page(mockstatus)
    page = outline(response.text)
    assert sorted(page.assets) == ["__mockstatus/static/page.css", "__mockstatus/static/page.js"]
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "http://" not in response.text.split("<body", 1)[0] and "https://" not in response.text.split("<body", 1)[0]
    types = {"page.css": "text/css; charset=utf-8", "page.js": "text/javascript; charset=utf-8"}
    for asset in page.assets:
        got = get_page(mockstatus, "/" + asset)
        assert got.status_code == 200
        assert got.headers["Content-Type"] == types[asset.rsplit("/", 1)[1]]
        assert got.headers["X-Content-Type-Options"] == "nosniff"
        assert len(got.content) > 1000


def test_unknown_static_file_is_a_404_that_lists_the_files(mockstatus):
    response = get_page(mockstatus, "/__mockstatus/static/../page.py")
    assert response.status_code == 404
    response = get_page(mockstatus, "/__mockstatus/static/app.js")
    assert response.status_code == 404
    assert "'app.js'" in response.text and "page.css, page.js" in response.text


@pytest.mark.parametrize("path", ["/", "/__mockstatus/static/page.js"], ids=["page", "static"])
def test_gzip_when_asked_and_its_own_etag(mockstatus, path):
    plain = get_page(mockstatus, path)
    zipped = requests.get(mockstatus.url(path), headers={"Accept-Encoding": "gzip"}, timeout=5, stream=True)
    raw = zipped.raw.read(decode_content=False)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    assert gzip.decompress(raw) == plain.content
    assert len(raw) < len(plain.content) / 2
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    refused = requests.get(mockstatus.url(path), headers={"Accept-Encoding": "gzip;q=0, br"}, timeout=5, stream=True)
    assert "Content-Encoding" not in refused.headers
    assert refused.raw.read(decode_content=False) == plain.content


def test_if_none_match_gets_304(mockstatus):
    first = get_page(mockstatus)
    again = get_page(mockstatus, **{"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == first.headers["ETag"]
    other_lang = get_page(mockstatus, "/?lang=zh", **{"If-None-Match": first.headers["ETag"]})
    assert other_lang.status_code == 200
    assert get_page(mockstatus, **{"If-None-Match": "*"}).status_code == 304
    assert get_page(mockstatus, **{"If-None-Match": '"something-else"'}).status_code == 200


def test_fault_list_offers_every_fault_with_what_a_browser_sees(mockstatus):
    from mockstatus.catalog import FAULTS, parse_fault
    from mockstatus.kinds import kind_of

    html = requests.get(mockstatus.url("/"), headers=IDENTITY, timeout=5).text
    select = html.split('<select id="t-fault"', 1)[1].split("</select>", 1)[0]
    offered = dict(re.findall(r'<option value="([^"]+)" data-view="([a-z]+)"', select))
    assert [parse_fault(value).name for value in offered] == list(FAULTS)
    assert offered["reset-after:64"] == offered["stall"] == "fault"
    assert offered["early-response"] == offered["stale-keepalive:100ms"] == offered["no-length"] == "ok"
    assert all(view == kind_of(value)[0].browser for value, view in offered.items())
