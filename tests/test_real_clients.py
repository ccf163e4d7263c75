"""Real clients as they are: their own query parameters, base URLs with a path.

A client adds parameters of its own (cache-busters, API keys, signatures,
tracing) and is often configured with a base URL; both must reach the reply
the URL asks for.  Each case runs with requests (a Session), httpx, aiohttp's
client and curl.
"""

from __future__ import annotations

import shutil
import subprocess

import aiohttp
import httpx
import pytest
import requests

FOREIGN = ["_=12345", "attempt=2", "api_key=k", "utm_source=x", "token=t", "cache=no", "seq=3", "X-Amz-Signature=ab"]


@pytest.mark.parametrize("query", FOREIGN, ids=[f"/status/503?{q}" for q in FOREIGN])
def test_foreign_parameters_pass_and_stay_in_the_journal(mockstatus, query):
    with requests.Session() as session:
        response = session.get(mockstatus.url(f"/status/503?{query}&retry_after=7"), timeout=5)
    assert (response.status_code, response.headers["Retry-After"]) == (503, "7")
    [entry] = mockstatus.requests()
    assert entry["query"] == f"{query}&retry_after=7" and entry["status"] == 503


def test_foreign_parameter_on_the_page_and_a_sequence(mockstatus):
    assert requests.get(mockstatus.url("/?utm_source=x"), timeout=5).status_code == 200
    steps = [requests.get(mockstatus.url(f"/sequence/s/503,200?_={n}"), timeout=5).status_code for n in range(2)]
    assert steps == [503, 200]


NEAR_MISSES = [
    ("dealy=1s", "dealy", "delay"),
    ("Delay=1s", "Delay", "delay"),
    ("DELAY=1s", "DELAY", "delay"),
    ("retry-after=5", "retry-after", "retry_after"),
    ("retryafter=5", "retryafter", "retry_after"),
    ("Retry_After=5", "Retry_After", "retry_after"),
    ("bodydelay=1s", "bodydelay", "body_delay"),
    ("body-dealy=1s", "body-dealy", "body_delay"),
    ("intervall=1s", "intervall", "interval"),
    ("faults=reset", "faults", "fault"),
    ("headers=X:1", "headers", "header"),
    ("cylce=1", "cylce", "cycle"),
    ("Then=200", "Then", "then"),
    ("locaton=/x", "locaton", "location"),
]


@pytest.mark.parametrize("query,given,option", NEAR_MISSES, ids=[f"bad/status/200?{q}" for q, _, _ in NEAR_MISSES])
def test_a_misspelt_option_is_a_400_naming_the_option(mockstatus, query, given, option):
    response = httpx.get(mockstatus.url(f"/status/200?{query}"), timeout=5)
    assert response.status_code == 400
    assert f"unknown option {given!r}: did you mean {option!r}?" in response.text


def test_near_misses_are_not_guessed_from_short_names_two_edits_away(mockstatus):
    """Two edits from a short option is an ordinary parameter: token/then, cache/cycle, node/body, sid/seed."""
    for query in ("token=1", "cache=1", "node=1", "sid=1", "step=1"):
        assert httpx.get(mockstatus.url(f"/status/204?{query}"), timeout=5).status_code == 204, query


async def test_foreign_and_misspelt_headers_with_aiohttp(mockstatus):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        async with session.get(mockstatus.url("/status/503"), headers={"X-Mockstatus-Trace": "abc"}) as reply:
            assert reply.status == 503
        # What the server itself sends (a proxy may echo it back) is not an option either.
        async with session.get(mockstatus.url("/status/200"), headers={"X-Mockstatus-Step": "1"}) as reply:
            assert reply.status == 200
        async with session.get(mockstatus.url("/status/200"), headers={"X-Mockstatus-Retry-Afer": "5"}) as reply:
            assert reply.status == 400
            assert "unknown header 'X-Mockstatus-Retry-Afer': did you mean 'X-Mockstatus-Retry-After'?" in (
                await reply.text()
            )


