"""The browser page in a real browser: headless Debian chromium driven by Playwright.

Never downloads a browser: it launches /usr/bin/chromium (``apt-get install
chromium``; .ci/run does that).  Without it these tests skip locally and fail
under ``CI=true``.  Screenshots go to test-artifacts/ (gitignored).
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest

from mockstatus.bodies import text_body

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
WIDE = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 10_000


def _missing_browser() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (install it with: apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def browser():
    missing = _missing_browser()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run in CI: {missing}", pytrace=False)
        pytest.skip(f"browser tests skipped: {missing}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Visit:
    """One browser context on one server, recording console errors and every request."""

    def __init__(self, browser, server, viewport=WIDE, **context_args):
        self.server = server
        self.context = browser.new_context(viewport=viewport, **context_args)
        self.context.set_default_timeout(TIMEOUT_MS)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.urls: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        self.page.on("request", lambda request: self.urls.append(request.url))
        self.page.on("dialog", self._dialog)

    def _console(self, message):
        # Chromium logs every non-2xx fetch as "Failed to load resource"; those are the point here.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, path="/"):
        response = self.page.goto(self.server.url(path))
        assert response is not None and response.status == 200
        self.page.wait_for_selector("html.js")
        return self.page

    def check_clean(self):
        assert self.errors == []
        assert self.dialogs == []
        foreign = [
            url for url in self.urls if not url.startswith(self.server.base_url + "/") and not url.startswith("data:")
        ]
        assert foreign == [], "the page must not load anything from another origin"


@pytest.fixture
def visit(browser, mockstatus):
    visits = []

    def make(server=None, viewport=WIDE, **context_args):
        v = Visit(browser, server or mockstatus, viewport, **context_args)
        visits.append(v)
        return v

    yield make
    for v in visits:
        v.check_clean()
        v.context.close()


def run_panel(page):
    """Press Run and wait for this run's outcome."""
    page.evaluate("document.getElementById('r-status').textContent = ''")
    page.click("#t-run")
    page.wait_for_function(
        "() => { const s = document.getElementById('r-status').textContent;"
        " return s && !document.getElementById('t-run').disabled && s !== JSON.parse("
        "document.getElementById('ms-data').textContent).text.running; }"
    )


def shown_codes(page) -> list[int]:
    return [int(c) for c in page.eval_on_selector_all("li.code:not([hidden])", "els => els.map(e => e.dataset.code)")]


def screenshot(page, name: str, full_page: bool = False) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000
    return path


# --- the list ----------------------------------------------------------------------


def test_page_lists_every_catalog_code(visit, mockstatus):
    v = visit()
    page = v.open()
    catalog = mockstatus.state.catalog
    assert shown_codes(page) == [info.code for info in catalog]
    hrefs = page.eval_on_selector_all("li.code a.open", "els => els.map(e => e.href)")
    assert hrefs == [mockstatus.url(f"/status/{info.code}") for info in catalog]
    for info in (catalog.get(418), catalog.get(600)):
        text = page.inner_text(f"#s{info.code}")
        assert info.reason in text and info.description("en") in text
    assert page.inner_text("#q-count") == f"{len(catalog)} of {len(catalog)} codes"
    screenshot(page, "index-wide")
    screenshot(page, "index-wide-full", full_page=True)


def test_language_switch_changes_descriptions(visit, mockstatus):
    info = mockstatus.state.catalog.get(100)
    v = visit()
    page = v.open()
    assert page.inner_text("#s100 .desc") == info.description_en
    page.fill("#t-delay", "250ms")  # the panel's state survives the switch
    with page.expect_navigation():
        page.click(".langs a[lang=zh]")
    page.wait_for_selector("html.js")
    assert page.get_attribute("html", "lang") == "zh"
    assert page.inner_text("#s100 .desc") == info.description_zh
    assert info.description_en not in page.content()
    assert page.input_value("#t-delay") == "250ms"
    screenshot(page, "index-zh")
    with page.expect_navigation():
        page.click(".langs a[lang=en]")
    assert page.inner_text("#s100 .desc") == info.description_en


def test_accept_language_zh_picks_chinese_first(visit, mockstatus):
    v = visit(locale="zh-CN")
    page = v.open()
    assert page.get_attribute("html", "lang") == "zh"
    assert page.inner_text("#s100 .desc") == mockstatus.state.catalog.get(100).description_zh
    assert page.get_attribute(".langs a[lang=zh]", "aria-current") == "true"


