"""pytest plugin (registered through the ``pytest11`` entry point).

Installing mockstatus gives every test suite these fixtures:

``mockstatus``
    Function scope.  The session's server, with the journal, every
    sequence, rate-limit bucket and outage cleared and the test clock reset
    before the test: ``base_url``, ``url(path)``,
    ``requests(**filters)`` (the journal: ``path``, ``method``, ``sequence``,
    ``since``, ``status``), ``wait_for_requests(count=1, timeout=5, **filters)``,
    ``reset()``, ``advance_clock("30s")``, ``host`` (bare, ``::1``), ``port``.
    HTTPS, started on first use (the CA is made once per process):
    ``https_url(path)``, ``ca_bundle`` (a PEM file path), ``ssl_context()``,
    ``tls_url(scenario, path)`` (a bad-TLS scenario's own port),
    ``client_cert`` (``(cert_path, key_path)`` signed by the CA).
``mockstatus_server``
    Session scope.  One server per test process (so one per pytest-xdist
    worker) in a daemon thread with its own event loop, on a free loopback
    port.  Sync clients (requests, urllib3, subprocesses) and async ones
    (httpx, aiohttp's client, on the test's own loop) can all reach it.
``mockstatus_config``
    Session scope, returns ``None``.  Override it in a ``conftest.py`` to
    return a dict in the config-file layout (``codes:``, ``server:``) or the
    path of a YAML file; the session server is started with it.
``make_mockstatus``
    Function scope.  A factory, ``make_mockstatus(config=None, **settings)``,
    with the arguments of ``serve_in_thread``: each call starts another server
    (its own catalog overlay and settings, such as ``max_body_size=1024``) and
    returns it; every server it started stops when the test ends.  A bad
    ``config`` raises ``ConfigError`` at the call.
``mockstatus_namespace``
    Function scope.  A fresh namespace name for this test: pass it to
    ``url(path, namespace=...)`` (the ``/ns/{namespace}/`` prefix) and
    ``requests(namespace=...)``, so suites sharing one server (``--state
    redis://...``) never see each other's sequences or journal.
``make_mockstatus_session``
    Session scope.  The same factory for fixtures of a wider scope (a module's
    server with its own settings): the servers it starts stop when the session
    ends, so ask for them from a module- or session-scoped fixture.

Nothing heavy is imported until a test asks for a fixture, so the plugin costs
suites that never use it nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .runner import ThreadServer


@pytest.fixture(scope="session")
def mockstatus_config() -> Any:
    """The catalog overlay for this suite's server: a dict, a YAML path, or None."""
    return None


@pytest.fixture(scope="session")
def mockstatus_server(mockstatus_config: Any) -> Iterator[ThreadServer]:
    """One mockstatus server per test session (per xdist worker)."""
    from .catalog import ConfigError
    from .runner import serve_in_thread

    try:
        server = serve_in_thread(mockstatus_config)
    except ConfigError as exc:
        problem = f"mockstatus_config: {exc}"
    else:
        problem = None
    if problem is not None:
        # One line naming the bad value, like the CLI, not a traceback into
        # mockstatus; raised outside the except block so pytest does not print
        # the ConfigError again as "During handling of the above exception".
        pytest.fail(problem, pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mockstatus(mockstatus_server: ThreadServer) -> ThreadServer:
    """The session's server with a clean journal, no sequences or buckets, and the real clock."""
    mockstatus_server.reset()
    return mockstatus_server


def _started_servers() -> Iterator[Callable[..., ThreadServer]]:
    """A ``serve_in_thread`` that remembers what it started; stops them all on exit."""
    from .runner import serve_in_thread

    with ExitStack() as started:
        # ExitStack stops the others even when one stop fails.

        def make(config: Any = None, **settings: Any) -> ThreadServer:
            server = serve_in_thread(config, **settings)
            started.callback(server.stop)
            return server

        yield make


@pytest.fixture
def make_mockstatus() -> Iterator[Callable[..., ThreadServer]]:
    """Start servers with their own config and settings; they stop after the test."""
    yield from _started_servers()


@pytest.fixture(scope="session")
def make_mockstatus_session() -> Iterator[Callable[..., ThreadServer]]:
    """Like ``make_mockstatus``, for wider-scoped fixtures; servers stop after the session."""
    yield from _started_servers()


@pytest.fixture
def mockstatus_namespace() -> str:
    """A namespace of this test's own: its sequences and journal are apart from every other's."""
    import secrets

    return "t-" + secrets.token_hex(8)
