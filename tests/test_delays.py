"""Delays and timeouts (issue #4): ``?delay=``, the catalog and global defaults,
slow bodies, 408/504, ``Server-Timing``, a client that goes away mid-delay,
and delayed requests never holding up the others.

Real clients (requests, httpx, aiohttp) where what they see is the point; raw
sockets with arrival timestamps where the wire is (headers before a delayed
body, one drip piece per read, a closed 408 connection).  Delays stay at or
below 0.3 s; speed is measured by benchmarks/, not here.
"""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp
import h11
import httpx
import pytest
import requests
from wire import connect, read_chunk, read_exactly, read_head, read_response, read_to_end, reader, request_bytes

from mockstatus.durations import parse_delay, parse_duration

# --- helpers ------------------------------------------------------------------------


def timed_get(server, path: str, **kwargs) -> tuple[requests.Response, float]:
    began = time.monotonic()
    response = requests.get(server.url(path), timeout=5, **kwargs)
    return response, time.monotonic() - began


def header_value(head: bytes, name: bytes) -> bytes | None:
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return None


def header_names(head: bytes) -> list[bytes]:
    return [line.partition(b":")[0].strip().lower() for line in head.split(b"\r\n")[1:] if line]


def wait_for(predicate, timeout: float = 2.0):
    """Poll until ``predicate()`` is truthy; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.01)


# --- the delay is never shorter than asked -----------------------------------------


@pytest.mark.parametrize(
    "path, seconds",
    [
        ("/status/200?delay=250ms", 0.25),
        ("/status/200?delay=0.2s", 0.2),
        ("/status/200?delay=0.2", 0.2),
        ("/status/204?delay=150ms", 0.15),
        ("/status/503?delay=100ms", 0.1),
        ("/status/302?delay=100ms&location=/elsewhere", 0.1),
    ],
    ids=lambda value: f"ok{value}" if isinstance(value, str) else "",
)
def test_delay_is_at_least_what_was_asked(mockstatus, path, seconds):
    response, elapsed = timed_get(mockstatus, path, allow_redirects=False)
    assert elapsed >= seconds
    assert response.status_code == int(path.split("/")[2][:3])
    assert response.headers["Server-Timing"] == f"delay;dur={seconds * 1000:.0f}"


def test_delay_on_a_sequence_url(mockstatus):
    first, elapsed = timed_get(mockstatus, "/sequence/delays-seq/503,200?delay=120ms")
    second, _ = timed_get(mockstatus, "/sequence/delays-seq/503,200?delay=120ms")
    assert (first.status_code, second.status_code) == (503, 200)
    assert elapsed >= 0.12
    assert first.headers["Server-Timing"] == "delay;dur=120"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "HEAD"])
def test_delay_applies_to_every_method(mockstatus, method):
    began = time.monotonic()
    response = requests.request(
        method, mockstatus.url("/status/201?delay=100ms"), data=b"x" if method in ("POST", "PUT") else None, timeout=5
    )
    assert time.monotonic() - began >= 0.1
    assert response.status_code == 201


async def test_delay_seen_by_aiohttp_and_httpx(mockstatus):
    async with aiohttp.ClientSession() as session:
        began = time.monotonic()
        async with session.get(mockstatus.url("/status/418?delay=200ms")) as response:
            assert response.status == 418
        assert time.monotonic() - began >= 0.2
    async with httpx.AsyncClient() as client:
        began = time.monotonic()
        response = await client.get(mockstatus.url("/status/418?delay=200ms"))
        assert response.status_code == 418
        assert time.monotonic() - began >= 0.2


def test_a_client_read_timeout_trips_on_a_delay(mockstatus):
    """What users test: a read timeout shorter than the delay raises, a longer one does not."""
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(mockstatus.url("/status/504?delay=300ms"), timeout=(2, 0.1))
    assert requests.get(mockstatus.url("/status/504?delay=100ms"), timeout=(2, 2)).status_code == 504


def test_pipelined_delays_count_from_arrival(mockstatus):
    """Two delayed requests in one write: each waits 200 ms from its arrival, so the
    second reply follows the first at once instead of 200 ms after it."""
    with connect(mockstatus) as sock:
        began = time.monotonic()
        sock.sendall(request_bytes("/status/201?delay=200ms") + request_bytes("/status/202?delay=200ms"))
        first, _ = read_response(sock)
        second, _ = read_response(sock)
        elapsed = time.monotonic() - began
    assert first.startswith(b"HTTP/1.1 201 ") and second.startswith(b"HTTP/1.1 202 ")
    assert 0.2 <= elapsed < 0.4


def test_header_form(mockstatus):
    response, elapsed = timed_get(mockstatus, "/status/200", headers={"X-Mockstatus-Delay": "150ms"})
    assert elapsed >= 0.15
    assert response.headers["Server-Timing"] == "delay;dur=150"


# --- duration syntax ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds",
    [("250ms", 0.25), ("2s", 2.0), ("1.5s", 1.5), ("1m", 60.0), ("1.5", 1.5), ("0", 0.0), (".5s", 0.5), ("1h", 3600.0)],
)
def test_duration_syntax(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


def test_range_parses_to_its_bounds():
    spec = parse_delay("1s-3s", max_delay=300)
    assert (spec.low, spec.high) == (1.0, 3.0)
    assert parse_delay("100ms-0.3", max_delay=300).high == pytest.approx(0.3)


def applied_ms(response) -> int:
    name, _, dur = response.headers["Server-Timing"].partition(";dur=")
    assert name == "delay"
    return int(dur)


def test_range_picks_within_it_and_the_wait_matches_the_pick(mockstatus):
    picks = set()
    for seed in range(6):
        response, elapsed = timed_get(mockstatus, f"/status/200?delay=50ms-250ms&seed={seed}")
        ms = applied_ms(response)
        assert 50 <= ms <= 250
        assert elapsed >= (ms - 0.5) / 1000  # Server-Timing rounds to whole ms
        picks.add(ms)
    assert len(picks) > 1  # six seeds, not one fixed value


def test_range_with_seed_repeats(mockstatus):
    first, _ = timed_get(mockstatus, "/status/200?delay=50ms-250ms&seed=42")
    second, _ = timed_get(mockstatus, "/status/200?delay=50ms-250ms&seed=42")
    third, _ = timed_get(
        mockstatus, "/status/200", headers={"X-Mockstatus-Delay": "50ms-250ms", "X-Mockstatus-Seed": "42"}
    )
    assert applied_ms(first) == applied_ms(second) == applied_ms(third)


def test_no_delay_no_server_timing(mockstatus):
    response, _ = timed_get(mockstatus, "/status/200")
    assert "Server-Timing" not in response.headers


# --- where the delay comes from: query > header > catalog > global ------------------

OVERLAY = {"codes": {418: {"delay": "150ms"}, 299: {"reason": "Slow Custom", "delay": "0.1"}}}


@pytest.fixture
def layered(make_mockstatus):
    """A catalog delay on 418 and 299, a global 50 ms for every other code."""
    return make_mockstatus(config=OVERLAY, default_delay=0.05)


@pytest.mark.parametrize(
    "path, headers, expected_ms",
    [
        ("/status/418?delay=20ms", {"X-Mockstatus-Delay": "250ms"}, 20),
        ("/status/418", {"X-Mockstatus-Delay": "250ms"}, 250),
        ("/status/418", {}, 150),
        ("/status/299", {}, 100),
        ("/status/200", {}, 50),
        ("/status/200?delay=0", {}, None),
        ("/status/200", {"X-Mockstatus-Delay": "0s"}, None),
        ("/status/504", {}, None),
    ],
    ids=["query-over-header", "header-over-catalog", "catalog-418", "catalog-new-code", "global", "query-zero-over-global",
         "header-zero-over-global", "catalog-0s-over-global"],
)  # fmt: skip
def test_precedence(layered, path, headers, expected_ms):
    response, elapsed = timed_get(layered, path, headers=headers)
    if expected_ms is None:
        # 0 wins over the global default; 504's catalog entry says 0s explicitly.
        assert "Server-Timing" not in response.headers
    else:
        assert response.headers["Server-Timing"] == f"delay;dur={expected_ms}"
        assert elapsed >= expected_ms / 1000


def test_shipped_catalog_has_the_408_and_504_lines(mockstatus):
    """The one-line edit the README describes: 408 and 504 carry an explicit, commented delay."""
    from mockstatus.catalog import default_catalog_path

    text = default_catalog_path().read_text(encoding="utf-8")
    for code in (408, 504):
        block = text.split(f"\n  {code}:\n", 1)[1].split("\n\n", 1)[0]
        assert "    delay: 0s" in block
        assert "# delay: 30s" in block
        assert mockstatus.catalog.get(code).delay == 0.0


def test_make_504_hang_with_a_one_line_overlay(make_mockstatus):
    server = make_mockstatus(config={"codes": {504: {"delay": "200ms"}}})
    response, elapsed = timed_get(server, "/status/504")
    assert response.status_code == 504
    assert elapsed >= 0.2
    assert response.headers["Server-Timing"] == "delay;dur=200"


# --- bad durations: a 400 that names the value and the limit ------------------------

BAD = [
    ("delay=-1s", "'-1s'", "not negative"),
    ("delay=-0.1", "'-0.1'", "not negative"),
    ("delay=", "''", "250ms"),
    ("delay=soon", "'soon'", "250ms"),
    ("delay=1_0", "'1_0'", "250ms"),
    ("delay=inf", "'inf'", "250ms"),
    ("delay=nan", "'nan'", "250ms"),
    ("delay=1e3", "'1e3'", "250ms"),
    ("delay=%E2%91%A0s", "'①s'", "250ms"),
    ("delay=2ss", "'2ss'", "250ms"),
    ("delay=301s", "'301s'", "maximum of 300s"),
    ("delay=3s-1s", "'3s-1s'", "range start is above its end"),
    ("delay=1s-", "'1s-'", "range like 1s-3s"),
    ("delay=-1s-2s", "'-1s-2s'", "range like 1s-3s"),
    ("delay=1s-400s", "'1s-400s'", "maximum of 300s"),
    ("body_delay=-1s", "'-1s'", "not negative"),
    ("body_delay=", "''", "250ms"),
    ("body_delay=1_0", "'1_0'", "250ms"),
    ("body_delay=nan", "'nan'", "250ms"),
    ("body_delay=301s", "'301s'", "maximum of 300s"),
    ("drip=-1", "'-1'", "not negative"),
    ("drip=inf", "'inf'", "250ms"),
    ("drip=1_0", "'1_0'", "250ms"),
    ("drip=301s", "'301s'", "maximum of 300s"),
    ("drip=100ms&chunks=0", "'0'", "from 1 to 10000"),
    ("drip=100ms&chunks=1_0", "'1_0'", "from 1 to 10000"),
]


@pytest.mark.parametrize("query, named, allowed", BAD, ids=[f"bad/status/200?{q}" for q, _, _ in BAD])
def test_bad_duration_is_a_400_naming_value_and_limit(mockstatus, query, named, allowed):
    response = requests.get(mockstatus.url(f"/status/200?{query}"), timeout=5)
    assert response.status_code == 400
    assert named in response.text, response.text
    assert allowed in response.text, response.text
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "value, named, allowed",
    [
        ("-1s", "'-1s'", "not negative"),
        ("", "''", "250ms"),
        ("inf", "'inf'", "250ms"),
        ("999s", "'999s'", "maximum of 300s"),
    ],
    ids=["negative", "empty", "inf", "above-max"],
)
def test_bad_delay_header_is_a_400(mockstatus, value, named, allowed):
    response = requests.get(mockstatus.url("/status/200"), headers={"X-Mockstatus-Delay": value}, timeout=5)
    assert response.status_code == 400
    assert named in response.text and allowed in response.text, response.text


def test_bad_delay_as_json_names_the_value(mockstatus):
    response = requests.get(
        mockstatus.url("/status/200?delay=forever"), headers={"Accept": "application/json"}, timeout=5
    )
    assert response.status_code == 400
    assert "'forever'" in response.json()["error"]


def test_max_delay_is_configurable_and_named(make_mockstatus):
    server = make_mockstatus(max_delay=0.5)
    response = requests.get(server.url("/status/200?delay=600ms"), timeout=5)
    assert response.status_code == 400
    assert "'600ms'" in response.text and "maximum of 0.5s" in response.text and "--max-delay" in response.text
    for option in ("body_delay=600ms", "drip=600ms", "delay=100ms-600ms"):
        refused = requests.get(server.url(f"/status/200?{option}"), timeout=5)
        assert refused.status_code == 400, option
        assert "maximum of 0.5s (raise it with --max-delay)" in refused.text, refused.text
    response, elapsed = timed_get(server, "/status/200?delay=0.3")  # within the limit: served
    assert response.status_code == 200 and elapsed >= 0.3


def test_delay_at_exactly_the_maximum_is_allowed(make_mockstatus):
    server = make_mockstatus(max_delay=0.1)
    response, elapsed = timed_get(server, "/status/200?delay=100ms")
    assert response.status_code == 200 and elapsed >= 0.1


# --- 408 and 504 --------------------------------------------------------------------


def test_408_after_a_delay_closes_the_connection(mockstatus):
    with connect(mockstatus) as sock:
        began = time.monotonic()
        sock.sendall(request_bytes("/status/408?delay=150ms"))
        head, body = read_response(sock)
        answered = time.monotonic() - began
        rest, how = read_to_end(sock)  # a server that kept it open would time out here
    assert answered >= 0.15
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert header_value(head, b"Connection") == b"close"
    assert body == b"408 Request Timeout\n"
    assert (rest, how) == (b"", "close")


def test_408_closes_even_a_keep_alive_client(mockstatus):
    """requests' pooled connection is not reused after the 408: the next request opens a new one."""
    with requests.Session() as session:
        first = session.get(mockstatus.url("/status/408?delay=100ms"), timeout=5)
        assert first.status_code == 408 and first.headers["Connection"] == "close"
        second = session.get(mockstatus.url("/status/200"), timeout=5)
        assert second.status_code == 200


