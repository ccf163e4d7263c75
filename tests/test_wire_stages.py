"""Faults around a reply, byte by byte and in time: stall, stall-body,
reset-after:N, close-after:N, close-during-upload, reset-during-upload,
early-response, stale-keepalive:T and close-after-requests:N[!].

Servers here run with ``--max-delay 0.2``: a stall ends by then.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time

import pytest
from wire import connect, open_fds, read_chunk, read_response, read_to_end, request_bytes, settle

from mockstatus.catalog import ConfigError, load_catalog

HOLD = 0.2  # the servers' --max-delay: how long a stall lasts
DATE_VALUE = re.compile(rb"(?<=\r\nDate: )[^\r]*")
OVERLAY = {
    "codes": {
        581: {"reason": "Cut Here", "kind": "reset-after:12", "body": "0123456789"},
        582: {"reason": "Stale Here", "kind": "stale-keepalive:50ms", "body": "0123456789"},
        583: {"reason": "Early Here", "kind": "early-response", "body": "0123456789"},
    }
}


@pytest.fixture
def server(make_mockstatus):
    return make_mockstatus(OVERLAY, max_delay=HOLD)


def masked(data: bytes) -> bytes:
    """The Date value as x's of the same length, also in a reply cut inside it."""
    data = DATE_VALUE.sub(lambda m: b"x" * len(m.group()), data)
    cut = data.rfind(b"\r\nDate: ")
    if cut >= 0 and b"\r" not in data[cut + 8 :]:
        data = data[: cut + 8] + b"x" * (len(data) - cut - 8)
    return data


def whole_reply(server, path: str) -> bytes:
    """The reply a fault cuts: the same head (Content-Length included) and body."""
    with connect(server) as sock:
        sock.sendall(request_bytes(path, headers={"Connection": "close"}))
        data, how = read_to_end(sock)
    assert how == "close"
    return data


def timed(sock) -> tuple[bytes, str, float]:
    began = time.monotonic()
    data, how = read_to_end(sock)
    return data, how, time.monotonic() - began


# --- stall and stall-body -------------------------------------------------------------


def test_status_200_fault_stall_sends_nothing_then_closes_at_max_delay(server):
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/200?fault=stall"))
        data, how, took = timed(sock)
    assert (data, how) == (b"", "close")
    assert HOLD <= took < HOLD + 0.5
    assert [(e["fault"], e["bytes_sent"], e["status"]) for e in server.requests()] == [("stall", 0, 200)]


def test_status_200_fault_stall_ends_when_the_client_leaves(server):
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/200?fault=stall"))
        time.sleep(0.05)
    deadline = time.monotonic() + 1
    while not server.requests() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [(e["fault"], e["bytes_sent"]) for e in server.requests()] == [("stall", 0)]


