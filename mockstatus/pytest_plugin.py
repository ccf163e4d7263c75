"""pytest plugin (registered through the ``pytest11`` entry point).

Installing mockstatus gives every test suite three fixtures:

``mockstatus``
    Function scope.  The session's server, with the journal and every
    sequence cleared before the test: ``base_url``, ``url(path)``,
    ``requests(**filters)`` (the journal), ``reset()``, ``host``, ``port``.
``mockstatus_server``
    Session scope.  One server per test process (so one per pytest-xdist
    worker) in a daemon thread with its own event loop, on a free loopback
    port.  Sync clients (requests, urllib3, subprocesses) and async ones
    (httpx, aiohttp's client, on the test's own loop) can all reach it.
``mockstatus_config``
    Session scope, returns ``None``.  Override it in a ``conftest.py`` to
    return a dict in the config-file layout (``codes:``, ``server:``) or the
    path of a YAML file; the session server is started with it.

Nothing heavy is imported until a test asks for a fixture, so the plugin costs
suites that never use it nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
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
        # One line naming the bad value, like the CLI, not a traceback into mockstatus.
        pytest.fail(f"mockstatus_config: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mockstatus(mockstatus_server: ThreadServer) -> ThreadServer:
    """The session's server with a clean journal and no sequences."""
    mockstatus_server.reset()
    return mockstatus_server