def test_504_after_a_delay_keeps_the_connection(mockstatus):
    """A gateway's 504 is an ordinary reply: the connection stays usable."""
    with connect(mockstatus) as sock:
        began = time.monotonic()
        sock.sendall(request_bytes("/status/504?delay=150ms"))
        head, body = read_response(sock)
        assert time.monotonic() - began >= 0.15
        assert head.startswith(b"HTTP/1.1 504 Gateway Timeout\r\n")
        assert header_value(head, b"Connection") != b"close"
        assert body == b"504 Gateway Timeout\n"
        sock.sendall(request_bytes("/status/200"))
        again, _ = read_response(sock)
        assert again.startswith(b"HTTP/1.1 200 OK\r\n")


# --- slow bodies --------------------------------------------------------------------


def test_body_delay_sends_headers_at_once_and_the_body_later(mockstatus):
    with connect(mockstatus) as sock:
        sent = time.monotonic()
        sock.sendall(request_bytes("/status/200?body_delay=300ms"))
        head = read_head(sock)
        head_at = time.monotonic() - sent
        assert not reader(sock).buffer  # the head came alone: no body byte read with it ...
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.recv(1)  # ... and none waiting yet
        sock.setblocking(True)
        body = read_exactly(sock, 7)
        body_at = time.monotonic() - sent
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert header_value(head, b"Content-Length") == b"7"
    assert b"transfer-encoding" not in header_names(head)
    assert header_value(head, b"Server-Timing") == b"body-delay;dur=300"
    assert head_at < 0.3 <= body_at  # the headers were not held back with the body
    assert body == b"200 OK\n"