def test_status_200_fault_stall_body_sends_head_and_half_the_body(server):
    whole = whole_reply(server, "/status/200")
    head, _, body = whole.partition(b"\r\n\r\n")
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/200?fault=stall-body"))
        began = time.monotonic()
        first = read_chunk(sock)
        first_at = time.monotonic() - began
        rest, how, _ = timed(sock)
        ended_at = time.monotonic() - began
    expected = head.replace(b"\r\nConnection: close", b"") + b"\r\n\r\n" + body[: len(body) // 2]
    assert masked(first + rest) == masked(expected)
    assert first_at < 0.1 and HOLD <= ended_at < HOLD + 0.5 and how == "close"
    assert server.requests()[-1]["bytes_sent"] == len(expected)


# --- reset-after:N and close-after:N --------------------------------------------------


@pytest.mark.parametrize("fault, end", [("reset-after", "reset"), ("close-after", "close")])
@pytest.mark.parametrize("count", [0, 1, 12, 60, 100_000])
def test_status_503_fault_cut_after_n_bytes(server, fault, end, count):
    whole = whole_reply(server, "/status/503").replace(b"\r\nConnection: close", b"")
    with connect(server) as sock:
        sock.sendall(request_bytes(f"/status/503?fault={fault}:{count}"))
        data, how = read_to_end(sock)
    assert masked(data) == masked(whole[:count])
    assert how == end
    entry = server.requests()[-1]
    assert (entry["fault"], entry["bytes_sent"]) == (f"{fault}:{count}", min(count, len(whole)))


# --- uploads --------------------------------------------------------------------------


@pytest.mark.parametrize("fault, end", [("close-during-upload", "close"), ("reset-during-upload", "reset")])
def test_status_200_fault_during_upload_reads_half_the_body(server, fault, end):
    head = request_bytes(f"/status/200?fault={fault}", "POST", headers={"Content-Length": "10"})
    with connect(server) as sock:
        sock.sendall(head + b"0123")
        sock.settimeout(0.1)
        with pytest.raises(TimeoutError):  # 4 of 10 bytes: not half yet, the server waits
            sock.recv(1)
        sock.sendall(b"4")
        data, how = read_to_end(sock)
    assert (data, how) == (b"", end)
    entry = server.requests()[-1]
    assert (entry["fault"], entry["bytes_sent"], entry["body_size"]) == (fault, 0, 5)


@pytest.mark.parametrize("fault, end", [("close-during-upload", "close"), ("reset-during-upload", "reset")])
def test_status_200_fault_during_upload_chunked_reads_the_first_chunk(server, fault, end):
    head = request_bytes(f"/status/200?fault={fault}", "POST", headers={"Transfer-Encoding": "chunked"})
    with connect(server) as sock:
        sock.sendall(head + b"3\r\nabc\r\n")
        data, how = read_to_end(sock)
    assert (data, how) == (b"", end)
    assert server.requests()[-1]["body_size"] == 3


def test_status_413_fault_early_response_answers_before_the_body(server):
    whole = whole_reply(server, "/status/413")
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/413?fault=early-response", "POST", headers={"Content-Length": "100000"}))
        data, how = read_to_end(sock)  # not one byte of the body was sent
    assert masked(data) == masked(whole) and how == "close"
    assert b"\r\nConnection: close\r\n" in data
    entry = server.requests()[-1]
    assert (entry["fault"], entry["bytes_sent"], entry["body_size"]) == ("early-response", len(data), 0)


# --- keep-alive -----------------------------------------------------------------------


def test_status_200_fault_stale_keepalive_closes_silently_after_t(server):
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/200?fault=stale-keepalive:150ms"))
        began = time.monotonic()
        head, body = read_response(sock)
        assert time.monotonic() - began < 0.1
        assert b"Connection:" not in head and body == b"200 OK\n"  # keep-alive promised
        sock.sendall(request_bytes("/status/200"))  # reused in time: never answered
        data, how = read_to_end(sock)
        closed_at = time.monotonic() - began
    assert (data, how) == (b"", "close")
    assert 0.145 <= closed_at < 0.6  # the loop's timers have whole milliseconds
    entry = server.requests()[-1]
    assert (entry["fault"], entry["bytes_sent"]) == ("stale-keepalive:150ms", len(head) + len(body))


def test_status_200_fault_stale_keepalive_to_http10_says_keep_alive(server):
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/200?fault=stale-keepalive:50ms", version="1.0"))
        head, _ = read_response(sock)
        assert b"\r\nConnection: keep-alive\r\n" in head
        assert read_to_end(sock) == (b"", "close")


@pytest.mark.parametrize("silent", [False, True], ids=["N", "N!"])
def test_status_200_fault_close_after_requests(server, silent):
    fault = "close-after-requests:3" + ("!" if silent else "")
    with connect(server) as sock:
        heads = []
        for _ in range(3):
            sock.sendall(request_bytes(f"/status/200?fault={fault}"))
            heads.append(read_response(sock)[0])
        assert read_to_end(sock) == (b"", "close")
    assert [b"Connection: close" in head for head in heads] == [False, False, not silent]
    assert [e["fault"] for e in server.requests()] == [fault] * 3


# --- every way of asking --------------------------------------------------------------


def test_catalog_kinds_with_arguments(server):
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/581"))
        assert read_to_end(sock) == (b"HTTP/1.1 581", "reset")
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/582"))
        assert read_response(sock)[1] == b"0123456789"
        assert read_to_end(sock) == (b"", "close")
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/583", "POST", headers={"Content-Length": "50"}))
        data, how = read_to_end(sock)
    assert data.startswith(b"HTTP/1.1 583 Early Here\r\n") and data.endswith(b"0123456789") and how == "close"
    assert [e["fault"] for e in server.requests()] == ["reset-after:12", "stale-keepalive:50ms", "early-response"]


def test_fault_header_sequence_and_random_choice(server):
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/200", headers={"X-Mockstatus-Fault": "reset-after:12"}))
        assert read_to_end(sock) == (b"HTTP/1.1 200", "reset")
    for expected in (b"HTTP/1.1 503", b"HTTP/1.1 200"):
        with connect(server) as sock:
            sock.sendall(request_bytes("/sequence/cut/503,200?fault=close-after:12"))
            assert read_to_end(sock) == (expected, "close")
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/500,502?fault=close-after:9"))
        assert read_to_end(sock) == (b"HTTP/1.1 ", "close")
    assert [e["step"] for e in server.requests(sequence="cut")] == [1, 2]


@pytest.mark.parametrize(
    "value, says",
    [
        ("reset-after", "reset-after:N"),
        ("reset-after:", "reset-after:N"),
        ("close-after:-1", "close-after:N"),
        ("close-after:1x", "close-after:N"),
        ("close-after-requests:0", "from 1 to"),
        ("close-after-requests:2!!", "close-after-requests:N[!]"),
        ("stale-keepalive:soon", "stale-keepalive[:T]"),
        ("stale-keepalive:1s", "above the maximum of 0.2s"),
        ("stall:2", "the share '2'"),
        ("stall-body:64:0.5:1", "the share '64:0.5:1'"),
    ],
)
def test_bad_fault_arguments_get_400_naming_the_form(server, value, says):
    with connect(server) as sock:
        sock.sendall(request_bytes(f"/status/200?fault={value}"))
        head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 400 ")
    assert f"bad fault {value!r}" in body.decode() and says in body.decode()


@pytest.mark.parametrize("kind", ["reset-after", "stale-keepalive:x", "close-after-requests:0", "stall:2"])
def test_bad_catalog_kind_is_one_line(tmp_path, kind):
    path = tmp_path / "bad.yaml"
    path.write_text(f"codes:\n  599:\n    kind: '{kind}'\n")
    with pytest.raises(ConfigError) as caught:
        load_catalog(path)
    assert "codes.599.kind" in str(caught.value) and "\n" not in str(caught.value)


# --- resources ------------------------------------------------------------------------


def test_a_thousand_stage_faults_leave_nothing_behind(make_mockstatus):
    server = make_mockstatus(max_delay=0.01)
    post = {"Content-Length": "4"}
    cases = [
        ("/status/200?fault=stall", "GET", {}, b"", "close"),
        ("/status/200?fault=stall-body", "GET", {}, b"", "close"),
        ("/status/200?fault=reset-after:20", "GET", {}, b"", "reset"),
        ("/status/200?fault=close-after:20", "GET", {}, b"", "close"),
        ("/status/200?fault=close-during-upload", "POST", post, b"ab", "close"),
        ("/status/200?fault=reset-during-upload", "POST", post, b"ab", "reset"),
        ("/status/200?fault=early-response", "POST", post, b"", "close"),
        ("/status/200?fault=stale-keepalive:1ms", "GET", {}, b"", "close"),
        ("/status/200?fault=close-after-requests:1", "GET", {}, b"", "close"),
        ("/status/200?fault=close-after-requests:1!", "GET", {}, b"", "close"),
    ]
    with connect(server) as sock:
        sock.sendall(request_bytes("/__mockstatus/health", headers={"Connection": "close"}))
        read_to_end(sock)
    tasks = lambda: server.call(lambda: len(asyncio.all_tasks()))  # noqa: E731
    tasks_before, fds_before = tasks(), open_fds()
    for path, method, headers, body, end in itertools.islice(itertools.cycle(cases), 1000):
        with connect(server) as sock:
            sock.sendall(request_bytes(path, method, headers=headers) + body)
            assert read_to_end(sock)[1] == end, path
    assert settle(tasks, tasks_before) <= tasks_before
    assert settle(open_fds, fds_before) <= fds_before
    assert server.call(lambda: len(server._server.runner.server.connections)) == 0
    assert len(server.requests()) == min(1000, server.settings.journal_size)


def test_catalog_stale_keepalive_above_max_delay_is_refused(tmp_path):
    from mockstatus.settings import resolve

    path = tmp_path / "slow.yaml"
    path.write_text("codes:\n  599:\n    kind: 'stale-keepalive:10s'\n")
    with pytest.raises(ConfigError, match=r"codes.599.kind: stale-keepalive:10s closes after 10s, above --max-delay"):
        resolve(str(path), overrides={"max_delay": 1.0})
