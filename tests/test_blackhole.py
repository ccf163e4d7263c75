"""``--blackhole-port``: a connect there times out (Linux drops the SYN)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import time

import aiohttp
import httpx
import pytest
import requests

from mockstatus.runner import serve_in_thread

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SYNs are dropped on a full queue on Linux")

WAIT = 0.3  # the clients' connect timeout


@pytest.fixture
def blackhole(make_mockstatus):
    return make_mockstatus(blackhole_port=0)


def test_blackhole_port_connect_times_out_every_time(blackhole):
    assert blackhole.blackhole_port not in (None, 0, blackhole.port)
    for _ in range(3):
        began = time.monotonic()
        with pytest.raises(TimeoutError):
            socket.create_connection((blackhole.host, blackhole.blackhole_port), timeout=WAIT)
        assert time.monotonic() - began >= WAIT - 0.01
    # The server itself answers as usual.
    assert requests.get(blackhole.url("/status/204"), timeout=5).status_code == 204


def test_blackhole_port_what_clients_see(blackhole):
    url = f"http://{blackhole.host}:{blackhole.blackhole_port}/status/200"
    with pytest.raises(requests.exceptions.ConnectTimeout):
        requests.get(url, timeout=WAIT)
    with pytest.raises(httpx.ConnectTimeout):
        httpx.get(url, timeout=WAIT)

    async def get():
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(connect=WAIT)) as session:
            async with session.get(url):
                pass

    with pytest.raises(aiohttp.ServerTimeoutError) as caught:
        asyncio.run(get())
    assert "Connection timeout" in str(caught.value)
    if shutil.which("curl") is not None:
        done = subprocess.run(["curl", "-sS", "--connect-timeout", str(WAIT), url], capture_output=True, timeout=20)
        assert done.returncode == 28 and b"Timeout was reached" in done.stderr


def test_blackhole_port_closes_with_the_server():
    server = serve_in_thread(None, blackhole_port=0)
    port = server.blackhole_port
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=WAIT)


def test_blackhole_port_in_use_is_one_line_and_exit_2(make_mockstatus):
    taken = make_mockstatus(blackhole_port=0)
    done = subprocess.run(
        [sys.executable, "-m", "mockstatus", "--port", "0", "--blackhole-port", str(taken.blackhole_port)],
        capture_output=True, timeout=20, text=True,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Address already in use" in done.stderr, done.stderr


def test_a_closed_port_refuses_at_once():
    """README's "Refused" line: what clients say for a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/status/200"
    with pytest.raises(requests.ConnectionError) as caught:
        requests.get(url, timeout=5)
    assert "Connection refused" in str(caught.value)
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=5)

    async def get():
        async with aiohttp.ClientSession() as session:
            async with session.get(url):
                pass

    with pytest.raises(aiohttp.ClientConnectorError):
        asyncio.run(get())
    if shutil.which("curl") is not None:
        assert subprocess.run(["curl", "-sS", url], capture_output=True, timeout=20).returncode == 7
