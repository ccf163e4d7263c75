"""Regression tests for the eleven findings of the second hardening round.

Each test is named after its finding (``test_finding_NN_...``); SECURITY.md
maps each promise to the test that proves it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
import websockets.sync.client
from wire import connect, read_head, read_response, read_until_close, request_bytes

from mockstatus import serve_in_thread
from mockstatus.catalog import ConfigError
from mockstatus.settings import load_config


def journal(server, **params) -> requests.Response:
    return requests.get(server.url("/__mockstatus/requests"), params=params, timeout=5)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKSTATUS_")}
    return {**env, **extra}


# --- 1: the journal is bounded in bytes, per entry and in total ---------------------------


def test_finding_01_journal_bytes_each_entry_is_cut_at_8_kib_and_marked_truncated(mockstatus):
    big = {f"X-Big-{i}": "v" * 8000 for i in range(20)}  # 160 kB of headers, within the head limits
    requests.get(mockstatus.url("/nowhere?q=" + "a" * 3000), headers=big, timeout=5)
    (entry,) = journal(mockstatus).json()["requests"]
    assert entry["truncated"] is True
    kept = sum(len(name) + len(value) for name, value in entry["headers"]) + len(entry["path"]) + len(entry["query"])
    assert kept <= 8192
    assert entry["path"] == "/nowhere"
    assert entry["headers"][0] == ["Host", mockstatus.host + f":{mockstatus.port}"]


def test_finding_01_journal_bytes_small_requests_are_kept_whole(mockstatus):
    requests.get(mockstatus.url("/status/200"), headers={"X-A": "1"}, timeout=5)
    (entry,) = journal(mockstatus).json()["requests"]
    assert entry["truncated"] is False
    assert ["X-A", "1"] in entry["headers"]


def test_finding_01_journal_bytes_total_cap_drops_the_oldest(make_mockstatus):
    server = make_mockstatus(journal_max_bytes=128 * 1024)
    big = {f"X-Big-{i}": "v" * 8000 for i in range(4)}
    with requests.Session() as session:
        for n in range(40):
            session.get(server.url(f"/status/200?n={n}"), headers=big, timeout=5)
    entries = journal(server).json()["requests"]
    assert 5 < len(entries) < 40  # cut by bytes, long before the 1,000-entry count
    assert entries[-1]["query"] == "n=39"  # the newest kept, the oldest gone
    assert server.state.journal.bytes <= 128 * 1024


# --- 2: admin replies compact, paged, streamed --------------------------------------------


def test_finding_02_admin_json_is_compact(mockstatus):
    requests.get(mockstatus.url("/status/200"), timeout=5)
    body = journal(mockstatus).text
    assert "\n " not in body and '": ' not in body
    assert body.endswith("}\n")


def test_finding_02_requests_limit_and_after_page_the_journal(mockstatus):
    for code in (200, 201, 202, 203, 204):
        requests.get(mockstatus.url(f"/status/{code}"), timeout=5)
    first = journal(mockstatus, limit=2).json()
    assert [e["status"] for e in first["requests"]] == [200, 201]
    second = journal(mockstatus, limit=2, after=first["next_after"]).json()
    assert [e["status"] for e in second["requests"]] == [202, 203]
    last = journal(mockstatus, limit=2, after=second["next_after"]).json()
    assert [e["status"] for e in last["requests"]] == [204]
    assert last["next_after"] is None


@pytest.mark.parametrize(("name", "value"), [("limit", "0"), ("limit", "ten"), ("after", "-1")])
def test_finding_02_bad_paging_is_400_naming_the_value(mockstatus, name, value):
    reply = journal(mockstatus, **{name: value})
    assert reply.status_code == 400
    assert f"bad {name} {value!r}" in reply.json()["error"]


def test_finding_02_sequences_snapshot_gives_the_spec_not_every_step(mockstatus):
    requests.get(mockstatus.url("/sequence/long/503*10000"), timeout=5)
    reply = requests.get(mockstatus.url("/__mockstatus/sequences"), timeout=5)
    snapshot = reply.json()["sequences"]["long"]
    assert snapshot["spec"] == "503*10000" and snapshot["steps"] == 10000 and snapshot["calls"] == 1
    assert "codes" not in snapshot
    assert len(reply.content) < 400


def test_finding_02_a_client_that_never_reads_holds_one_socket_buffer(make_mockstatus):
    server = make_mockstatus()
    headers = {f"X-H-{i}": "v" * 1000 for i in range(7)}  # about 7 kB an entry
    with requests.Session() as session:
        for _ in range(600):  # a journal of about 4 MB of JSON
            session.get(server.url("/status/204"), headers=headers, timeout=5)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    with sock:
        sock.sendall(b"GET /__mockstatus/requests HTTP/1.1\r\nHost: localhost\r\n\r\n")
        time.sleep(0.3)
        listener = server._server.listener  # our own RunningServer, not aiohttp's
        buffered = server.call(lambda: max(c.transport.get_write_buffer_size() for c in listener.connections))
        # The reply waits in its handler, not in a buffer: at most a batch and the high-water mark.
        assert buffered < 1024 * 1024
        # And the server answers others meanwhile.
        assert requests.get(server.url("/status/200"), timeout=5).status_code == 200


# --- 3: no 500 from any value ---------------------------------------------------------------


@pytest.mark.parametrize(
    "date", ["Wed, 21 Oct 99999999999999999999 07:28:00 GMT", "Wed, 21 Oct 2026 99999999999999999999:28:00 GMT"]
)
def test_finding_03_overflowing_retry_after_date_is_400_naming_it(mockstatus, date):
    reply = requests.get(mockstatus.url("/status/503"), params={"retry_after": date}, timeout=5)
    assert reply.status_code == 400
    assert repr(date) in reply.text
    header = requests.get(mockstatus.url("/sequence/ra/503,200"), headers={"X-Mockstatus-Retry-After": date}, timeout=5)
    assert header.status_code == 400


@pytest.mark.parametrize(
    "codes", ["200:1" + "0" * 308 + ",503:1" + "0" * 308, "200:" + "9" * 400], ids=["sum-infinite", "one-infinite"]
)
def test_finding_03_infinite_weights_are_400_naming_them(mockstatus, codes):
    reply = requests.get(mockstatus.url(f"/status/{codes}"), timeout=5)
    assert reply.status_code == 400
    assert "bad" in reply.text and ("1000000000" in reply.text or "9999999999" in reply.text)


# --- 4: admin routes for their owner only ----------------------------------------------------


def test_finding_04_admin_routes_send_no_cors_headers(mockstatus):
    for path in ("/__mockstatus/requests", "/__mockstatus/health", "/__mockstatus/sequences", "/__mockstatus/codes"):
        reply = requests.get(mockstatus.url(path), headers={"Origin": "https://evil.example"}, timeout=5)
        assert reply.status_code == 200
        assert not [name for name in reply.headers if name.lower().startswith("access-control-")]


@pytest.mark.parametrize("host", ["rebind.evil.example", "rebind.evil.example:8080", "10.0.0.1"])
def test_finding_04_foreign_host_is_403_naming_it(mockstatus, host):
    with connect(mockstatus) as sock:
        sock.sendall(f"GET /__mockstatus/requests HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        raw = read_until_close(sock)
    assert raw.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert f"Host '{host}'".encode() in raw


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:1", "app.localhost", "127.0.0.1:9", "[::1]:80", "127.1.2.3"])
def test_finding_04_loopback_hosts_are_answered(mockstatus, host):
    with connect(mockstatus) as sock:
        sock.sendall(f"GET /__mockstatus/health HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        assert read_until_close(sock).startswith(b"HTTP/1.1 200 OK\r\n")


def test_finding_04_allowed_hosts_extends_the_list(make_mockstatus):
    server = make_mockstatus(allowed_hosts=("mock.test",))
    with connect(server) as sock:
        sock.sendall(b"GET /__mockstatus/health HTTP/1.1\r\nHost: mock.test:80\r\nConnection: close\r\n\r\n")
        assert read_until_close(sock).startswith(b"HTTP/1.1 200 OK\r\n")


SECRETS = {
    "Authorization": "Bearer prod-key",
    "Proxy-Authorization": "Basic cHJveHk=",
    "Cookie": "sid=s3ss10n",
}


def test_finding_04_journal_redacts_credentials(mockstatus):
    requests.get(mockstatus.url("/status/200"), headers=SECRETS, timeout=5)
    headers = dict(journal(mockstatus).json()["requests"][0]["headers"])
    assert {name: headers[name] for name in SECRETS} == dict.fromkeys(SECRETS, "[redacted]")
    # The test's own process reads what the client sent.
    assert dict(mockstatus.requests()[0]["headers"])["Authorization"] == "Bearer prod-key"


def test_finding_04_journal_secrets_keep_records_them(make_mockstatus):
    server = make_mockstatus(journal_secrets="keep")
    requests.get(server.url("/status/200"), headers=SECRETS, timeout=5)
    headers = dict(journal(server).json()["requests"][0]["headers"])
    assert {name: headers[name] for name in SECRETS} == SECRETS


def test_finding_04_empty_admin_token_is_one_line_and_exit_2():
    done = subprocess.run(
        [sys.executable, "-m", "mockstatus", "serve", "--port", "0"],
        env=clean_env(MOCKSTATUS_ADMIN_TOKEN=""), capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "MOCKSTATUS_ADMIN_TOKEN" in line and "empty" in line


# --- 5: Refresh parsed as browsers do ---------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["0;https://evil.test/", "0; //evil.test/", "0,https://evil.test/", "0;  'https://evil.test/'",
     "0 https://evil.test/", ".5; URL = \"https://evil.test/\"", "0; javascript:alert(1)"],
)  # fmt: skip
def test_finding_05_refresh_without_url_equals_is_checked(make_mockstatus, value):
    server = make_mockstatus(allowed_redirect_hosts=("good.example",))
    reply = requests.get(server.url("/status/200"), params={"header": f"Refresh:{value}"}, timeout=5)
    assert reply.status_code == 400
    assert "bad location" in reply.text
    header = requests.get(server.url("/status/200"), headers={"X-Mockstatus-Response-Refresh": value}, timeout=5)
    assert header.status_code == 400


@pytest.mark.parametrize("value", ["5", "0; https://good.example/next", "0;url=/local", "3; url='/x'"])
def test_finding_05_refresh_to_an_allowed_place_is_sent(make_mockstatus, value):
    server = make_mockstatus(allowed_redirect_hosts=("good.example",))
    reply = requests.get(server.url("/status/200"), params={"header": f"Refresh:{value}"}, timeout=5)
    assert reply.status_code == 200
    assert reply.headers["Refresh"] == value


def test_finding_05_catalog_refresh_is_narrowed_too():
    config = {"codes": {299: {"reason": "Go", "headers": {"Refresh": "0; https://evil.test/"}}}}
    with pytest.raises(ConfigError, match=r"codes\.299\.headers\.Refresh: bad location 'https://evil.test/'"):
        serve_in_thread(config, allowed_redirect_hosts=("good.example",))
    serve_in_thread(config).stop()  # without the setting, the operator's catalog goes as written


# --- 6: config files that cannot hang start-up -------------------------------------------------

BOMB = "server:\n  port:\n    - &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"    - &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)
)
CONFIGS = {
    "alias-bomb": (BOMB, "alias *a0 is not allowed"),
    "nested-1000": ("codes: " + "[" * 1000 + "]" * 1000 + "\n", "nested more than"),
    "nested-map": ("codes:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 60)), "nested more than"),
    "duplicate-code": ("codes:\n  503: {reason: One}\n  '503': {reason: Two}\n", "duplicate key '503'"),
    "duplicate-setting": ("server:\n  port: 1\n  port: 2\n", "duplicate key 'port'"),
    "port-list": ("server:\n  port: [1, 2]\n", "expected text or a number, got a list"),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_finding_06_bad_config_is_one_line_exit_2_within_a_second(tmp_path, name):
    text, named = CONFIGS[name]
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    started = time.monotonic()
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_config(path)
    assert time.monotonic() - started < 1.0
    done = subprocess.run(
        [sys.executable, "-m", "mockstatus", "check-config", str(path)],
        env=clean_env(), capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert named in line


# --- 7: shutdown within the grace, whatever runs ------------------------------------------------


def test_finding_07_shutdown_cancels_a_body_read_at_grace_end(process):
    server = process("--shutdown-grace", "0.3s")
    with server.connect() as sock:
        # A body that is still arriving: the handler is reading it, not delivering.
        sock.sendall(b"POST /status/200 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
        time.sleep(0.1)
        sent = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(5) == 0
        assert time.monotonic() - sent < 0.3 + 1.0


def test_finding_07_sighup_is_a_graceful_stop(process):
    server = process()
    with server.connect() as sock:
        sock.sendall(request_bytes("/status/200?delay=300ms"))
        time.sleep(0.1)
        server.proc.send_signal(signal.SIGHUP)
        head, body = read_response(sock)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert server.proc.wait(5) == 0


# --- 8: a burst above --max-connections gets 503s, not empty closes -----------------------------


def test_finding_08_burst_above_the_limit_all_get_503(process):
    limit = 40
    server = process("--max-connections", str(limit), files=limit + 64)
    held = [server.connect() for _ in range(limit)]
    try:
        burst = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(150)]
        answers = []
        for sock in burst:
            with sock:
                answers.append(read_head(sock)[:12])
        assert answers == [b"HTTP/1.1 503"] * 150
    finally:
        for sock in held:
            sock.close()


# --- 9: WebSocket sessions time out ---------------------------------------------------------------


def test_finding_09_idle_websocket_is_closed_after_upgrade_idle_timeout(make_mockstatus):
    server = make_mockstatus(upgrade_idle_timeout=0.2)
    with websockets.sync.client.connect(f"ws://127.0.0.1:{server.port}/status/101") as ws:
        ws.send("hello")
        assert ws.recv(timeout=2) == "hello"
        started = time.monotonic()
        with pytest.raises(websockets.ConnectionClosed) as closed:
            ws.recv(timeout=3)
        assert 0.15 < time.monotonic() - started < 2
    assert closed.value.rcvd.code == 1001
    assert "--upgrade-idle-timeout" in closed.value.rcvd.reason


# --- 10: sequences evicted least recently used, restarts said ---------------------------------------


def test_finding_10_sequences_lru_eviction_and_restart_in_the_journal(make_mockstatus):
    server = make_mockstatus(max_sequences=2)

    def step(name: str) -> str:
        return requests.get(server.url(f"/sequence/{name}/503*10"), timeout=5).headers["X-Mockstatus-Step"]

    steps = []
    for other in ("a", "b", "c"):
        steps.append(step("busy"))
        step(other)  # a new name evicts the least recently used: never 'busy', just used
    assert steps == ["1", "2", "3"]
    step("d")
    step("e")  # 'busy' is now the least recently used, and goes
    assert step("busy") == "1"
    flags = [e["sequence_restarted"] for e in journal(server, sequence="busy").json()["requests"]]
    assert flags == [False, False, False, True]
    assert requests.get(server.url("/__mockstatus/sequences"), timeout=5).json()["sequences"]["busy"]["restarted"]


# --- 11: Expect checked on every route ------------------------------------------------------------


@pytest.mark.parametrize(
    "target", ["/", "/__mockstatus/health", "/__mockstatus/requests", "/__mockstatus/static/page.css", "/sequence"]
)
def test_finding_11_expect_with_a_huge_body_is_413_on_every_route(mockstatus, target):
    with connect(mockstatus) as sock:
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
            "Content-Length: 10000000000\r\n\r\n".encode()
        )
        head = read_head(sock)
    assert head.startswith(b"HTTP/1.1 413 ")
