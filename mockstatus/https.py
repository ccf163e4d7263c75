"""The HTTPS listeners: the HTTPS port and the bad-TLS lab's own ports.

Every TLS connection that completes its handshake is served by the same
``protocol.Listener`` as plain HTTP: asyncio's SSL transport feeds the same
``Connection``, so routes, options, faults and the wire-level kinds behave the
same over TLS.

On the HTTPS port a scenario is chosen by the SNI name of the ClientHello
(``expired.localhost``).  Several scenarios differ in more than the certificate
(a required client certificate, the protocol versions, an alert, no answer),
and OpenSSL applies only the certificate when a server-name callback swaps
the context, after the version is chosen.  So the port accepts plain TCP,
*peeks* at the ClientHello (MSG_PEEK leaves it in the kernel's buffer), and
only then hands the socket to ``loop.connect_accepted_socket`` with the
scenario's context, or to the alert or stall protocol.  A scenario's own port
(``--tls-scenario-ports``) needs no peek: ``loop.create_server`` with its
context.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Callable

from .certs import Material
from .protocol import LINGER, Listener
from .tls import HANDSHAKE_FAILURE_ALERT, SCENARIOS, Scenario, scenario_of

log = logging.getLogger("mockstatus")

MAX_HELLO = 1 << 14  # RFC 8446 §5.1: a record carries at most 2^14 bytes
PEEK_AGAIN = 0.005  # seconds between peeks at a ClientHello that came in pieces


def server_name(data: bytes) -> tuple[bool, str | None]:
    """``(complete, sni)`` from the first bytes of a connection.

    ``complete`` is False while the first record is still arriving.  Anything
    that is not a ClientHello is complete with no name (the TLS library
    then refuses it itself).  RFC 8446 §4.1.2 (ClientHello), RFC 6066 §3
    (server_name).
    """
    if len(data) < 5:
        return (False, None) if not data or data[0] == 0x16 else (True, None)
    if data[0] != 0x16:  # not a handshake record
        return True, None
    length = int.from_bytes(data[3:5], "big")
    if len(data) < 5 + length:
        return False, None
    body = data[5 : 5 + length]
    try:
        if body[0] != 0x01:  # not a ClientHello
            return True, None
        pos = 4 + 2 + 32  # handshake header, legacy_version, random
        pos += 1 + body[pos]  # legacy_session_id
        pos += 2 + int.from_bytes(body[pos : pos + 2], "big")  # cipher_suites
        pos += 1 + body[pos]  # legacy_compression_methods
        end = pos + 2 + int.from_bytes(body[pos : pos + 2], "big")
        pos += 2
        while pos + 4 <= end:
            kind = int.from_bytes(body[pos : pos + 2], "big")
            size = int.from_bytes(body[pos + 2 : pos + 4], "big")
            pos += 4
            if kind == 0:  # server_name: list length, then (type 0 = host_name, length, name)
                if body[pos + 2] == 0:
                    name_length = int.from_bytes(body[pos + 3 : pos + 5], "big")
                    return True, body[pos + 5 : pos + 5 + name_length].decode("ascii", "replace")
                return True, None
            pos += size
    except IndexError:
        pass
    return True, None


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())


async def peek_server_name(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> str | None:
    """The SNI name of the ClientHello waiting on ``sock``, which stays unread."""
    while True:
        await _readable(loop, sock)
        data = sock.recv(MAX_HELLO + 5, socket.MSG_PEEK)
        if not data:
            raise ConnectionResetError("closed before the ClientHello")
        complete, name = server_name(data)
        if complete or len(data) >= MAX_HELLO + 5:
            return name
        await asyncio.sleep(PEEK_AGAIN)


class Alert(asyncio.Protocol):
    """``handshake-alert``: the ClientHello is answered with a fatal alert, then close."""

    def __init__(self, held: set) -> None:
        self.held = held
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.held.add(self)

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(HANDSHAKE_FAILURE_ALERT)
        # Shut the write side and close a moment later: closing with unread
        # input would send an RST that can destroy the alert before it is read.
        if transport.can_write_eof():
            transport.write_eof()
        asyncio.get_running_loop().call_later(LINGER, transport.close)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc) -> None:
        self.held.discard(self)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Stall(Alert):
    """``handshake-stall``: TCP accepted, the ClientHello read and never answered."""

    def data_received(self, data: bytes) -> None:
        pass


class TLSListeners:
    """The HTTPS port and the scenario ports of one server."""

    def __init__(self, material: Material, listener: Listener, handshake_timeout: float | None) -> None:
        self.material = material
        self.listener = listener
        self.handshake_timeout = handshake_timeout
        self.https_port: int | None = None
        self.scenario_ports: dict[str, int] = {}
        self.servers: list[asyncio.Server] = []
        self.held: set[Alert] = set()  # alert and stall connections, closed at shutdown
        self.tasks: set[asyncio.Task] = set()
        self.sock: socket.socket | None = None
        self.loop = asyncio.get_running_loop()

    # -- the HTTPS port: peek at the ClientHello, then hand the socket over ------------------

    async def start_https(self, host: str, port: int) -> int:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(1024)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.sock = sock
        self._spawn(self._accept(sock))
        self.https_port = sock.getsockname()[1]
        return self.https_port

    def _spawn(self, coroutine) -> None:
        task = self.loop.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                client, _ = await self.loop.sock_accept(sock)
            except OSError as exc:
                # Out of file descriptors and the like: wait a moment, as asyncio's own server does.
                log.warning("mockstatus: https accept failed: %s", exc)
                await asyncio.sleep(1.0)
                continue
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._spawn(self._dispatch(client))

    async def _dispatch(self, client: socket.socket) -> None:
        try:
            try:
                name = await asyncio.wait_for(peek_server_name(self.loop, client), self.handshake_timeout)
            except (TimeoutError, OSError):
                client.close()
                return
            await self._open(client, scenario_of(name))
        except (TimeoutError, OSError, ssl.SSLError):
            # A failed handshake is the client's (or the lab's) business; the
            # transport is closed already.
            return

    async def _open(self, client: socket.socket, scenario: Scenario | None) -> None:
        if scenario is None:
            await self.loop.connect_accepted_socket(
                self.listener, client, ssl=self.material.valid, ssl_handshake_timeout=self.handshake_timeout
            )
            return
        factory, context = self._factory(scenario)
        if context is None:
            await self.loop.connect_accepted_socket(factory, client)
        else:
            await self.loop.connect_accepted_socket(
                factory, client, ssl=context, ssl_handshake_timeout=self.handshake_timeout
            )

    def _factory(self, scenario: Scenario) -> tuple[Callable[[], asyncio.Protocol], ssl.SSLContext | None]:
        if scenario.handshake == "alert":
            return (lambda: Alert(self.held)), None
        if scenario.handshake == "stall":
            return (lambda: Stall(self.held)), None
        return self.listener, self.material.context(scenario.name)

    # -- a port of its own for each scenario ----------------------------------------------

    async def start_scenarios(self, host: str, base: int) -> dict[str, int]:
        """Scenario i on port ``base + i`` (every one on a free port when ``base`` is 0)."""
        for index, scenario in enumerate(SCENARIOS):
            factory, context = self._factory(scenario)
            port = base + index if base else 0
            if context is None:
                server = await self.loop.create_server(factory, host, port, backlog=1024, reuse_address=True)
            else:
                server = await self.loop.create_server(
                    factory, host, port, ssl=context, ssl_handshake_timeout=self.handshake_timeout,
                    backlog=1024, reuse_address=True,
                )  # fmt: skip
            self.servers.append(server)
            self.scenario_ports[scenario.name] = server.sockets[0].getsockname()[1]
        return self.scenario_ports

    # -- shutdown -------------------------------------------------------------------------

    def stop_accepting(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        for server in self.servers:
            server.close()

    def close_held(self) -> None:
        for protocol in list(self.held):
            protocol.close()