def test_body_delay_with_requests_stream(mockstatus):
    """A client reading headers first (stream=True) gets them before the body is due."""
    began = time.monotonic()
    with requests.get(mockstatus.url("/status/200?body_delay=250ms"), stream=True, timeout=5) as response:
        headers_at = time.monotonic() - began
        body = response.content
    assert headers_at < 0.25 <= time.monotonic() - began
    assert body == b"200 OK\n"


def test_body_delay_trips_a_read_timeout_not_a_connect_timeout(mockstatus):
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        # The head arrives at once; reading the body then times out.
        _ = requests.get(mockstatus.url("/status/200?body_delay=300ms"), timeout=(2, 0.1)).content
    assert "Read timed out" in str(caught.value)


def test_drip_sends_each_piece_separately(mockstatus):
    """10 body bytes in 3 pieces over 300 ms: one read per piece, each no earlier than its slot."""
    with connect(mockstatus) as sock:
        sent = time.monotonic()
        sock.sendall(request_bytes("/status/200?drip=300ms&chunks=3&body=abcdefghij"))
        head = read_head(sock)
        head_at = time.monotonic() - sent
        assert not reader(sock).buffer  # no piece came with the head
        pieces = []
        received = 0
        while received < 10:
            piece = read_chunk(sock)
            assert piece, "closed before the whole body"
            pieces.append((time.monotonic() - sent, piece))
            received += len(piece)
    assert header_value(head, b"Content-Length") == b"10"
    assert b"transfer-encoding" not in header_names(head)
    assert header_value(head, b"Server-Timing") == b"drip;dur=300"
    assert head_at < 0.1
    assert [piece for _, piece in pieces] == [b"abcd", b"efg", b"hij"]
    for index, (at, _) in enumerate(pieces):
        assert at >= 0.1 * (index + 1)  # piece i leaves at (i + 1) * 300 ms / 3
    assert pieces[-1][0] >= 0.3


