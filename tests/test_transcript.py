"""``GET /__mockstatus/transcript``: what the wire carried, checked against a raw socket of the test's own.

Each transcript is compared byte for byte with the same request made here
through tests/wire.py's reader (only the Date value may differ: the two
requests can straddle a second).
"""

from __future__ import annotations

import asyncio
import base64
import re

import pytest
import requests

from mockstatus.transcript import MAX_CAPTURE, Recorder
from tests import wire

pytestmark = pytest.mark.usefixtures("no_server_errors")

DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")


def transcript(server, path: str | None, *, host: str = "localhost", token: str | None = None, **params):
    query = dict(params)
    if path is not None:
        query["path"] = path
    headers = {"Host": host}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.get(server.url("/__mockstatus/transcript"), params=query, headers=headers, timeout=10)


def taken(server, path: str, **params) -> dict:
    response = transcript(server, path, **params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    return response.json()


def raw_of(data: dict) -> bytes:
    """A bytes field of the transcript, from both of its forms (which must agree)."""
    raw = base64.b64decode(data["base64"])
    assert data["text"].encode("latin-1") == raw
    assert data["size"] == len(raw)
    return raw


def same_wire(server, path: str, method: str = "GET") -> tuple[bytes, str]:
    """The test's own request: the reply's bytes and how the connection ended."""
    with wire.connect(server) as sock:
        sock.sendall(wire.request_bytes(path, method))
        reader = wire.Reader(sock)
        reply = wire.read_reply(reader, method)
        if reply.end == "open" and "close" in (reply.header("Connection") or "").lower():
            reader.rest()  # the reply said it closes: see the FIN
        return reader.raw, reader.end


def assert_same_bytes(ours: bytes, theirs: bytes) -> None:
    assert DATE.sub(b"\r\nDate: -\r\n", ours) == DATE.sub(b"\r\nDate: -\r\n", theirs)


def check_against_wire(server, path: str) -> dict:
    found = taken(server, path)
    # The request it sent is the one tests/wire.py builds, so the replies must match.
    assert raw_of(found["request"]) == wire.request_bytes(path)
    raw = raw_of(found["raw"])
    assert b"".join(raw_of(chunk) for chunk in found["chunks"]) == raw
    times = [chunk["at_ms"] for chunk in found["chunks"]]
    assert times == sorted(times)
    theirs, end = same_wire(server, path)
    assert_same_bytes(raw, theirs)
    assert found["end"]["how"] == {"open": "open", "close": "fin", "reset": "reset"}[end]
    return found


def test_transcript_status_200_is_the_wire_byte_for_byte(mockstatus):
    found = check_against_wire(mockstatus, "/status/200")
    assert found["interim"] == []
    final = found["final"]
    assert (final["version"], final["status"], final["reason"]) == ("HTTP/1.1", 200, "OK")
    assert ["Content-Length", "7"] in final["headers"]
    assert raw_of(found["body"]) == b"200 OK\n"
    assert found["complete"] is True
    assert found["end"]["how"] == "open"
    assert found["url"] == "http://localhost/status/200" and found["method"] == "GET"
    assert found["timeout_ms"] == 5000 and found["truncated"] is False


def test_transcript_status_100_then_201_shows_the_interim_head_first(mockstatus):
    found = check_against_wire(mockstatus, "/status/100?then=201")
    assert [head["status"] for head in found["interim"]] == [100]
    assert found["interim"][0]["offset"] == 0
    assert found["interim"][0]["headers"] == []
    assert found["final"]["status"] == 201
    assert found["final"]["offset"] == len(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert raw_of(found["raw"]).startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n")


def test_transcript_status_600_has_no_head_and_ends_in_a_fin(mockstatus):
    found = check_against_wire(mockstatus, "/status/600")
    assert found["headerless"] is True
    assert found["final"] is None and found["interim"] == [] and found["body"] is None
    raw = raw_of(found["raw"])
    assert raw and not raw.startswith(b"HTTP/")
    assert found["end"]["how"] == "fin"


def test_transcript_fault_reset_ends_in_a_reset(mockstatus):
    found = check_against_wire(mockstatus, "/status/200?fault=reset")
    assert found["end"]["how"] == "reset"
    assert found["final"] is None and found["complete"] is False


def test_transcript_status_502_delay_300ms_times_the_head(mockstatus):
    found = check_against_wire(mockstatus, "/status/502?delay=300ms")
    assert found["final"]["status"] == 502
    assert found["final"]["at_ms"] >= 300
    assert found["chunks"][0]["at_ms"] >= 300


def test_transcript_of_a_stall_stops_at_the_time_limit(mockstatus):
    found = taken(mockstatus, "/status/200?fault=stall-body", timeout="200ms")
    assert found["final"]["status"] == 200  # the head came, the body never did
    assert found["complete"] is False
    assert found["end"]["how"] == "timeout"
    assert 200 <= found["end"]["at_ms"] < 1000
    assert found["timeout_ms"] == 200
    found = taken(mockstatus, "/status/200?fault=stall", timeout="100ms")
    assert found["chunks"] == [] and found["final"] is None
    assert found["end"]["how"] == "timeout"


def test_transcript_sends_method_headers_and_body(mockstatus):
    path = "/status/201"
    found = taken(mockstatus, path, method="POST", header=["X-One: 1", "X-Two:two"], body="hello")
    assert raw_of(found["request"]) == wire.request_bytes(
        path, "POST", headers=[("X-One", "1"), ("X-Two", "two")], body=b"hello"
    )
    (entry,) = mockstatus.requests(path=path)
    assert entry["method"] == "POST"
    assert found["final"]["status"] == 201


def test_transcript_of_head_and_204_reads_no_body(mockstatus):
    found = taken(mockstatus, "/status/200", method="HEAD")
    assert found["complete"] is True and found["end"]["how"] == "open"
    assert raw_of(found["body"]) == b""


def test_transcript_of_a_closing_reply_waits_for_the_fin(mockstatus):
    found = check_against_wire(mockstatus, "/status/408")
    assert found["final"]["status"] == 408
    assert found["complete"] is True and found["end"]["how"] == "fin"


def test_transcript_keeps_the_pages_host(mockstatus):
    found = taken(mockstatus, "/status/200", host="127.0.0.1:1234")
    assert raw_of(found["request"]).startswith(b"GET /status/200 HTTP/1.1\r\nHost: 127.0.0.1:1234\r\n")


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("http://evil/", "no scheme, no host"),
        ("//evil/status/200", "no scheme, no host"),
        (None, "missing path"),
        ("", "missing path"),
        ("/status/200\r\nX-Injected: 1", "'\\r' is not allowed"),
        ("/status/200 HTTP/1.1", "' ' is not allowed"),
        ("/status/" + "2" * 3000, "at most 2048"),
        ("/__mockstatus/requests", "expected one starting with /status/ or /sequence/"),
        ("/status/../__mockstatus/requests", "no '.' or '..' segments"),
        ("/status/%2e%2E/__mockstatus/requests", "no '.' or '..' segments"),
        ("status/200", "starts with one '/'"),
    ],
    ids=[
        "absolute-url",
        "scheme-relative",
        "no-path",
        "empty-path",
        "crlf",
        "space",
        "huge",
        "admin",
        "dots",
        "dots-encoded",
        "relative",
    ],
)
def test_transcript_refuses_what_is_not_a_path_here(mockstatus, path, words):
    response = transcript(mockstatus, path)
    assert response.status_code == 400
    assert words in response.json()["error"]
    assert mockstatus.requests() == []  # nothing was sent


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"method": "CONNECT"}, "expected one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
        ({"header": "no colon"}, "expected Name: value"),
        ({"header": "Bad Name: x"}, "expected Name: value"),
        ({"header": "Host: evil"}, "sets host, content-length"),
        ({"header": "Content-Length: 5"}, "sets host, content-length"),
        ({"body": "x"}, "a body needs method POST, PUT or PATCH"),
        ({"timeout": "soon"}, "bad timeout 'soon'"),
        ({"timeout": "10m"}, "at most 300s (--max-delay)"),
        ({"scheme": "gopher"}, "expected http or https"),
        ({"url": "http://evil/"}, "unknown parameter 'url'"),
    ],
    ids=[
        "method",
        "header-colon",
        "header-name",
        "header-host",
        "header-length",
        "body-on-get",
        "timeout",
        "timeout-cap",
        "scheme",
        "unknown",
    ],
)
def test_transcript_refuses_bad_parameters(mockstatus, params, words):
    response = transcript(mockstatus, "/status/200", **params)
    assert response.status_code == 400
    assert words in response.json()["error"], response.json()["error"]


