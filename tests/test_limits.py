"""Truthful time: rate limits, outage windows, ``until=``, the test clock.

Real-time tests use one-second windows and check that a request made when
``Retry-After`` said succeeds; the rest move the test clock instead of waiting.
"""

from __future__ import annotations

import math
import time

import httpx
import pytest
import requests
import urllib3

RATE_FIELDS = (
    "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy",
    "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
)  # fmt: skip


def get(server, path: str, **kwargs) -> requests.Response:
    return requests.get(server.url(path), timeout=5, **kwargs)


def statuses(server) -> list[int]:
    return [entry["status"] for entry in server.requests()]


# --- a fixed window ------------------------------------------------------------------------


def test_status_200_limit_2_per_1s_then_429_whose_retry_after_comes_true(mockstatus):
    path = "/status/200?limit=2/1s"
    first = get(mockstatus, path)
    second = get(mockstatus, path)
    assert (first.status_code, second.status_code) == (200, 200)
    assert [first.headers["RateLimit-Remaining"], second.headers["RateLimit-Remaining"]] == ["1", "0"]
    refused = get(mockstatus, path)
    assert refused.status_code == 429
    assert refused.text == "429 Too Many Requests\n"  # the catalog's reply
    assert refused.headers["Retry-After"] == "1"
    assert [refused.headers[name] for name in RATE_FIELDS[:4]] == ["2", "0", "1", "2;w=1"]
    # A client that waits exactly what it was told is let through.
    time.sleep(int(refused.headers["Retry-After"]))
    again = get(mockstatus, path)
    assert again.status_code == 200
    assert again.headers["RateLimit-Remaining"] == "1"
    assert statuses(mockstatus) == [200, 200, 429, 200]


def test_x_ratelimit_reset_is_the_unix_time_the_window_ends(mockstatus):
    before = time.time()
    response = get(mockstatus, "/status/204?limit=5/1m")
    assert response.headers["X-RateLimit-Limit"] == "5"
    assert response.headers["X-RateLimit-Remaining"] == "4"
    assert response.headers["RateLimit-Reset"] == "60"
    assert math.ceil(before + 59) <= int(response.headers["X-RateLimit-Reset"]) <= math.ceil(time.time() + 60)


def test_retry_after_is_true_to_the_second_on_the_test_clock(mockstatus):
    path = "/status/200?limit=3/1m"
    assert [get(mockstatus, path).status_code for _ in range(3)] == [200, 200, 200]
    refused = get(mockstatus, path)
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "60")
    mockstatus.advance_clock("59s")
    still = get(mockstatus, path)
    assert (still.status_code, still.headers["Retry-After"], still.headers["RateLimit-Reset"]) == (429, "1", "1")
    mockstatus.advance_clock(1)
    after = get(mockstatus, path)
    assert after.status_code == 200
    assert (after.headers["RateLimit-Remaining"], after.headers["RateLimit-Reset"]) == ("2", "60")


def test_the_limit_header_form_and_a_shared_bucket(mockstatus):
    headers = {"X-Mockstatus-Limit": "1/1m", "X-Mockstatus-Bucket": "pay"}
    assert get(mockstatus, "/status/201", headers=headers).status_code == 201
    # Another path, the same bucket: already used up.
    assert get(mockstatus, "/status/202", headers=headers).status_code == 429
    # The default bucket is the path: another path has its own.
    assert get(mockstatus, "/status/202?limit=1/1m").status_code == 202
    assert get(mockstatus, "/status/202?limit=1/1m&delay=10ms").status_code == 429


def test_a_refused_request_takes_no_step_of_a_sequence(mockstatus):
    path = "/sequence/pay/500,201?limit=1/1m"
    first = get(mockstatus, path)
    assert (first.status_code, first.headers["X-Mockstatus-Step"], first.headers["RateLimit-Remaining"]) == (
        500, "1", "0",
    )  # fmt: skip
    assert get(mockstatus, path).status_code == 429
    mockstatus.advance_clock("1m")
    second = get(mockstatus, path)
    assert (second.status_code, second.headers["X-Mockstatus-Step"]) == (201, "2")


def test_a_refused_reply_is_immediate_and_the_asked_reply_keeps_its_options(mockstatus):
    path = "/status/200?limit=1/1m&delay=200ms&body=hello"
    started = time.monotonic()
    allowed = get(mockstatus, path)
    assert time.monotonic() - started >= 0.2
    assert (allowed.text, allowed.headers["Server-Timing"]) == ("hello", "delay;dur=200")
    started = time.monotonic()
    refused = get(mockstatus, path)
    assert time.monotonic() - started < 0.15
    assert (refused.status_code, refused.text) == (429, "429 Too Many Requests\n")