def test_drip_default_chunks_and_total_time(mockstatus):
    began = time.monotonic()
    response = requests.get(mockstatus.url("/status/200?drip=200ms"), timeout=5)
    assert time.monotonic() - began >= 0.2
    assert response.content == b"200 OK\n"
    assert response.headers["Content-Length"] == "7"


def test_delay_and_drip_add_up(mockstatus):
    began = time.monotonic()
    response = requests.get(mockstatus.url("/status/200?delay=100ms&body_delay=50ms&drip=100ms&chunks=2"), timeout=5)
    assert time.monotonic() - began >= 0.25
    assert response.headers["Server-Timing"] == "delay;dur=100, body-delay;dur=50, drip;dur=100"
    assert response.content == b"200 OK\n"


@pytest.mark.parametrize("method, path", [("HEAD", "/status/200"), ("GET", "/status/204")], ids=["HEAD", "204"])
def test_body_delay_without_a_body_holds_nothing(mockstatus, method, path):
    """No body to hold back: the reply is complete at once, and the connection is free for the next request."""
    with connect(mockstatus) as sock:
        began = time.monotonic()
        sock.sendall(request_bytes(f"{path}?body_delay=300ms", method=method))
        head = read_head(sock)
        sock.sendall(request_bytes("/status/200"))
        after, body = read_response(sock)
        elapsed = time.monotonic() - began
    assert head.split(b"\r\n")[0] in (b"HTTP/1.1 200 OK", b"HTTP/1.1 204 No Content")
    assert after.startswith(b"HTTP/1.1 200 OK\r\n") and body == b"200 OK\n"
    assert elapsed < 0.3