def test_search_filters_by_code_class_and_words(visit, mockstatus):
    catalog = mockstatus.state.catalog
    v = visit()
    page = v.open()
    page.fill("#q", "50")
    assert shown_codes(page) == [info.code for info in catalog if str(info.code).startswith("50")]
    page.fill("#q", "4xx")
    assert shown_codes(page) == [info.code for info in catalog if info.code // 100 == 4]
    assert page.is_hidden("#class-2")
    page.fill("#q", "teapot")
    shown = shown_codes(page)
    assert 418 in shown and len(shown) < len(catalog)
    for code in shown:
        assert "teapot" in page.inner_text(f"#s{code}").lower()
    page.fill("#q", "Cloudflare TIMED")  # every word must match, in any case
    both = [
        info.code
        for info in catalog
        if all(word in f"{info.reason} {info.description_en} {info.source}".lower() for word in ("cloudflare", "timed"))
    ]
    assert 1 <= len(both) < 5
    assert shown_codes(page) == both
    page.fill("#q", "zzzz-no-such-thing")
    assert shown_codes(page) == []
    assert page.is_visible("#q-none")
    assert page.inner_text("#q-count") == f"0 of {len(catalog)} codes"
    page.fill("#q", "")
    assert len(shown_codes(page)) == len(catalog)
    assert page.is_hidden("#q-none")


def test_link_to_404_renders_its_html_page(visit, mockstatus):
    info = mockstatus.state.catalog.get(404)
    v = visit()
    page = v.open()
    with page.expect_navigation() as navigation:
        page.click('li.code a[href="status/404"]')
    response = navigation.value
    assert response.status == 404
    assert response.headers["content-type"].startswith("text/html")
    assert page.inner_text("h1") == f"404 {info.reason}"
    assert info.description_en in page.inner_text("body")
    with page.expect_navigation():
        page.click("text=All status codes")  # and back to the list
    assert page.url == mockstatus.url("/")


# --- the try-it panel ---------------------------------------------------------------


def test_try_418_shows_status_headers_and_body(visit, mockstatus):
    info = mockstatus.state.catalog.get(418)
    v = visit()
    page = v.open()
    page.select_option("#t-code", "418")
    assert page.input_value("#t-url") == mockstatus.url("/status/418")
    assert page.input_value("#t-curl") == f"curl -i '{mockstatus.url('/status/418')}'"
    run_panel(page)
    assert page.inner_text("#r-status") == f"418 {info.reason}"
    assert page.text_content("#r-body") == text_body(info)
    headers = page.text_content("#r-headers")
    for name, value in info.headers:
        assert f"{name.lower()}: {value}" in headers
    assert re.fullmatch(r"Headers after \d+ ms, complete after \d+ ms", page.inner_text("#r-time"))
    assert page.evaluate("document.activeElement.id") == "r-status"
    screenshot(page, "try-418-wide")


def test_try_302_follows_and_says_where_it_ended(visit, mockstatus):
    location = mockstatus.state.catalog.get(302).header("Location")
    final = mockstatus.state.catalog.get(200)
    v = visit()
    page = v.open()
    page.select_option("#t-code", "302")
    run_panel(page)
    assert page.inner_text("#r-status") == f"200 {final.reason}"
    info = page.inner_text("#r-info")
    assert f"followed the redirect to {mockstatus.url(location)}" in info
    assert page.text_content("#r-body") == text_body(final)
    screenshot(page, "try-302-followed")
    # Not following: the browser hides the 3xx from scripts, and the panel says so.
    page.uncheck("#t-follow")
    run_panel(page)
    assert page.inner_text("#r-status") == "3xx (opaque redirect)"
    assert "opaque redirect" in page.inner_text("#r-info")
    # The curl command is what shows the 302 itself (no -L).
    assert page.input_value("#t-curl") == f"curl -i '{mockstatus.url('/status/302')}'"


def test_try_with_location_and_extra_headers(visit, mockstatus):
    v = visit()
    page = v.open()
    page.select_option("#t-code", "307")
    page.fill("#t-location", "/status/201")
    page.fill("#t-headers", "X-Demo: one\nX-Other: two words")
    url = page.input_value("#t-url")
    assert url == mockstatus.url("/status/307?location=%2Fstatus%2F201&header=X-Demo%3Aone&header=X-Other%3Atwo+words")
    run_panel(page)
    assert page.inner_text("#r-status") == f"201 {mockstatus.state.catalog.get(201).reason}"
    assert mockstatus.url("/status/201") in page.inner_text("#r-info")
    seen = mockstatus.requests(path="/status/307")
    assert seen and seen[-1]["status"] == 307


def test_delay_shows_the_time_taken(visit, mockstatus):
    v = visit()
    page = v.open()
    page.select_option("#t-code", "200")
    page.fill("#t-delay", "300ms")
    run_panel(page)
    assert page.inner_text("#r-status") == "200 OK"
    elapsed = int(page.get_attribute("#r-time", "data-ms"))
    assert 300 <= elapsed < 5000
    assert f"complete after {elapsed} ms" in page.inner_text("#r-time")
    assert "server-timing: delay;dur=300" in page.text_content("#r-headers")


def test_the_panel_offers_a_rate_limit_whose_429_says_when(visit):
    v = visit()
    page = v.open()
    page.select_option("#t-code", "200")
    page.fill("#t-limit", "1/1m")
    assert page.input_value("#t-url").endswith("/status/200?limit=1%2F1m")
    run_panel(page)
    assert page.inner_text("#r-status") == "200 OK"
    assert "ratelimit-remaining: 0" in page.text_content("#r-headers")
    run_panel(page)
    assert page.inner_text("#r-status") == "429 Too Many Requests"
    assert "retry-after: 60" in page.text_content("#r-headers")


def test_the_panel_offers_an_outage(visit):
    v = visit()
    page = v.open()
    page.select_option("#t-code", "204")
    page.fill("#t-outage", "30s")
    run_panel(page)
    assert page.inner_text("#r-status") == "503 Service Unavailable"
    assert "retry-after: 30" in page.text_content("#r-headers")


def test_bad_option_shows_the_servers_400(visit):
    v = visit()
    page = v.open()
    page.fill("#t-delay", "soon")
    run_panel(page)
    assert page.inner_text("#r-status") == "400 Bad Request"
    assert "'soon'" in page.text_content("#r-body")


@pytest.mark.parametrize(
    ("code", "fault", "words", "curl_flag"),
    [
        ("100", "", "fetch shows only the final 200", None),
        ("101", "", "cannot show 101", None),
        ("600", "", "cannot show 600", "--http0.9"),
        ("444", "", "cannot show 444", None),
        ("407", "", "Browsers refuse a 407", None),
        ("200", "reset", "fault=reset", None),
        ("200", "reset-after:64", "fault=reset-after:64", None),
    ],
    ids=[
        "interim/status/100",
        "upgrade/status/101",
        "headerless/status/600",
        "empty/status/444",
        "proxy/status/407",
        "fault/status/200?fault=reset",
        "fault/status/200?fault=reset-after:64",
    ],
)
def test_panel_says_what_a_browser_cannot_show(visit, mockstatus, code, fault, words, curl_flag):
    v = visit()
    page = v.open()
    page.select_option("#t-code", code)
    page.select_option("#t-fault", fault)
    assert page.is_visible("#t-note")
    assert words in page.inner_text("#t-note")
    curl = page.input_value("#t-curl")
    assert curl.startswith("curl -i ") and curl.endswith(f"'{page.input_value('#t-url')}'")
    if curl_flag:
        assert curl_flag in curl
    if code == "101":
        assert page.is_disabled("#t-run")  # fetch cannot ask for a switch; it would hang on the echo
        return
    run_panel(page)
    if code == "100":
        assert page.inner_text("#r-status") == "200 OK"
    else:
        # What a browser client really gets: a network error, explained.
        assert page.inner_text("#r-status") == "network error"
        assert "curl command" in page.inner_text("#r-info")


def test_plain_codes_have_no_note(visit):
    v = visit()
    page = v.open()
    for code in ("200", "404", "503", "401", "408"):
        page.select_option("#t-code", code)
        assert page.is_hidden("#t-note"), code
    for fault in ("no-length", "early-response", "stale-keepalive:100ms", "close-after-requests:2"):
        page.select_option("#t-fault", fault)  # the reply arrives whole: browsers read it fine
        assert page.is_hidden("#t-note"), fault


def test_weighted_list_reports_the_pick(visit, mockstatus):
    v = visit()
    page = v.open()
    page.check("input[name=mode][value=list]")
    assert page.is_visible("#t-list") and page.is_hidden("#t-code")
    page.fill("#t-list", "418:2,418:0.5")
    assert page.input_value("#t-url") == mockstatus.url("/status/418:2,418:0.5")
    run_panel(page)
    assert page.inner_text("#r-status").startswith("418 ")
    assert "The server picked 418." in page.inner_text("#r-info")
    page.fill("#t-list", "200,101")
    assert "(101)" in page.inner_text("#t-note")


def test_sequence_steps_and_reset(visit, mockstatus):
    name = f"page-{uuid.uuid4().hex[:8]}"
    v = visit()
    page = v.open()
    page.check("input[name=mode][value=sequence]")
    page.fill("#t-seq-name", name)
    page.fill("#t-seq", "503,200")
    assert page.input_value("#t-url") == mockstatus.url(f"/sequence/{name}/503,200")
    statuses = []
    for _ in range(3):
        run_panel(page)
        statuses.append(page.inner_text("#r-status").split()[0])
    assert statuses == ["503", "200", "200"]
    assert f"Sequence {name}, step 2." in page.inner_text("#r-info")
    page.click("#t-seq-reset")
    page.wait_for_function("() => document.getElementById('t-copied').textContent.includes('reset')")
    run_panel(page)
    assert page.inner_text("#r-status").startswith("503 ")


def test_try_button_on_a_code_fills_the_panel(visit, mockstatus):
    v = visit()
    page = v.open()
    page.click('button.try[data-code="429"]')
    assert page.input_value("#t-code") == "429"
    assert page.evaluate("document.activeElement.id") == "t-run"
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('r-status').textContent.startsWith('429')")
    assert "retry-after: 1" in page.text_content("#r-headers")


def test_keyboard_only_run(visit, mockstatus):
    """Tab to the skip link, jump to the panel, pick 302 by typing, set a delay, Enter."""
    v = visit()
    page = v.open()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "try-title"
    page.keyboard.press("Tab")  # the checked radio: one tab stop for the group
    assert page.evaluate("document.activeElement.value") == "single"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "t-code"
    page.keyboard.type("302")  # type-ahead in a closed <select>
    assert page.input_value("#t-code") == "302"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "t-delay"
    page.keyboard.type("100ms")
    page.keyboard.press("Enter")  # implicit submission runs it
    page.wait_for_function("() => document.getElementById('r-status').textContent.startsWith('200')")
    assert page.evaluate("document.activeElement.id") == "r-status"
    assert "followed the redirect" in page.inner_text("#r-info")
    assert int(page.get_attribute("#r-time", "data-ms")) >= 100


def test_copy_buttons_put_the_text_on_the_clipboard(visit, mockstatus):
    v = visit()
    v.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=mockstatus.base_url)
    page = v.open()
    page.select_option("#t-code", "503")
    page.click("button[data-copy=t-curl]")
    page.wait_for_function("() => document.getElementById('t-copied').textContent === 'Copied'")
    assert page.evaluate("navigator.clipboard.readText()") == f"curl -i '{mockstatus.url('/status/503')}'"