def test_another_limit_on_the_same_bucket_is_409_naming_both(mockstatus):
    assert get(mockstatus, "/status/200?limit=2/1s").status_code == 200
    response = get(mockstatus, "/status/200?limit=3/1s")
    assert response.status_code == 409
    assert "'2/1s'" in response.text and "'3/1s'" in response.text
    requests.delete(mockstatus.url("/__mockstatus/buckets"), timeout=5)
    assert get(mockstatus, "/status/200?limit=3/1s").status_code == 200


# --- a sliding log -------------------------------------------------------------------------


def test_sliding_log_lets_one_through_as_the_oldest_leaves(mockstatus):
    path = "/status/200?limit=2/10s&limit_mode=sliding"
    assert get(mockstatus, path).status_code == 200  # at 0
    mockstatus.advance_clock("5s")
    assert get(mockstatus, path).status_code == 200  # at 5
    refused = get(mockstatus, path)
    # A fixed window would reset at 10 too; the difference shows after it.
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "5")
    mockstatus.advance_clock("5s")  # at 10: the request at 0 has left the window
    allowed = get(mockstatus, path)
    assert (allowed.status_code, allowed.headers["RateLimit-Remaining"]) == (200, "0")
    refused = get(mockstatus, path)  # the one at 5 leaves at 15
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "5")


def test_sliding_log_in_real_time(mockstatus):
    path = "/status/200?limit=1/1s&limit_mode=sliding"
    assert get(mockstatus, path).status_code == 200
    refused = get(mockstatus, path)
    assert (refused.status_code, refused.headers["Retry-After"]) == (429, "1")
    time.sleep(1)
    assert get(mockstatus, path).status_code == 200


# --- real clients that honour Retry-After ----------------------------------------------------


def test_requests_with_urllib3_retry_honouring_retry_after(mockstatus):
    retry = urllib3.Retry(
        total=3, status_forcelist=[429, 503], respect_retry_after_header=True, backoff_factor=0,
        allowed_methods=None,
    )  # fmt: skip
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(max_retries=retry))
    url = mockstatus.url("/status/201?limit=1/1s")
    assert session.get(url, timeout=5).status_code == 201
    started = time.monotonic()
    response = session.post(url, timeout=5)
    waited = time.monotonic() - started
    assert response.status_code == 201
    # One 429 that said "1", one wait of a second, one success: no second refusal.
    assert statuses(mockstatus) == [201, 429, 201]
    assert 1.0 <= waited < 1.5


