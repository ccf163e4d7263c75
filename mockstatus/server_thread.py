"""Run a server in a daemon thread with its own event loop.

For sync callers (requests, subprocesses) and async ones alike, inside pytest
or not::

    with mockstatus.serve_in_thread() as server:
        requests.get(server.url("/status/503"))
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .catalog import Catalog, check_delays, load_catalog
from .serve import RunningServer, start
from .settings import Settings


class ThreadServer:
    """A running server and the handles a test needs."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: RunningServer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped: asyncio.Event | None = None

    # -- lifecycle --------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> ThreadServer:
        self._thread = threading.Thread(target=self._run, name="mockstatus-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("mockstatus did not start in time")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        try:
            import uvloop

            loop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover
            loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        try:
            self._server = await start(self.settings, self.catalog)
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        await self._stopped.wait()
        await self._server.stop()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout)

    def __enter__(self) -> ThreadServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests use ---------------------------------------------------------

    @property
    def host(self) -> str:
        assert self._server is not None
        return self._server.base_url.split("//", 1)[1].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.port

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return self._server.base_url

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def call(self, func, *args):
        """Run ``func(*args)`` on the server's loop and return its result (thread-safe)."""
        assert self._loop is not None

        async def invoke():
            return func(*args)

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(10)

    @property
    def state(self):
        assert self._server is not None
        return self._server.state

    def reset(self) -> None:
        """Clear the journal and every sequence."""
        self.call(self.state.reset)

    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        """The journal as dicts, filtered like ``GET /__mockstatus/requests``."""
        return self.call(lambda: [entry.as_json() for entry in self.state.journal.query(**filters)])


def serve_in_thread(
    config: str | Path | Mapping[str, Any] | None = None,
    *,
    settings: Settings | None = None,
    **overrides: Any,
) -> ThreadServer:
    """Start a server on a free loopback port in a daemon thread.

    ``config`` is a YAML path or a dict in the config-file layout (``codes:``,
    ``server:``); ``overrides`` are settings such as ``max_delay=5``.
    Use it as a context manager, or call ``stop()``.
    """
    catalog = load_catalog(config)
    base = settings or Settings(host="127.0.0.1", port=0)
    merged = {**catalog.server, **overrides}
    if "port" not in overrides and settings is None:
        merged["port"] = 0
    settings = base.replace(**merged)
    check_delays(catalog, settings.max_delay, settings.default_delay)
    return ThreadServer(settings, catalog).start()
