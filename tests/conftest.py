"""Shared fixtures: a real server on a real loopback socket.

``live`` is one server per test session (reset before each test); ``make_live``
starts a server with its own settings or catalog overlay for tests that need
one.  Both run in a daemon thread, so sync clients (requests, curl, raw
sockets) and async ones (aiohttp, httpx) can talk to them from any test.
"""

from __future__ import annotations

import pytest

from mockstatus.server_thread import serve_in_thread


@pytest.fixture(scope="session")
def _session_server():
    server = serve_in_thread()
    yield server
    server.stop()


@pytest.fixture
def live(_session_server):
    _session_server.reset()
    return _session_server


@pytest.fixture
def make_live():
    started = []

    def make(config=None, **overrides):
        server = serve_in_thread(config, **overrides)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