def test_catalog_html_stays_text_in_the_browser(visit, make_mockstatus):
    server = make_mockstatus(
        {"codes": {299: {"reason": "<img src=x onerror=alert(1)>", "description": {"en": "<script>alert(2)</script>"}}}}
    )
    v = visit(server)
    page = v.open()
    assert page.inner_text("#s299 .reason") == "<img src=x onerror=alert(1)>"
    assert page.inner_text("#s299 .desc") == "<script>alert(2)</script>"
    assert page.locator("#s299 img").count() == 0
    page.select_option("#t-code", "299")
    run_panel(page)
    assert page.inner_text("#r-status") == "299 <img src=x onerror=alert(1)>"
    # visit's teardown fails the test if an alert() dialog ever opened


def test_phone_width_reads_without_sideways_scrolling(visit, mockstatus):
    v = visit(viewport=PHONE, is_mobile=True, has_touch=True)
    page = v.open()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "index-phone")
    page.click('button.try[data-code="302"]')
    page.fill("#t-headers", "X-A-Rather-Long-Header-Name: with a long value that has to wrap on a phone")
    run_panel(page)
    page.locator("#t-result").scroll_into_view_if_needed()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "try-302-phone")


# --- the wire view ----------------------------------------------------------------------


def show_the_wire(page):
    """Press "Show the wire" and wait until the transcript and fetch() have both answered."""
    page.click("#t-wire")
    page.wait_for_selector("dialog#wire[open][data-state=done]")


