"""Start and stop the server: used by the CLI and by ``serve_in_thread``."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import socket
import time

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .app import make_app
from .catalog import Catalog
from .framing import Limits
from .protocol import Listener, connection_limit
from .server_state import STATE
from .settings import Settings

access_log = logging.getLogger("mockstatus.access")
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


def configure_logging(settings: Settings) -> None:
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
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        """Stop accepting, let in-flight replies finish for up to shutdown_grace, close the rest.

        aiohttp's runner spends its shutdown_timeout twice on a handler that is
        still running (a wait for it to finish, then a wait after asking it to
        stop, which a sleeping handler does not notice), so one delayed reply
        kept the process for two graces.  Cancelling the replies still running
        when the grace is over ends both waits then (issue #4).
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


def run(settings: Settings, catalog: Catalog) -> int:
    configure_logging(settings)
    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is optional off Linux/macOS
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(serve_forever(settings, catalog))