class RetryAfterTransport(httpx.BaseTransport):
    """An httpx transport that retries 429 and 503 after the Retry-After they carry."""

    def __init__(self, retries: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.retries = retries
        self.waits: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for _ in range(self.retries):
            response = self.inner.handle_request(request)
            if response.status_code not in (429, 503) or "Retry-After" not in response.headers:
                return response
            response.close()
            self.waits.append(int(response.headers["Retry-After"]))
            time.sleep(self.waits[-1])
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_httpx_transport_with_retries_succeeds_exactly_when_told(mockstatus):
    transport = RetryAfterTransport(retries=3)
    with httpx.Client(transport=transport, timeout=5) as client:
        url = mockstatus.url("/status/200?outage=1s&bucket=upstream")
        started = time.monotonic()
        response = client.get(url)
        waited = time.monotonic() - started
    assert response.status_code == 200
    assert transport.waits == [1]
    assert statuses(mockstatus) == [503, 200]
    assert 1.0 <= waited < 1.5


# --- outages -----------------------------------------------------------------------------------


def test_outage_opens_on_the_first_request_and_ends_on_time(mockstatus):
    path = "/status/200?outage=30s&bucket=down"
    first = get(mockstatus, path)
    assert (first.status_code, first.headers["Retry-After"]) == (503, "30")
    assert first.text == "503 Service Unavailable\n"
    assert not any(name in first.headers for name in RATE_FIELDS)
    mockstatus.advance_clock("29s")
    inside = get(mockstatus, path)
    assert (inside.status_code, inside.headers["Retry-After"]) == (503, "1")
    mockstatus.advance_clock("1s")
    assert get(mockstatus, path).status_code == 200
    assert get(mockstatus, path).status_code == 200  # over is over
    snapshot = requests.get(mockstatus.url("/__mockstatus/buckets"), timeout=5).json()
    assert snapshot["outages"] == {"down": {"duration": 30.0, "left": 0.0}}


def test_an_outage_and_a_limit_together(mockstatus):
    path = "/status/200?outage=10s&limit=1/1m&bucket=both"
    assert get(mockstatus, path).status_code == 503
    mockstatus.advance_clock("10s")
    # The request the outage turned away used up none of the limit.
    assert get(mockstatus, path).status_code == 200
    assert get(mockstatus, path).status_code == 429


def test_until_is_stateless_and_reads_the_wall_clock(mockstatus):
    # The test clock just past a whole second, so the whole seconds left (Retry-After,
    # rounded up) do not depend on where in a second the test happens to start.
    offset = 1.02 - time.time() % 1
    mockstatus.advance_clock(offset)
    until = int(time.time() + offset) + 100
    first = get(mockstatus, f"/status/200?until={until}")
    assert first.status_code == 503
    wait = int(first.headers["Retry-After"])
    assert 99 <= wait <= 100
    mockstatus.advance_clock(wait - 1)
    assert get(mockstatus, f"/status/200?until={until}").headers["Retry-After"] == "1"
    mockstatus.advance_clock(1)
    assert get(mockstatus, f"/status/200?until={until}").status_code == 200
    assert get(mockstatus, "/status/200", headers={"X-Mockstatus-Until": "1000000000.5"}).status_code == 200
    assert requests.get(mockstatus.url("/__mockstatus/buckets"), timeout=5).json() == {"limits": {}, "outages": {}}


def test_until_in_real_time(mockstatus):
    until = time.time() + 0.3
    refused = get(mockstatus, f"/status/200?until={until:.3f}")
    assert (refused.status_code, refused.headers["Retry-After"]) == (503, "1")
    time.sleep(1)
    assert get(mockstatus, f"/status/200?until={until:.3f}").status_code == 200


# --- bounded state, the admin API, the fixture ---------------------------------------------------


def test_buckets_above_max_buckets_drop_the_least_recently_used(make_mockstatus):
    server = make_mockstatus(max_buckets=2)
    for name in ("a", "b"):
        assert get(server, f"/status/200?limit=1/1m&bucket={name}").status_code == 200
    assert get(server, "/status/200?limit=1/1m&bucket=a").status_code == 429  # a is now the newest
    assert get(server, "/status/200?limit=1/1m&bucket=c").status_code == 200  # b goes
    snapshot = requests.get(server.url("/__mockstatus/buckets"), timeout=5).json()
    assert sorted(snapshot["limits"]) == ["a", "c"]
    assert get(server, "/status/200?limit=1/1m&bucket=b").status_code == 200  # a fresh window
    assert len(server.state.store.bucket_table) == 2


def test_fixture_reset_forgets_buckets_and_the_clock(mockstatus):
    assert get(mockstatus, "/status/200?limit=1/1m").status_code == 200
    mockstatus.advance_clock("5s")
    mockstatus.reset()
    assert mockstatus.state.clock.offset == 0
    assert get(mockstatus, "/status/200?limit=1/1m").status_code == 200


def test_clock_admin_endpoint(mockstatus):
    url = mockstatus.url("/__mockstatus/clock")
    assert requests.post(url, json={"advance": "30s"}, timeout=5).json() == {"offset": 30.0}
    assert requests.post(url, json={"advance": 1.5}, timeout=5).json() == {"offset": 31.5}
    assert requests.get(url, timeout=5).json() == {"offset": 31.5}
    assert requests.delete(url, timeout=5).json() == {"offset": 0.0}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b'{"advance": "-1s"}', "'-1s'"),
        (b'{"advance": "soon"}', "'soon'"),
        (b'{"advance": "9000h"}', "'9000h'"),
        (b'{"back": "1s"}', '{"advance": DURATION}'),
        (b"not json", "not json"),
        (b"[1]", '{"advance": DURATION}'),
    ],
)
def test_bad_clock_bodies_are_400_naming_them(mockstatus, body, named):
    response = requests.post(mockstatus.url("/__mockstatus/clock"), data=body, timeout=5)
    assert response.status_code == 400
    assert named in response.json()["error"]
    assert mockstatus.state.clock.offset == 0


def test_an_oversized_clock_body_is_413(mockstatus):
    response = requests.post(mockstatus.url("/__mockstatus/clock"), data=b"x" * 2000, timeout=5)
    assert response.status_code == 413


def test_the_admin_token_guards_the_clock_and_the_buckets(make_mockstatus):
    server = make_mockstatus(admin_token="s3cret")
    for method, path in (("POST", "clock"), ("DELETE", "clock"), ("GET", "buckets"), ("DELETE", "buckets")):
        response = requests.request(method, server.url(f"/__mockstatus/{path}"), json={"advance": "1s"}, timeout=5)
        assert response.status_code == 401, (method, path)
    assert server.state.clock.offset == 0
    authorized = requests.post(
        server.url("/__mockstatus/clock"), json={"advance": "1s"}, headers={"Authorization": "Bearer s3cret"}, timeout=5
    )
    assert authorized.json() == {"offset": 1.0}