def timeline(page) -> list[dict]:
    return page.eval_on_selector_all(
        "#w-timeline li",
        "els => els.map(e => ({kind: e.dataset.kind, status: e.dataset.status, how: e.dataset.how,"
        " ms: Number(e.dataset.ms), text: e.textContent}))",
    )


def test_wire_view_of_100_then_201_shows_the_interim_before_the_final(visit, mockstatus):
    v = visit()
    page = v.open()
    page.select_option("#t-code", "100")
    show_the_wire(page)
    events = timeline(page)
    kinds = [(e["kind"], e["status"]) for e in events if e["kind"] in ("interim", "final")]
    assert kinds == [("interim", "100"), ("final", "200")]
    assert events[-1]["kind"] == "end" and events[-1]["how"] == "open"
    raw = page.text_content("#w-raw")
    assert raw.startswith("HTTP/1.1 100 Continue\\r\\n\n\\r\\n\nHTTP/1.1 200 OK\\r\\n\n")
    # fetch() beside it saw only the final reply
    assert page.inner_text("#w-f-status") == "200 OK"
    assert page.is_visible("#w-f-status") and page.is_visible("#w-raw")


def test_wire_view_of_600_shows_raw_bytes_with_no_status_line(visit, mockstatus):
    v = visit()
    page = v.open()
    page.select_option("#t-code", "600")
    show_the_wire(page)
    events = timeline(page)
    assert [e["kind"] for e in events] == ["headerless", "end"]
    assert events[-1]["how"] == "fin"
    raw = page.text_content("#w-raw")
    assert raw and "HTTP/" not in raw
    assert int(page.get_attribute("#w-raw", "data-size")) > 0
    assert page.inner_text("#w-f-status") == "network error"