# --- 102 heartbeats while the delay runs -------------------------------------------


def test_102_heartbeats_during_the_delay(mockstatus):
    with connect(mockstatus) as sock:
        began = time.monotonic()
        interim, final, body = h11_exchange(sock, "/status/102?delay=250ms&interval=100ms")
        elapsed = time.monotonic() - began
    assert [event.status_code for event in interim] == [102, 102, 102]
    assert final.status_code == 200
    assert elapsed >= 0.25
    assert dict(final.headers)[b"server-timing"] == b"delay;dur=250"


def h11_exchange(sock, target: str):
    from wire import h11_responses

    return h11_responses(sock, h11.Request(method="GET", target=target, headers=[("Host", "mockstatus.test")]))


# --- a client that goes away: cancelled at once, journaled as 499 -------------------


def tasks_on(server) -> int:
    return server.call(lambda: len(asyncio.all_tasks()))


@pytest.mark.parametrize(
    "path",
    ["/status/200?delay=30s", "/status/200?body_delay=30s", "/status/200?drip=30s&chunks=2", "/sequence/gone/503?delay=30s"],
    ids=["delay", "body_delay", "drip", "sequence"],
)  # fmt: skip
def test_client_gone_during_a_delay_cancels_the_handler_at_once(make_mockstatus, path):
    server = make_mockstatus()
    idle = tasks_on(server)
    sock = connect(server)
    sock.sendall(request_bytes(path))
    # The handler is running (a connection task plus its handler task) ...
    assert wait_for(lambda: tasks_on(server) >= idle + 2)
    assert wait_for(lambda: server.call(lambda: server.state.held_replies) == 1)
    began = time.monotonic()
    sock.close()
    # ... and once the client is gone nothing is left: no task, no timer keeps it (30 s delay).
    assert wait_for(lambda: tasks_on(server) == idle), (tasks_on(server), idle)
    assert time.monotonic() - began < 2
    assert server.call(lambda: server.state.held_replies) == 0
    entries = server.requests()
    assert [(e["status"], e["client_gone"]) for e in entries] == [(499, True)]
    assert entries[0]["delay"] == (30.0 if "?delay" in path else 0.0)


def test_client_gone_with_aiohttp_timeout(mockstatus):
    """A client-side total timeout (aiohttp) closes the connection: the server journals a 499."""

    async def main():
        timeout = aiohttp.ClientTimeout(total=0.1)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            with pytest.raises(asyncio.TimeoutError):
                await session.get(mockstatus.url("/status/200?delay=20s"))

    asyncio.run(main())
    entries = wait_for(lambda: mockstatus.requests(path="/status/200"))
    assert [(e["status"], e["client_gone"], e["delay"]) for e in entries] == [(499, True, 20.0)]


# --- delayed requests never block the others ---------------------------------------


