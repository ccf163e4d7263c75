"""Connection faults (`?fault=NAME` or the catalog's `kind`), byte by byte.

Each fault breaks the exchange in a different way a client must cope with:
reset (RST), empty (FIN, no byte), garbage, malformed, truncate, no-length.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time

import pytest
from wire import connect, open_fds, read_chunk, read_response, read_to_end, request_bytes, settle

from mockstatus.catalog import FAULTS

DATE = re.compile(rb"\r\nDate: [^\r]*")
# The faults in the reply itself; tests/test_wire_stages.py has the ones around it.
CLASSIC = ("reset", "empty", "garbage", "malformed", "truncate", "no-length")
MALFORMED_TAIL = b"this line is not a header\r\n\x00\x01\x02 neither is this\r\n\r\n"
OVERLAY = {
    "codes": {
        591: {"reason": "Reset Here", "kind": "reset"},
        592: {"reason": "Empty Here", "kind": "empty"},
        593: {"reason": "Garbage Here", "kind": "garbage"},
        594: {"reason": "Malformed Here", "kind": "malformed"},
        595: {"reason": "Truncated Here", "kind": "truncate", "body": "0123456789"},
        596: {"reason": "No Length Here", "kind": "no-length", "body": "read me until close\n"},
    }
}


def fetch(server, path: str, **kwargs) -> tuple[bytes, str]:
    with connect(server) as sock:
        sock.sendall(request_bytes(path, **kwargs))
        return read_to_end(sock)


def split_reply(data: bytes) -> tuple[bytes, dict[str, list[str]], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return status.encode(), headers, body


def normal_reply(server, path: str) -> tuple[bytes, dict[str, list[str]], bytes]:
    with connect(server) as sock:
        sock.sendall(request_bytes(path))
        head, body = read_response(sock)
    return split_reply(head + body)


def without(headers: dict[str, list[str]], *names: str) -> dict[str, list[str]]:
    return {k: v for k, v in headers.items() if k not in names}


# --- each fault, exactly ------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/status/200?fault=reset", "/status/503?fault=reset", "/status/204?fault=reset"],
    ids=lambda p: p.lstrip("/"),
)
def test_reset_sends_rst_before_any_byte(mockstatus, path):
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes(path))
        assert read_to_end(sock) == (b"", "reset")  # no byte first: the very first read fails with ECONNRESET


def test_empty_closes_cleanly_before_any_byte(mockstatus):
    assert fetch(mockstatus, "/status/200?fault=empty") == (b"", "close")


def test_garbage_is_64_non_http_bytes_then_close(mockstatus):
    data, how = fetch(mockstatus, "/status/200?fault=garbage")
    assert how == "close" and len(data) == 64
    assert all(byte >= 0x80 for byte in data)  # never "HTTP/" nor any ASCII a parser could take
    # ?seed= makes the bytes repeatable; different seeds give different bytes.
    seeded = fetch(mockstatus, "/status/200?fault=garbage&seed=7")
    assert seeded == fetch(mockstatus, "/status/200?fault=garbage&seed=7")
    assert seeded != fetch(mockstatus, "/status/200?fault=garbage&seed=8")


@pytest.mark.parametrize(
    "code, reason", [(200, "OK"), (503, "Service Unavailable"), (418, "I'm a teapot")], ids=lambda v: str(v)
)
def test_malformed_is_a_status_line_then_non_headers_then_close(mockstatus, code, reason):
    data, how = fetch(mockstatus, f"/status/{code}?fault=malformed")
    assert data == f"HTTP/1.1 {code} {reason}\r\n".encode() + MALFORMED_TAIL
    assert how == "close"


@pytest.mark.parametrize("code", [200, 503, 418], ids=lambda c: f"status/{c}")
def test_truncate_sends_the_real_length_and_half_the_body(mockstatus, code):
    status, headers, body = normal_reply(mockstatus, f"/status/{code}")
    data, how = fetch(mockstatus, f"/status/{code}?fault=truncate")
    t_status, t_headers, t_body = split_reply(data)
    assert how == "close"
    assert t_status == status
    assert t_headers["content-length"] == [str(len(body))]  # the length of the whole body ...
    assert t_body == body[: len(body) // 2]  # ... and only its first half
    assert without(t_headers, "date") == without(headers, "date")


@pytest.mark.parametrize("code", [200, 503, 418], ids=lambda c: f"status/{c}")
def test_no_length_frames_the_body_by_closing(mockstatus, code):
    status, headers, body = normal_reply(mockstatus, f"/status/{code}")
    data, how = fetch(mockstatus, f"/status/{code}?fault=no-length")
    n_status, n_headers, n_body = split_reply(data)
    assert how == "close"
    assert n_status == status and n_body == body
    assert "content-length" not in n_headers and "transfer-encoding" not in n_headers
    assert n_headers["connection"] == ["close"]
    assert without(n_headers, "date", "connection") == without(headers, "date", "content-length")


# --- faults break the reply that was asked for -----------------------------------------

CUSTOM = "0123456789abcdefghij"


@pytest.mark.parametrize(
    "path, headers",
    [
        (f"/status/200?fault=truncate&body={CUSTOM}", {}),
        ("/status/200?fault=truncate", {"X-Mockstatus-Body": CUSTOM}),
        (f"/status/503?fault=truncate&body={CUSTOM}&retry_after=30&header=X-Why:test", {}),
    ],
    ids=["truncate/query-body", "truncate/header-body", "truncate/body-and-headers"],
)
def test_truncate_cuts_the_custom_body_to_half_its_declared_length(mockstatus, path, headers):
    data, how = fetch(mockstatus, path, headers=headers)
    status, got, body = split_reply(data)
    assert how == "close"
    assert got["content-length"] == ["20"] and body == b"0123456789"
    assert got["content-type"] == ["text/plain; charset=utf-8"]
    if "retry_after" in path:
        assert status == b"HTTP/1.1 503 Service Unavailable"
        assert got["retry-after"] == ["30"] and got["x-why"] == ["test"]


def test_no_length_sends_the_custom_body_and_closes(mockstatus):
    data, how = fetch(mockstatus, "/status/201?fault=no-length&body=until-close&location=/made")
    status, got, body = split_reply(data)
    assert (status, body, how) == (b"HTTP/1.1 201 Created", b"until-close", "close")
    assert got["location"] == ["/made"] and got["connection"] == ["close"]
    assert "content-length" not in got and "transfer-encoding" not in got


def test_the_catalogs_own_body_is_the_one_cut_and_the_one_sent(make_mockstatus):
    server = make_mockstatus(OVERLAY)
    assert split_reply(fetch(server, "/status/595")[0])[2] == b"01234"
    assert (
        split_reply(fetch(server, "/status/200?fault=no-length", headers={"X-Mockstatus-Body": "hdr"})[0])[2] == b"hdr"
    )
    # ?body= replaces the catalog's body of a truncating code too.
    data = fetch(server, "/status/595?body=abcdefgh")[0]
    assert split_reply(data)[1]["content-length"] == ["8"] and split_reply(data)[2] == b"abcd"


@pytest.mark.parametrize("fault", ["malformed", "garbage", "empty", "reset"])
def test_faults_without_a_body_on_the_wire_keep_the_custom_one_out(mockstatus, fault):
    data, how = fetch(mockstatus, f"/status/503?fault={fault}&body=SECRET-BODY&seed=1")
    assert b"SECRET-BODY" not in data
    assert how == ("reset" if fault == "reset" else "close")
    if fault == "malformed":  # the status asked for, then the lines that are not headers
        assert data == b"HTTP/1.1 503 Service Unavailable\r\n" + MALFORMED_TAIL
    if fault == "garbage":  # the same bytes as without a body: nothing of the reply applies
        assert data == fetch(mockstatus, "/status/503?fault=garbage&seed=1")[0]


@pytest.mark.parametrize("fault", CLASSIC)
def test_fault_from_the_request_header_is_the_same_fault(mockstatus, fault):
    by_header = fetch(mockstatus, "/status/200", headers={"X-Mockstatus-Fault": fault, "X-Mockstatus-Seed": "1"})
    by_query = fetch(mockstatus, f"/status/200?fault={fault}&seed=1")
    dateless = lambda reply: (DATE.sub(b"", reply[0]), reply[1])  # noqa: E731
    assert dateless(by_header) == dateless(by_query)
    assert by_header[1] == ("reset" if fault == "reset" else "close")


@pytest.mark.parametrize("fault", CLASSIC)
def test_fault_to_an_http10_client(mockstatus, fault):
    data, how = fetch(mockstatus, f"/status/200?fault={fault}", version="1.0")
    assert how == ("reset" if fault == "reset" else "close")
    if fault in ("malformed", "truncate", "no-length"):
        assert data.startswith(b"HTTP/1.1 200 OK\r\n")


def test_faults_in_a_sequence_and_a_random_choice(mockstatus):
    assert fetch(mockstatus, "/sequence/flaky/444,200") == (b"", "close")
    data, _ = fetch(mockstatus, "/sequence/flaky/444,200", headers={"Connection": "close"})
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert fetch(mockstatus, "/status/500,502?fault=empty") == (b"", "close")


# --- the catalog's kind -------------------------------------------------------------


def test_faults_as_catalog_kinds_through_an_overlay(make_mockstatus):
    server = make_mockstatus(OVERLAY)
    with connect(server) as sock:
        sock.sendall(request_bytes("/status/591"))
        assert read_to_end(sock) == (b"", "reset")
    assert fetch(server, "/status/592") == (b"", "close")
    data, how = fetch(server, "/status/593")
    assert len(data) == 64 and all(b >= 0x80 for b in data) and how == "close"
    assert fetch(server, "/status/594") == (b"HTTP/1.1 594 Malformed Here\r\n" + MALFORMED_TAIL, "close")
    status, headers, body = split_reply(fetch(server, "/status/595")[0])
    assert status == b"HTTP/1.1 595 Truncated Here" and headers["content-length"] == ["10"] and body == b"01234"
    status, headers, body = split_reply(fetch(server, "/status/596")[0])
    assert status == b"HTTP/1.1 596 No Length Here" and "content-length" not in headers
    assert body == b"read me until close\n"
    assert [e["status"] for e in server.requests()] == [591, 592, 593, 594, 595, 596]


def test_query_fault_overrides_the_catalog_kind(make_mockstatus):
    server = make_mockstatus(OVERLAY)
    assert fetch(server, "/status/592?fault=malformed")[0].startswith(b"HTTP/1.1 592 Empty Here\r\nthis line")


# --- bad names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, headers",
    [("/status/200?fault=bogus", {}), ("/status/200?fault=", {}), ("/status/200?fault=RESET", {}),
     ("/status/200", {"X-Mockstatus-Fault": "bogus"})],
    ids=["query/bogus", "query/empty", "query/RESET", "header/bogus"],
)  # fmt: skip
def test_unknown_fault_gets_400_listing_the_names(mockstatus, path, headers):
    with connect(mockstatus) as sock:
        sock.sendall(request_bytes(path, headers=headers))
        head, body = read_response(sock)
        sock.sendall(request_bytes("/status/204"))  # the connection is still good
        assert read_response(sock)[0].startswith(b"HTTP/1.1 204 ")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    text = body.decode()
    assert "bad fault" in text
    assert all(name in text for name in FAULTS)


# --- the server survives ------------------------------------------------------------


def test_a_thousand_mixed_faults_leave_nothing_behind(make_mockstatus):
    server = make_mockstatus()
    paths = [f"/status/200?fault={fault}" for fault in CLASSIC] + ["/status/444", "/status/600", "/status/408"]
    fetch(server, "/__mockstatus/health", headers={"Connection": "close"})  # warm up
    tasks = lambda: server.call(lambda: len(asyncio.all_tasks()))  # noqa: E731
    tasks_before, fds_before = tasks(), open_fds()
    outcomes = {}
    for path in itertools.islice(itertools.cycle(paths), 1000):
        data, how = fetch(server, path)
        outcomes.setdefault(path, set()).add((how, len(data) > 0))
    # Every fault kept its own behaviour all the way through.
    assert outcomes["/status/200?fault=reset"] == {("reset", False)}
    assert outcomes["/status/200?fault=empty"] == outcomes["/status/444"] == {("close", False)}
    assert all(
        outcome == {("close", True)}
        for path, outcome in outcomes.items()
        if "reset" not in path and "empty" not in path and "444" not in path
    )
    # ... and left no task, connection or file descriptor behind.
    # (<=: a connection an earlier test left to the session server may close meanwhile.)
    assert settle(tasks, tasks_before) <= tasks_before
    assert settle(open_fds, fds_before) <= fds_before
    assert server.call(lambda: len(server._server.runner.server.connections)) == 0
    with connect(server) as sock:
        sock.sendall(request_bytes("/__mockstatus/health"))
        head, _ = read_response(sock)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")


def test_raw_replies_log_no_error(make_mockstatus, caplog, capfd):
    """AlreadySent writes nothing after a raw reply, so aiohttp has nothing to complain about."""
    server = make_mockstatus(OVERLAY, upgrade_idle_timeout=0.1)
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    caplog.set_level(logging.DEBUG, logger="asyncio")
    caplog.set_level(logging.DEBUG, logger="mockstatus")
    paths = [f"/status/200?fault={fault}" for fault in CLASSIC] + [
        f"/status/{code}" for code in (444, 600, 408, *OVERLAY["codes"])
    ]
    for path in paths:
        fetch(server, path)
    with connect(server) as sock:  # a raw upgrade that ends by the idle timeout ...
        sock.sendall(request_bytes("/status/101", headers={"Upgrade": "foo", "Connection": "Upgrade"}))
        read_to_end(sock)
    with connect(server) as sock:  # ... and one the client ends
        sock.sendall(request_bytes("/status/101", headers={"Upgrade": "foo", "Connection": "Upgrade"}) + b"bye")
        read_chunk(sock)
    time.sleep(0.2)
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert noisy == [], [r.getMessage() for r in noisy]
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err
    statuses = [e["status"] for e in server.requests()]
    assert statuses[-2:] == [101, 101] and 499 not in statuses


# --- reset on the standard asyncio loop too -----------------------------------------


def test_reset_on_the_standard_asyncio_loop(asyncio_loop_server):
    with connect(asyncio_loop_server) as sock:
        sock.sendall(request_bytes("/status/200?fault=reset"))
        assert read_to_end(sock) == (b"", "reset")
    assert fetch(asyncio_loop_server, "/status/200?fault=empty") == (b"", "close")