def test_a_cross_origin_script_may_read_the_rate_limit_fields(mockstatus):
    response = get(mockstatus, "/status/200?limit=1/1m", headers={"Origin": "https://app.test"})
    exposed = {name.strip() for name in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert set(RATE_FIELDS) <= exposed
    refused = get(mockstatus, "/status/200?limit=1/1m", headers={"Origin": "https://app.test"})
    assert refused.headers["Access-Control-Allow-Origin"] == "https://app.test"


# --- bad values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "named", "allowed"),
    [
        ("limit=0/1s", "'0/1s'", "N/WINDOW"),
        ("limit=5/0s", "'5/0s'", "N/WINDOW"),
        ("limit=5", "'5'", "N/WINDOW"),
        ("limit=five/1s", "'five/1s'", "N/WINDOW"),
        ("limit=5/25h", "'5/25h'", "to 1 day"),
        ("limit=5/-1s", "'5/-1s'", "N/WINDOW"),
        ("limit=20000/1s&limit_mode=sliding", "'20000/1s'", "at most 10000"),
        ("limit=5/1s&limit_mode=leaky", "'leaky'", "fixed or sliding"),
        ("limit_mode=sliding", "limit_mode", "limit=N/WINDOW"),
        ("bucket=pay", "bucket", "limit=N/WINDOW or outage=DURATION"),
        ("limit=5/1s&bucket=a/b", "'a/b'", "A-Z a-z 0-9"),
        ("limit=5/1s&bucket=" + "x" * 129, "'xxx", "1-128"),
        ("outage=0s", "'0s'", "from 1ms to 1 day"),
        ("outage=0.0001", "'0.0001'", "from 1ms to 1 day"),
        ("limit=5/0.0001s", "'5/0.0001s'", "from 1ms to 1 day"),
        ("outage=-1s", "'-1s'", "a duration"),
        ("outage=2d", "'2d'", "a duration"),
        ("until=tomorrow", "'tomorrow'", "Unix time"),
        ("until=-5", "'-5'", "Unix time"),
        ("until=123456789012", "'123456789012'", "Unix time"),
    ],
)
def test_bad_limit_values_are_400_naming_them(mockstatus, query, named, allowed):
    response = get(mockstatus, f"/status/200?{query}")
    assert response.status_code == 400
    assert named in response.text and allowed in response.text
    assert requests.get(mockstatus.url("/__mockstatus/buckets"), timeout=5).json() == {"limits": {}, "outages": {}}


def test_a_cors_preflight_is_not_counted(mockstatus):
    preflight = requests.options(
        mockstatus.url("/status/200?limit=1/1m"),
        headers={"Origin": "https://app.test", "Access-Control-Request-Method": "PUT"},
        timeout=5,
    )
    assert preflight.status_code == 204
    assert requests.put(mockstatus.url("/status/200?limit=1/1m"), timeout=5).status_code == 200
    assert requests.head(mockstatus.url("/status/200?limit=1/1m"), timeout=5).status_code == 429


def test_buckets_are_per_namespace_by_header_or_prefix(mockstatus):
    """A limit counts per namespace; the /ns/ prefix and the header name the same one."""
    path = "/status/200?limit=1/1m"

    def status(url: str, namespace: str | None = None) -> int:
        headers = {"X-Mockstatus-Namespace": namespace} if namespace else {}
        return requests.get(mockstatus.url(url), headers=headers, timeout=5).status_code

    assert status(path, "suite-a") == 200
    assert status("/ns/suite-a" + path) == 429  # the same bucket: the path without its prefix
    assert status(path, "suite-b") == 200
    assert status(path) == 200  # the default namespace has its own
    listed = requests.get(mockstatus.url("/__mockstatus/buckets?namespace=suite-a"), timeout=5).json()
    assert list(listed["limits"]) == ["/status/200"] and listed["limits"]["/status/200"]["used"] == 1
    reset = requests.delete(mockstatus.url("/__mockstatus/buckets?namespace=suite-a"), timeout=5)
    assert reset.json() == {"reset": "all", "namespace": "suite-a"}
    assert status(path, "suite-a") == 200  # reset
    assert status(path, "suite-b") == 429  # untouched
    bad = requests.get(mockstatus.url("/__mockstatus/buckets?namespace=a%20b"), timeout=5)
    assert bad.status_code == 400 and "'a b'" in bad.text