@pytest.mark.parametrize("how", ["flag", "env"])
def test_strict_options_makes_every_unknown_parameter_a_400(make_mockstatus, how):
    server = (
        make_mockstatus(strict_options=True) if how == "flag" else make_mockstatus({"server": {"strict_options": True}})
    )
    response = requests.get(server.url("/status/503?_=1"), timeout=5)
    assert response.status_code == 400
    assert "unknown option '_' (--strict-options); allowed: delay, body_delay" in response.text
    response = requests.get(server.url("/status/503"), headers={"X-Mockstatus-Trace": "1"}, timeout=5)
    assert response.status_code == 400 and "unknown header 'X-Mockstatus-Trace' (--strict-options)" in response.text
    assert requests.get(server.url("/status/503?retry_after=1"), timeout=5).status_code == 503


# --- a base URL with a path ------------------------------------------------------------------

TAILS = ["/", "/api/items", "/api/items/", "/a/b/c.json", "//double"]


@pytest.mark.parametrize("tail", TAILS, ids=[f"/status/503{t}" for t in TAILS])
def test_any_path_below_a_status(mockstatus, tail):
    with requests.Session() as session:
        response = session.post(mockstatus.url(f"/status/503{tail}?retry_after=9"), json={"a": 1}, timeout=5)
    assert (response.status_code, response.headers["Retry-After"]) == (503, "9")
    [entry] = mockstatus.requests()
    assert (entry["path"], entry["tail"], entry["status"]) == (f"/status/503{tail}", tail, 503)


def test_requests_session_with_a_base_url(mockstatus):
    base = mockstatus.url("/status/503")
    with requests.Session() as session:
        codes = [session.get(f"{base}/api/items/{n}", timeout=5).status_code for n in range(3)]
    assert codes == [503, 503, 503]


def test_httpx_client_with_a_base_url(mockstatus):
    with httpx.Client(base_url=mockstatus.url("/status/429/"), timeout=5) as client:
        response = client.get("api/items", params={"page": 2})
    assert response.status_code == 429
    [entry] = mockstatus.requests()
    assert (entry["path"], entry["tail"], entry["query"]) == ("/status/429/api/items", "/api/items", "page=2")


async def test_aiohttp_client_with_a_base_url(mockstatus):
    try:
        session = aiohttp.ClientSession(base_url=mockstatus.url("/status/500/"), timeout=aiohttp.ClientTimeout(total=5))
    except AssertionError:  # "Only absolute URLs without path part are supported"
        pytest.skip(f"aiohttp {aiohttp.__version__} takes no path in base_url (later versions do)")
    async with session, session.get("items") as reply:
        assert reply.status == 500
    async with aiohttp.ClientSession() as plain, plain.get(mockstatus.url("/status/500/items")) as reply:
        assert reply.status == 500


def test_fast_path_codes_and_lists_below_a_tail(mockstatus):
    assert httpx.get(mockstatus.url("/status/418/x"), timeout=5).status_code == 418
    response = httpx.get(mockstatus.url("/status/201,201/x"), timeout=5)
    assert (response.status_code, response.headers["X-Mockstatus-Choice"]) == (201, "201")
    assert httpx.get(mockstatus.url("/status/abc/x"), timeout=5).status_code == 400


def test_any_path_below_a_sequence(mockstatus):
    with requests.Session() as session:
        codes = [session.get(mockstatus.url(f"/sequence/pay/503*2,200/api/v1/charge/{n}"), timeout=5) for n in range(3)]
    assert [r.status_code for r in codes] == [503, 503, 200]
    assert [r.headers["X-Mockstatus-Step"] for r in codes] == ["1", "2", "3"]
    tails = [(e["tail"], e["sequence"], e["step"]) for e in mockstatus.requests()]
    assert tails == [(f"/api/v1/charge/{n}", "pay", n + 1) for n in range(3)]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (.ci/run installs it)")
def test_curl_with_a_tail_and_a_cache_buster(mockstatus):
    done = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", mockstatus.url("/status/502/health?_=1700000000")],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert done.stdout == "502"


def test_the_page_takes_foreign_parameters_and_names_a_misspelt_lang(mockstatus, make_mockstatus):
    response = requests.get(mockstatus.url("/?Lang=zh"), timeout=5)
    assert response.status_code == 400 and "unknown parameter 'Lang' for /: did you mean 'lang'?" in response.text
    strict = make_mockstatus(strict_options=True)
    response = requests.get(strict.url("/?utm_source=x"), timeout=5)
    assert response.status_code == 400 and "unknown parameter 'utm_source' for / (--strict-options)" in response.text
