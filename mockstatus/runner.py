"""Start and stop a server: the CLI's process (``run``) and a test's thread (``serve_in_thread``).

``start`` binds and returns a ``RunningServer``; ``serve_forever`` runs one
until SIGTERM/SIGINT; ``ThreadServer`` runs one in a daemon thread with its
own event loop, for sync callers (requests, subprocesses) and async ones
alike, inside pytest or not::

    with mockstatus.serve_in_thread() as server:
        requests.get(server.url("/status/503"))
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import socket
import threading
import time
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .app import make_app
from .catalog import Catalog
from .durations import parse_duration
from .framing import Limits
from .protocol import Listener, connection_limit
from .server import STATE, access_log
from .settings import Config, Settings, resolve, server_url, url_host

KEEPALIVE_BACKSTOP = 3600.0  # seconds
SHUTDOWN_SLACK = 0.5  # seconds aiohttp's shutdown waits beyond --shutdown-grace, see start()


class JsonAccessLogger(AbstractAccessLogger):
    """One JSON object per request, for log collectors."""

    def log(self, request, response, time_taken: float) -> None:
        self.logger.info(
            json.dumps(
                {
                    "time": round(time.time(), 3),
                    "remote": request.remote,
                    "method": request.method,
                    "path": request.path_qs,
                    "status": response.status,
                    "duration_ms": round(time_taken * 1000, 3),
                    "length": response.body_length,
                }
            )
        )


class TextAccessLogger(AbstractAccessLogger):
    """A short common-log-style line; cheaper than aiohttp's format parser."""

    def log(self, request, response, time_taken: float) -> None:
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.3fms',
            request.remote, request.method, request.path_qs, request.version.major, request.version.minor,
            response.status, response.body_length, time_taken * 1000,
        )  # fmt: skip


def configure_logging() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("mockstatus")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


class RunningServer:
    def __init__(
        self, runner: web.AppRunner, app: web.Application, host: str, port: int,
        server: asyncio.Server, listener: Listener,
    ) -> None:  # fmt: skip
        self.runner = runner
        self.app = app
        self.host = host
        self.port = port
        self.server = server
        self.listener = listener

    @property
    def open_connections(self) -> int:
        """Client connections open now (those counted by --max-connections)."""
        return len(self.listener.connections)

    @property
    def state(self):
        return self.app[STATE]

    @property
    def base_url(self) -> str:
        return server_url(self.host, self.port)

    async def stop(self) -> None:
        """Stop accepting, let in-flight replies finish for up to shutdown_grace, close the rest.

        aiohttp's runner spends its shutdown_timeout twice on a handler that is
        still running (a wait for it to finish, then a wait after asking it to
        stop, which a sleeping handler does not notice), so one delayed reply
        kept the process for two graces.  Cancelling the replies still running
        when the grace is over ends both waits then.
        """
        state = self.state
        state.closing = True
        timer = asyncio.get_running_loop().call_later(state.settings.shutdown_grace, self._grace_over)
        self.server.close()  # stop accepting
        try:
            await self.runner.cleanup()
        finally:
            timer.cancel()
            # What aiohttp no longer speaks on (raw upgrades, refusals lingering).
            self.listener.close_all()

    def _grace_over(self) -> None:
        cut = self.state.cancel_in_flight()
        if cut:
            logging.getLogger("mockstatus").info(
                "shutdown: closed %d repl%s still running after the %gs grace",
                cut, "y" if cut == 1 else "ies", self.state.settings.shutdown_grace,
            )  # fmt: skip


async def start(
    settings: Settings, catalog: Catalog | None = None, *, sock: socket.socket | None = None
) -> RunningServer:
    app = make_app(settings, catalog)
    logger_class = JsonAccessLogger if settings.log_format == "json" else TextAccessLogger
    runner = web.AppRunner(
        app,
        access_log=access_log if settings.access_log else None,
        access_log_class=logger_class,
        # A client that disconnects during a delay cancels its handler.
        handler_cancellation=True,
        # RunningServer.stop() cancels our replies when the grace is over; aiohttp's
        # own timeout must end later (the same instant races its handler waiter),
        # and never be 0, which aiohttp reads as "wait forever".
        shutdown_timeout=settings.shutdown_grace + SHUTDOWN_SLACK,
        handle_signals=False,
        # The connection layer times out idle connections (--header-timeout);
        # aiohttp's own keep-alive timer only backs it up.
        keepalive_timeout=KEEPALIVE_BACKSTOP,
    )
    await runner.setup()
    assert runner.server is not None
    listener = Listener(
        runner.server,
        limits=Limits(settings.max_request_line, settings.max_header_size, settings.max_headers),
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections=connection_limit(settings.max_connections),
    )
    loop = asyncio.get_running_loop()
    if sock is not None:
        server = await loop.create_server(listener, sock=sock, backlog=1024)
    else:
        server = await loop.create_server(listener, settings.host, settings.port, backlog=1024, reuse_address=True)
    bound = server.sockets[0].getsockname()
    return RunningServer(runner, app, settings.host, bound[1], server, listener)


async def serve_forever(settings: Settings, catalog: Catalog) -> int:
    """Run until SIGTERM or SIGINT; let in-flight replies finish within the grace."""
    server = await start(settings, catalog)
    print(f"mockstatus listening on {server.base_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # What exists now (modules, catalog, precomputed replies) lives as long as
    # the process: take it out of the collector's sight, so a full collection
    # with thousands of held requests is a shorter pause for the replies due.
    gc.collect()
    gc.freeze()
    await stop.wait()
    # cleanup(): stop accepting, wait up to shutdown_grace for handlers, close the rest.
    await server.stop()
    return 0


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop when it is installed (a speed dependency only), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional off Linux/macOS
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(settings: Settings, catalog: Catalog) -> int:
    configure_logging()
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(serve_forever(settings, catalog))


# --- a server in a thread, for tests ----------------------------------------------------


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
        loop = new_loop()
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
        """The host part of ``base_url`` (an IPv6 address in brackets)."""
        assert self._server is not None
        return url_host(self._server.host)

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
        """Clear the journal, every sequence, bucket and outage, and the test clock."""
        self.call(self.state.reset)

    def advance_clock(self, duration: str | float) -> float:
        """Move the clock rate limits and outages read (``"30s"`` or seconds); return its offset.

        Delays stay in real time.  ``reset()`` (and so each test's ``mockstatus``
        fixture) puts the clock back.
        """
        seconds = parse_duration(duration, what="advance")
        return self.call(self.state.clock.advance, seconds)

    def requests(self, **filters: Any) -> list[dict[str, Any]]:
        """The journal as dicts, filtered like ``GET /__mockstatus/requests``."""
        return self.call(lambda: [entry.as_json() for entry in self.state.journal.query(**filters)])


def serve_in_thread(
    config: Config = None,
    *,
    settings: Settings | None = None,
    **overrides: Any,
) -> ThreadServer:
    """Start a server on a free loopback port in a daemon thread.

    ``config`` is a YAML path or a dict in the config-file layout (``codes:``,
    ``server:``); ``overrides`` are settings such as ``max_delay=5``.
    Use it as a context manager, or call ``stop()``.
    """
    given = dict(overrides)
    if "port" not in given and settings is None:
        given["port"] = 0  # a free port, whatever the config file's server: section says
    settings, catalog = resolve(config, overrides=given, base=settings or Settings(host="127.0.0.1", port=0))
    return ThreadServer(settings, catalog).start()