def test_wire_view_of_fault_reset_shows_a_reset(visit, mockstatus):
    v = visit()
    page = v.open()
    page.select_option("#t-code", "200")
    page.select_option("#t-fault", "reset")
    show_the_wire(page)
    events = timeline(page)
    assert events[-1]["kind"] == "end" and events[-1]["how"] == "reset"
    assert "reset" in events[-1]["text"]
    assert page.inner_text("#w-f-status") == "network error"


def test_wire_view_of_502_with_a_delay_times_the_head(visit, mockstatus):
    v = visit()
    page = v.open()
    page.select_option("#t-code", "502")
    page.fill("#t-delay", "300ms")
    show_the_wire(page)
    (final,) = [e for e in timeline(page) if e["kind"] == "final"]
    assert final["status"] == "502" and final["ms"] >= 300
    assert "300" <= page.text_content("#w-timeline li.w-final .at")  # shown as "30x.x ms"
    assert page.inner_text("#w-f-status") == "502 Bad Gateway"


def test_a_cards_wire_link_opens_the_wire_view_on_that_code(visit, mockstatus):
    v = visit()
    page = v.open()
    page.click('a.wire-link[data-code="103"]')
    page.wait_for_selector("dialog#wire[open][data-state=done]")
    assert page.input_value("#t-code") == "103"
    assert [e["status"] for e in timeline(page) if e["kind"] == "interim"] == ["103"]
    page.click("#w-close")
    assert not page.is_visible("dialog#wire")
    # the same view from a link to the page, in a new tab
    page = visit().open("/#wire-101")
    page.wait_for_selector("dialog#wire[open][data-state=done]")
    (final,) = [e for e in timeline(page) if e["kind"] == "final"]
    assert final["status"] == "101"
    assert "101" in page.inner_text("#w-f-info")  # fetch() was not asked: it cannot take a switch


def test_wire_view_says_when_the_admin_token_keeps_it_out(visit, make_mockstatus):
    server = make_mockstatus(admin_token="s3cret")
    v = visit(server)
    page = v.open()
    show_the_wire(page)
    assert "401" in page.inner_text("#w-status")
    assert page.inner_text("#w-f-status").startswith("418")


def test_wire_view_screenshot(visit, mockstatus):
    v = visit()
    page = v.open()
    page.select_option("#t-code", "100")
    page.fill("#t-delay", "200ms")
    show_the_wire(page)
    screenshot(page, "wire-view")
