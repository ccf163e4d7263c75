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
import ssl
import threading
import time
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .app import make_app
from .blackhole import Blackhole
from .catalog import Catalog
from .durations import parse_duration
from .framing import Limits
from .journal import parse_filters
from .options import check_catalog_redirects
from .protocol import Listener, connection_limit
from .server import STATE, access_log
from .settings import Config, Settings, connect_host, resolve, server_url
from .store import DEFAULT_NAMESPACE, check_namespace
from .transcript import OWN

KEEPALIVE_BACKSTOP = 3600.0  # seconds
WAIT_POLL = 0.01  # seconds between journal reads in wait_for_requests
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
        listener: Listener, blackhole: Blackhole | None = None,
    ) -> None:  # fmt: skip
        self.blackhole = blackhole
        self.runner = runner
        self.app = app
        self.host = host
        self.port = port
        self.listener = listener
        self.tls = None  # https.TLSListeners once HTTPS or the TLS lab is started

    @property
    def https_port(self) -> int | None:
        return self.tls.https_port if self.tls is not None else None

    @property
    def https_url(self) -> str | None:
        port = self.https_port
        return None if port is None else server_url(self.host, port, "https")

    async def start_tls(self, https_port: int | None, scenario_ports: int | None) -> None:
        """Start the HTTPS port and/or the TLS lab's ports, on the same connection layer."""
        from . import https
        from .certs import material_for
        from .tls import SERVING

        settings = self.state.settings
        if self.tls is None:
            # The handshake gets the time a client has to send a request head
            # (with that timeout off, asyncio's own handshake default).
            timeout = settings.header_timeout or https.HANDSHAKE_TIMEOUT
            self.tls = https.TLSListeners(material_for(settings), self.listener, timeout)
        tls = self.tls
        if https_port is not None and tls.https_port is None:
            await tls.start_https(settings.host, https_port)
        if scenario_ports is not None and not tls.scenario_ports:
            await tls.start_scenarios(settings.host, scenario_ports)
        material = tls.material
        serving = self.app[SERVING]
        serving.ca_pem = material.ca_pem
        serving.https_port = tls.https_port
        serving.scenario_ports = dict(tls.scenario_ports)

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
        self.listener.stop_accepting()
        if self.tls is not None:
            await self.tls.stop_accepting()
        try:
            await self.runner.cleanup()
        finally:
            timer.cancel()
            # What aiohttp no longer speaks on (raw upgrades, refusals lingering).
            self.listener.close_all()
            if self.tls is not None:
                self.tls.close_held()
            if self.blackhole is not None:
                self.blackhole.close()

    def _grace_over(self) -> None:
        # Every handler still running: replies being delivered, an admin reply
        # a client does not read, a body still arriving.
        cut = self.listener.cancel_tasks()
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
        # The Listener sets SO_KEEPALIVE on each socket it accepts (keep_alive_probes):
        # aiohttp's own would make a socket object for every connection to set it.
        tcp_keepalive=False,
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
    app[STATE].open_connections = listener.connections.__len__
    sockets = [sock] if sock is not None else listening_sockets(settings.host, settings.port)
    listener.serve(sockets)
    app[OWN].sockets = sockets  # where the transcript route sends its requests
    bound = sockets[0].getsockname()
    blackhole = None
    if settings.blackhole_port is not None:
        try:
            blackhole = Blackhole(settings.host, settings.blackhole_port)
        except BaseException:
            listener.stop_accepting()
            await runner.cleanup()
            raise
    running = RunningServer(runner, app, settings.host, bound[1], listener, blackhole)
    if settings.https_port is not None or settings.tls_scenario_ports is not None:
        try:
            await running.start_tls(settings.https_port, settings.tls_scenario_ports)
        except BaseException:
            listener.stop_accepting()
            if running.tls is not None:
                await running.tls.stop_accepting()
            if blackhole is not None:
                blackhole.close()
            await runner.cleanup()
            raise
    return running