def test_transcript_timeout_is_capped_at_max_delay(make_mockstatus):
    server = make_mockstatus(max_delay=2)
    assert taken(server, "/status/200")["timeout_ms"] == 2000
    response = transcript(server, "/status/200", timeout="3s")
    assert response.status_code == 400 and "at most 2s (--max-delay)" in response.json()["error"]


def test_transcript_needs_the_admin_token(make_mockstatus):
    server = make_mockstatus(admin_token="s3cret")
    response = transcript(server, "/status/200")
    assert response.status_code == 401
    assert server.requests() == []
    assert taken_with_token(server)["final"]["status"] == 200


def taken_with_token(server) -> dict:
    response = transcript(server, "/status/200", token="s3cret")
    assert response.status_code == 200, response.text
    return response.json()


def test_transcript_answers_only_a_loopback_host(mockstatus):
    response = transcript(mockstatus, "/status/200", host="evil.example")
    assert response.status_code == 403


@pytest.mark.parametrize(("path", "how"), [("/status/200?fault=reset", "reset"), ("/status/600", "fin")])
def test_transcript_on_the_standard_asyncio_loop(asyncio_loop_server, path, how):
    url = f"http://127.0.0.1:{asyncio_loop_server.port}/__mockstatus/transcript"
    found = requests.get(url, params={"path": path}, timeout=10).json()
    assert found["end"]["how"] == how