def test_delayed_requests_do_not_block_others(mockstatus):
    waiting = []
    try:
        for _ in range(200):
            sock = connect(mockstatus)
            # The clock starts before the send: the server may read the head (and
            # start the delay) before sendall() returns to this thread.
            sent = time.monotonic()
            sock.sendall(request_bytes("/status/200?delay=300ms"))
            waiting.append((sock, sent))
        with connect(mockstatus) as fast:
            fast.sendall(request_bytes("/status/200"))
            head, _ = read_response(fast)
            fast_at = time.monotonic()
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        arrivals = []
        for sock, sent in waiting:
            head, _ = read_response(sock)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            arrived = time.monotonic()
            assert arrived - sent >= 0.3
            arrivals.append(arrived)
    finally:
        for sock, _ in waiting:
            sock.close()
    assert fast_at < min(arrivals)  # answered while all 200 still waited


def test_server_timing_is_exposed_to_browsers(mockstatus):
    response = requests.get(
        mockstatus.url("/status/200?delay=10ms"), headers={"Origin": "http://example.test"}, timeout=5
    )
    assert "Server-Timing" in response.headers["Access-Control-Expose-Headers"]


def test_half_close_during_a_delay_counts_as_gone(make_mockstatus):
    """End-of-stream from the client (shutdown(SHUT_WR)) during a delay is a 499, as in nginx."""
    server = make_mockstatus()
    idle = tasks_on(server)
    with socket.create_connection((server.host, server.port)) as sock:
        sock.sendall(request_bytes("/status/200?delay=30s"))
        sock.shutdown(socket.SHUT_WR)
        rest, _ = read_to_end(sock)
    assert rest == b""
    assert wait_for(lambda: tasks_on(server) == idle)
    assert [(e["status"], e["client_gone"]) for e in server.requests()] == [(499, True)]


# --- the wheel that waits delays out (durations.Wheel) ------------------------------------


def run_on_uvloop(main):
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())


def test_wheel_never_wakes_a_delay_early_and_keeps_one_timer():
    from mockstatus.durations import Wheel

    async def main():
        wheel = Wheel(asyncio.get_running_loop())
        start = time.monotonic()
        deadlines = [start + 0.001 * step + 0.0003 * (step % 3) for step in range(1, 120)]
        woke: list[tuple[float, float]] = []

        async def one(deadline):
            await wheel.until(deadline)
            woke.append((deadline, time.monotonic()))

        tasks = [asyncio.ensure_future(one(deadline)) for deadline in reversed(deadlines)]
        await asyncio.sleep(0)
        timers_while_waiting = sum(1 for _ in [wheel.timer] if wheel.timer is not None)
        slots_while_waiting = len(wheel.members)
        await asyncio.gather(*tasks)
        return woke, timers_while_waiting, slots_while_waiting, wheel

    woke, timers, slots, wheel = run_on_uvloop(main)
    assert len(woke) == 119
    assert all(at >= deadline for deadline, at in woke), min(at - deadline for deadline, at in woke)
    assert timers == 1 and 1 <= slots < 119  # delays ending in one millisecond share a slot; one timer for all
    assert wheel.members == {} and wheel.timer is None


def test_wheel_forgets_a_cancelled_delay_at_once():
    from mockstatus.durations import Wheel

    async def main():
        wheel = Wheel(asyncio.get_running_loop())
        later = asyncio.ensure_future(wheel.until(time.monotonic() + 30))
        sooner = asyncio.ensure_future(wheel.until(time.monotonic() + 20))
        await asyncio.sleep(0)
        armed_for_sooner = wheel.armed_for
        sooner.cancel()
        one_left = (len(wheel.members), wheel.timer is not None)
        later.cancel()
        await asyncio.sleep(0)
        return armed_for_sooner, one_left, wheel

    armed_for, one_left, wheel = run_on_uvloop(main)
    assert armed_for > 0
    assert one_left == (1, True)
    assert wheel.members == {} and wheel.timer is None and wheel.due == []


def test_wheel_answers_a_deadline_already_past_at_once():
    from mockstatus.durations import Wheel

    async def main():
        wheel = Wheel(asyncio.get_running_loop())
        future = wheel.until(time.monotonic() - 1)
        return future.done(), wheel.members, wheel.timer

    assert run_on_uvloop(main) == (True, {}, None)


def test_wheel_cancelling_a_delay_already_past_is_harmless():
    from mockstatus.durations import Wheel

    async def main():
        wheel = Wheel(asyncio.get_running_loop())
        future = wheel.until(time.monotonic() - 1)
        return future.cancel(), future.result(), wheel.members

    assert run_on_uvloop(main) == (False, None, {})