def listening_sockets(host: str, port: int) -> list[socket.socket]:
    """Bound, listening sockets for every address ``host`` resolves to (as
    loop.create_server binds them); port 0 picks one free port for all."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    seen = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address) in seen:
                continue
            seen.add((family, address))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                # As asyncio does: an IPv6 socket does not also take IPv4 (that is 0.0.0.0's).
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(1024)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def listening_line(sockets) -> str:
    """The start-up line: every address really listened on, and what a wildcard one means.

    ``localhost`` may bind both 127.0.0.1 and ::1; 0.0.0.0 and :: listen on
    every interface (asyncio sets IPV6_V6ONLY on an IPv6 socket, so :: is
    IPv6 only unless the socket says otherwise).
    """
    urls, notes = [], []
    for sock in sockets:
        address, port = sock.getsockname()[:2]
        urls.append(server_url_exact(address, port))
        if address in ("0.0.0.0", "::"):
            if sock.family == socket.AF_INET:
                reach = "all IPv4 interfaces"
            elif sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY):
                reach = "all IPv6 interfaces"
            else:
                reach = "all interfaces, IPv4 and IPv6"
            notes.append(f"{reach}; from this machine: {server_url(address, port)}")
    line = "mockstatus listening on " + " and ".join(urls)
    return line + (f" ({'; '.join(notes)})" if notes else "")


def server_url_exact(address: str, port: int) -> str:
    """The URL of an address as bound, a wildcard one included (http://0.0.0.0:8080)."""
    return f"http://[{address}]:{port}" if ":" in address else f"http://{address}:{port}"


async def serve_forever(settings: Settings, catalog: Catalog) -> int:
    """Run until SIGTERM, SIGINT or SIGHUP; let in-flight replies finish within the grace."""
    server = await start(settings, catalog)
    print(listening_line(server.listener.sockets), flush=True)
    if server.https_url is not None:
        print(f"mockstatus listening on {server.https_url} (CA: {server.base_url}/__mockstatus/ca.pem)", flush=True)
    if server.tls is not None and server.tls.scenario_ports:
        ports = server.tls.scenario_ports
        print(
            f"mockstatus TLS lab on ports {min(ports.values())}-{max(ports.values())} (see /__mockstatus/tls)",
            flush=True,
        )
    if server.blackhole is not None:
        print(f"mockstatus blackhole (connects time out) on port {server.blackhole.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGHUP too: a closed terminal or a supervisor's reload signal ends the
    # server the same graceful way, not at once with replies lost.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
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
            if self._loop.is_closed():
                return  # stopped already
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(timeout)

    def __enter__(self) -> ThreadServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests use ---------------------------------------------------------

    @property
    def host(self) -> str:
        """The address to connect to, bare (``::1``, not ``[::1]``): what
        ``socket.create_connection((server.host, server.port))`` takes."""
        assert self._server is not None
        return connect_host(self._server.host)

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.port

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return self._server.base_url

    @property
    def blackhole_port(self) -> int | None:
        """The ``--blackhole-port`` listener's port (the free one picked for 0), or None."""
        assert self._server is not None
        return None if self._server.blackhole is None else self._server.blackhole.port

    def url(self, path: str = "/", namespace: str | None = None) -> str:
        """A URL on this server; with ``namespace``, under its ``/ns/{namespace}/`` prefix."""
        prefix = "" if namespace is None else "/ns/" + check_namespace(namespace)
        return self.base_url + prefix + (path if path.startswith("/") else "/" + path)

    def call(self, func, *args):
        """Run ``func(*args)`` on the server's loop and return its result (thread-safe)."""
        assert self._loop is not None

        async def invoke():
            result = func(*args)
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(10)

    @property
    def state(self):
        assert self._server is not None
        return self._server.state

    # -- HTTPS: started on first use, so plain-HTTP users pay nothing ------------

    def _tls(self, *, scenarios: bool = False):
        assert self._loop is not None and self._server is not None
        server = self._server
        tls = server.tls
        if tls is None or tls.https_port is None or (scenarios and not tls.scenario_ports):
            asyncio.run_coroutine_threadsafe(server.start_tls(0, 0 if scenarios else None), self._loop).result(10)
        return server.tls

    @property
    def https_port(self) -> int:
        """The HTTPS port (started now if it was not)."""
        return self._tls().https_port

    def https_url(self, path: str = "/") -> str:
        """A URL on the HTTPS port; its certificate verifies against ``ca_bundle``."""
        return server_url(self._server.host, self.https_port, "https") + (path if path.startswith("/") else "/" + path)

    def tls_url(self, scenario: str, path: str = "/") -> str:
        """A URL on the port of a bad-TLS scenario (``expired``, ``wrong-host``, ...)."""
        from .tls import SCENARIOS_BY_NAME

        if scenario not in SCENARIOS_BY_NAME:
            raise ValueError(f"unknown TLS scenario {scenario!r}; known: {', '.join(SCENARIOS_BY_NAME)}")
        port = self._tls(scenarios=True).scenario_ports[scenario]
        return server_url(self._server.host, port, "https") + (path if path.startswith("/") else "/" + path)

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate (PEM) the HTTPS port's leaf chains to."""
        return self._tls().material.ca_pem

    @property
    def ca_bundle(self) -> str:
        """The path of a PEM file holding the CA certificate (``verify=`` for requests and httpx, curl's --cacert)."""
        from .certs import pem_file

        return pem_file(self.ca_pem)

    def ssl_context(self) -> ssl.SSLContext:
        """A new client ``ssl.SSLContext`` that trusts the CA (for aiohttp, httpx, urllib, ``ssl``)."""
        from .certs import client_context

        return client_context(self.ca_pem)

    @property
    def client_cert(self) -> tuple[str, str]:
        """``(cert_path, key_path)`` of a client certificate the CA signed, for ``client-cert-required``."""
        from .certs import pem_file

        issued = self._tls().material.client_cert()
        return pem_file(issued.cert_pem), pem_file(issued.key_pem)

    def reset(self) -> None:
        """Clear the journal, every sequence, bucket and outage, and the test clock."""
        self.call(self.state.reset)

    def advance_clock(self, duration: str | float) -> float:
        """Move the clock rate limits and outages read (``"30s"`` or seconds); return its offset.

        Delays stay in real time.  ``reset()`` (and so each test's ``mockstatus``
        fixture) puts the clock back.
        """
        seconds = parse_duration(duration, what="advance")
        return self.call(self.state.store.advance_clock, seconds)

    def requests(self, namespace: str = DEFAULT_NAMESPACE, **filters: Any) -> list[dict[str, Any]]:
        """The journal as dicts, filtered like ``GET /__mockstatus/requests``
        (``path``, ``method``, ``sequence``, ``since``, ``status``), of one namespace."""
        try:
            check_namespace(namespace)
            checked = parse_filters(filters)
        except ValueError as exc:
            # Raised here, in the caller's thread, so the test's own line shows.
            raise TypeError(f"requests(): {exc}") from None
        store, redact = self.state.store, False

        async def read():
            return [entry.as_json() for entry in await store.requests(namespace, checked, redact)]

        return self.call(read)

    def wait_for_requests(self, count: int = 1, timeout: float = 5.0, **filters: Any) -> list[dict[str, Any]]:
        """The journal entries matching ``filters`` once at least ``count`` have
        arrived (a request a background client makes); AssertionError naming
        what did arrive after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.requests(**filters)
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                break
            time.sleep(WAIT_POLL)
        arrived = self.requests()
        lines = "".join(
            f"\n  {e['method']} {e['path']}{'?' + e['query'] if e['query'] else ''} -> {e['status']}" for e in arrived
        )
        wanted = ", ".join(f"{name}={value!r}" for name, value in filters.items()) or "any"
        raise AssertionError(
            f"waited {timeout:g}s for {count} request(s) matching {wanted}; {len(found)} matched, "
            f"{len(arrived)} in the journal:{lines or ' none'}"
        )


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
    check_catalog_redirects(catalog, settings)
    return ThreadServer(settings, catalog).start()