# --- HTTPS and the bad-TLS lab ------------------------------------------------------


def test_transcript_over_https_names_the_handshake(mockstatus):
    assert mockstatus.https_port  # started on first use
    found = taken(mockstatus, "/status/100?then=201", scheme="https")
    assert found["handshake"]["ok"] is True and found["handshake"]["version"].startswith("TLSv1.")
    assert found["url"] == f"https://127.0.0.1:{mockstatus.https_port}/status/100?then=201"
    assert [head["status"] for head in found["interim"]] == [100]
    assert found["final"]["status"] == 201 and found["end"]["how"] == "open"


@pytest.mark.parametrize(
    ("scenario", "words"),
    [("expired", "certificate has expired"), ("handshake-alert", "HANDSHAKE_FAILURE")],
)
def test_transcript_of_a_tls_scenario_says_how_the_handshake_failed(mockstatus, scenario, words):
    assert mockstatus.https_port
    found = taken(mockstatus, "/status/200", tls=scenario)
    assert found["handshake"]["ok"] is False and words in found["handshake"]["error"]
    assert found["end"]["how"] == "handshake" and found["chunks"] == []


def test_transcript_of_a_handshake_stall_stops_at_the_time_limit(mockstatus):
    assert mockstatus.https_port
    found = taken(mockstatus, "/status/200", tls="handshake-stall", timeout="200ms")
    assert found["handshake"]["ok"] is False
    assert found["end"]["how"] == "timeout" and found["end"]["at_ms"] >= 200


def test_transcript_https_needs_https_on(make_mockstatus):
    server = make_mockstatus()
    response = transcript(server, "/status/200", scheme="https")
    assert response.status_code == 400 and "--https-port" in response.json()["error"]
    response = transcript(server, "/status/200", tls="nope")
    assert response.status_code == 400 and "expected one of expired, not-yet-valid" in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "how", "final", "complete"),
    [
        ("/status/200?fault=truncate", "fin", 200, False),
        ("/status/200?fault=malformed", "fin", 200, False),
        ("/status/200?fault=close-after:64", "fin", None, False),
        ("/status/200?fault=garbage&seed=1", "fin", None, False),
        ("/status/200?fault=no-length", "fin", 200, True),
    ],
)
def test_transcript_of_a_broken_reply_is_the_wire_byte_for_byte(mockstatus, path, how, final, complete):
    found = check_against_wire(mockstatus, path)
    assert found["end"]["how"] == how
    assert (found["final"] or {}).get("status") == final
    assert found["complete"] is complete
    if "malformed" in path:
        assert found["final"]["malformed"] and "malformed" in found["note"]


def test_transcript_times_each_body_piece(mockstatus):
    found = taken(mockstatus, "/status/200?body=abcdefghijkl&chunks=3&drip=200ms")
    pieces = found["chunks"][1:]
    assert [raw_of(piece) for piece in pieces] == [b"abcd", b"efgh", b"ijkl"]
    times = [piece["at_ms"] for piece in pieces]
    assert times == sorted(times) and times[-1] >= 150
    assert found["complete"] is True and found["end"]["how"] == "open"


def test_the_capture_stops_at_its_size_limit():
    async def feed():
        recorder = Recorder("GET")
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (2 * MAX_CAPTURE)
        recorder.data_received(head)
        for _ in range(3):
            recorder.data_received(b"x" * MAX_CAPTURE)
        return recorder.finished.result(), recorder.as_json("limit")

    how, found = asyncio.run(feed())
    assert how == "limit"
    assert found["truncated"] is True and found["raw"]["size"] == MAX_CAPTURE
    assert found["complete"] is False and found["final"]["status"] == 200


def test_transcript_counts_against_the_connection_limit(make_mockstatus):
    server = make_mockstatus(max_connections=1)  # the admin request holds the one connection
    found = taken(server, "/status/200")
    assert found["final"]["status"] == 503
    assert b"--max-connections" in raw_of(found["body"])
