"""The request journal (``/__mockstatus/requests``) and the admin token."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests
from wire import connect, read_head, read_until_close


def journal(server, **params) -> requests.Response:
    return requests.get(server.url("/__mockstatus/requests"), params=params, timeout=5)


def wait_for_entries(server, count: int, timeout: float = 2.0) -> list[dict]:
    """Entries for a client that went away are written when the server notices."""
    deadline = time.monotonic() + timeout
    while len(entries := server.requests()) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return entries


# --- what one entry holds ---------------------------------------------------------------------


def test_every_field_is_recorded(mockstatus):
    before = time.time()
    reply = requests.post(
        mockstatus.url("/status/201?retry_after=5"), data=b"hello", headers={"X-Trace": "abc"}, timeout=5
    )
    after = time.time()
    assert reply.status_code == 201

    (entry,) = journal(mockstatus).json()["requests"]
    assert before <= entry["time"] <= after
    assert entry["client"] == "127.0.0.1"
    assert (entry["method"], entry["path"], entry["query"]) == ("POST", "/status/201", "retry_after=5")
    assert ["X-Trace", "abc"] in entry["headers"]
    assert ["Content-Length", "5"] in entry["headers"]
    assert (entry["body_size"], entry["body"]) == (5, "hello")
    assert (entry["status"], entry["delay"], entry["client_gone"]) == (201, 0.0, False)
    assert (entry["sequence"], entry["step"]) == (None, None)
    assert entry["id"] >= 1
    assert mockstatus.requests() == [entry]  # the fixture reads the same journal


def test_repeated_headers_are_kept_in_order(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(
            b"GET /status/200 HTTP/1.1\r\nHost: t\r\nX-Dup: 1\r\nX-Other: x\r\nX-Dup: 2\r\nConnection: close\r\n\r\n"
        )
        read_until_close(sock)
    (entry,) = mockstatus.requests()
    sent = [pair for pair in entry["headers"] if pair[0].startswith("X-")]
    assert sent == [["X-Dup", "1"], ["X-Other", "x"], ["X-Dup", "2"]]


def test_non_utf8_header_bytes_are_shown_escaped(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(b"GET /status/200 HTTP/1.1\r\nHost: t\r\nX-Latin1: caf\xe9\r\nConnection: close\r\n\r\n")
        read_until_close(sock)
    reply = journal(mockstatus)
    assert reply.status_code == 200
    assert ["X-Latin1", "caf\\xe9"] in reply.json()["requests"][0]["headers"]


def test_body_size_is_all_of_it_and_the_preview_the_first_4_KiB(mockstatus):
    body = bytes(range(48, 58)) * 1000  # 10,000 bytes of digits
    requests.put(mockstatus.url("/status/204"), data=body, timeout=5)
    (entry,) = mockstatus.requests()
    assert entry["body_size"] == 10_000
    assert entry["body"] == body[:4096].decode()


def test_chunked_body_is_counted(mockstatus):
    requests.post(mockstatus.url("/status/200"), data=iter([b"a" * 100, b"b" * 50]), timeout=5)
    (entry,) = mockstatus.requests()
    assert ["Transfer-Encoding", "chunked"] in entry["headers"]
    assert (entry["body_size"], entry["body"]) == (150, "a" * 100 + "b" * 50)


def test_delay_applied_is_recorded(mockstatus):
    requests.get(mockstatus.url("/status/503?delay=0.05"), timeout=5)
    (entry,) = mockstatus.requests()
    assert (entry["status"], entry["delay"], entry["client_gone"]) == (503, 0.05, False)


def test_client_gone_during_a_delay_is_recorded(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(b"GET /status/200?delay=0.3 HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.05)
    (entry,) = wait_for_entries(mockstatus, 1)
    # nginx's 499 Client Closed Request: no reply was sent.
    assert (entry["status"], entry["delay"], entry["client_gone"]) == (499, 0.3, True)


def test_interim_reply_records_the_final_status(mockstatus):
    with connect(mockstatus) as sock:
        sock.sendall(b"GET /status/100?then=201 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        assert read_head(sock).startswith(b"HTTP/1.1 100 Continue\r\n")
        read_until_close(sock)
    assert [e["status"] for e in mockstatus.requests()] == [201]


def test_rejected_and_unrouted_requests_are_recorded(mockstatus):
    requests.get(mockstatus.url("/status/2_00"), timeout=5)
    requests.get(mockstatus.url("/nowhere"), timeout=5)
    assert [(e["path"], e["status"]) for e in mockstatus.requests()] == [("/status/2_00", 400), ("/nowhere", 404)]


def test_sequence_steps_are_recorded(mockstatus):
    for _ in range(3):
        requests.get(mockstatus.url("/sequence/pay/503,200"), timeout=5)
    assert [(e["sequence"], e["step"], e["status"]) for e in mockstatus.requests()] == [
        ("pay", 1, 503), ("pay", 2, 200), ("pay", 2, 200),
    ]  # fmt: skip


# --- the ring buffer --------------------------------------------------------------------------


def test_ring_buffer_keeps_the_newest_journal_size_entries(make_mockstatus):
    server = make_mockstatus(journal_size=3)
    for code in (200, 201, 202, 203, 204):
        requests.get(server.url(f"/status/{code}"), timeout=5)
    entries = journal(server).json()["requests"]
    assert [e["status"] for e in entries] == [202, 203, 204]
    assert [e["id"] for e in entries] == [3, 4, 5]


def test_journal_size_and_admin_token_flags_on_the_command_line():
    process = subprocess.Popen(
        [sys.executable, "-m", "mockstatus", "--port", "0", "--journal-size", "2", "--admin-token", "s3cret"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        assert line.startswith("mockstatus listening on http://127.0.0.1:"), line + process.stderr.read()
        base = line.split()[-1]
        for code in (200, 201, 202):
            requests.get(f"{base}/status/{code}", timeout=5)
        assert requests.get(f"{base}/__mockstatus/requests", timeout=5).status_code == 401
        listed = requests.get(f"{base}/__mockstatus/requests", headers={"Authorization": "Bearer s3cret"}, timeout=5)
        assert [e["status"] for e in listed.json()["requests"]] == [201, 202]
    finally:
        process.terminate()
        process.wait(10)


# --- filters and clearing ---------------------------------------------------------------------


@pytest.fixture
def mixed(mockstatus):
    """Four requests: GET 200, POST 201, two steps of sequence 'pay'; returns the entries."""
    requests.get(mockstatus.url("/status/200"), timeout=5)
    requests.post(mockstatus.url("/status/201"), data=b"x", timeout=5)
    requests.get(mockstatus.url("/sequence/pay/503,200"), timeout=5)
    requests.post(mockstatus.url("/sequence/pay/503,200"), timeout=5)
    return mockstatus.requests()


FILTERS = [
    ({}, [0, 1, 2, 3]),
    ({"path": "/status/201"}, [1]),
    ({"path": "/sequence/pay/503,200"}, [2, 3]),
    ({"path": "/status"}, []),  # a path is matched whole, not as a prefix
    ({"method": "POST"}, [1, 3]),
    ({"method": "post"}, [1, 3]),
    ({"sequence": "pay"}, [2, 3]),
    ({"sequence": "other"}, []),
    ({"sequence": "pay", "method": "GET"}, [2]),
    ({"status": "200"}, [0, 3]),
    ({"status": 503}, [2]),
    ({"status": "404"}, []),
    ({"status": "200", "method": "POST"}, [3]),
]


@pytest.mark.parametrize(
    ("params", "expected"),
    FILTERS,
    ids=["/__mockstatus/requests?" + "&".join(f"{k}={v}" for k, v in params.items()) for params, _ in FILTERS],
)
def test_filters(mockstatus, mixed, params, expected):
    listed = journal(mockstatus, **params).json()
    assert listed["count"] == len(expected)
    assert [e["id"] for e in listed["requests"]] == [mixed[i]["id"] for i in expected]
    assert [e["id"] for e in mockstatus.requests(**params)] == [mixed[i]["id"] for i in expected]


def test_since_filter(mockstatus, mixed):
    since = mixed[2]["time"]
    listed = journal(mockstatus, since=str(since)).json()["requests"]
    assert [e["id"] for e in listed] == [mixed[2]["id"], mixed[3]["id"]]
    assert journal(mockstatus, since=str(time.time() + 60)).json() == {"count": 0, "requests": []}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"code": "200"}, "unknown filter 'code'; allowed: path, method, sequence, since, status, after, limit"),
        ({"since": "yesterday"}, "bad since 'yesterday': expected a Unix time in seconds"),
        ({"status": "5xx"}, "bad status '5xx': expected a three-digit code such as 503"),
    ],
    ids=[
        "bad/__mockstatus/requests?code=200",
        "bad/__mockstatus/requests?since=yesterday",
        "bad/__mockstatus/requests?status=5xx",
    ],
)
def test_bad_filter_is_400_naming_it(mockstatus, params, named):
    reply = journal(mockstatus, **params)
    assert reply.status_code == 400
    assert reply.json()["error"] == named


def test_delete_clears_the_journal(mockstatus, mixed):
    assert len(mixed) == 4
    reply = requests.delete(mockstatus.url("/__mockstatus/requests"), timeout=5)
    assert (reply.status_code, reply.json()) == (200, {"cleared": True})
    assert journal(mockstatus).json() == {"count": 0, "requests": []}
    requests.get(mockstatus.url("/status/200"), timeout=5)
    assert journal(mockstatus).json()["count"] == 1


def test_admin_endpoints_are_not_recorded(mockstatus):
    requests.get(mockstatus.url("/status/418"), timeout=5)
    for method, path in ADMIN_ROUTES + [("GET", "/__mockstatus/health")]:
        assert requests.request(method, mockstatus.url(path), timeout=5).status_code in (200, 404)
    requests.get(mockstatus.url("/status/200"), timeout=5)
    assert [e["path"] for e in mockstatus.requests()] == ["/status/200"]  # the DELETE cleared 418
    assert [e["path"] for e in journal(mockstatus).json()["requests"]] == ["/status/200"]


# --- the admin token ----------------------------------------------------------------------------

ADMIN_ROUTES = [
    ("DELETE", "/__mockstatus/requests"),
    ("GET", "/__mockstatus/requests"),
    ("GET", "/__mockstatus/sequences"),
    ("DELETE", "/__mockstatus/sequences/pay"),
    ("DELETE", "/__mockstatus/sequences"),
    ("GET", "/__mockstatus/codes"),
]
ROUTE_IDS = [f"{m} {p}" for m, p in ADMIN_ROUTES]


@pytest.fixture(scope="module")
def guarded_server(make_mockstatus_session):
    return make_mockstatus_session(admin_token="s3cret")


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", "Bearer s3cre", "Bearer s3cret2", "Basic czNjcmV0", "s3cret", "Bearer"],
    ids=["none", "wrong", "prefix", "longer", "basic", "no-scheme", "no-token"],
)
def test_admin_routes_need_the_token(guarded_server, method, path, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    reply = requests.request(method, guarded_server.url(path), headers=headers, timeout=5)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="mockstatus-admin"'
    assert "Authorization: Bearer <token>" in reply.json()["error"]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("authorization", ["Bearer s3cret", "bearer s3cret"], ids=["Bearer", "scheme-any-case"])
def test_admin_routes_answer_with_the_token(guarded_server, method, path, authorization):
    requests.get(guarded_server.url("/sequence/pay/503,200"), timeout=5)
    reply = requests.request(method, guarded_server.url(path), headers={"Authorization": authorization}, timeout=5)
    assert reply.status_code == 200


def test_non_utf8_token_bytes_are_a_401(guarded_server):
    with connect(guarded_server) as sock:
        sock.sendall(
            b"GET /__mockstatus/requests HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n"
        )
        assert read_until_close(sock).startswith(b"HTTP/1.1 401 Unauthorized\r\n")


def test_health_and_status_routes_stay_open(guarded_server):
    health = requests.get(guarded_server.url("/__mockstatus/health"), timeout=5)
    assert (health.status_code, health.json()["status"]) == (200, "ok")
    assert requests.get(guarded_server.url("/status/418"), timeout=5).status_code == 418
    assert requests.get(guarded_server.url("/sequence/open/503,200"), timeout=5).status_code == 503


def test_admin_json_falls_back_for_what_orjson_refuses():
    """An integer above 64 bits (orjson refuses it) still encodes, as the standard encoder does."""
    import json

    from mockstatus.bodies import _dumps

    odd = {"big": 2**70, "text": "中文"}
    assert json.loads(_dumps(odd)) == odd
    assert _dumps({"text": "中文"}) == '{"text":"中文"}'.encode()
