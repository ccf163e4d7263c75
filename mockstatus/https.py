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
scenario's context (the same SSL transport ``loop.create_server(ssl=...)``
makes), or to the alert or stall protocol.  A scenario's own port
(``--tls-scenario-ports``) takes the same path with its scenario fixed: the
peek also tells which versions a client offers, so a version-only scenario
answers a client with none in common with the protocol_version alert that
asyncio's SSL transport would drop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import ssl

from .certs import Material
from .protocol import LINGER, Listener, keep_alive_probes
from .tls import HANDSHAKE_FAILURE_ALERT, PROTOCOL_VERSION_ALERT, SCENARIOS, Scenario, scenario_of

log = logging.getLogger("mockstatus")

# The version-only scenarios and the one version each speaks.
VERSION_ONLY = {"tls1.2-only": 0x0303, "tls1.3-only": 0x0304}
HANDSHAKE_TIMEOUT = 60.0  # seconds; asyncio's default, when --header-timeout is off
MAX_HELLO = 1 << 14  # RFC 8446 §5.1: a record carries at most 2^14 bytes
PEEK_AGAIN = 0.005  # seconds between peeks at a ClientHello that came in pieces


@dataclasses.dataclass(frozen=True)
class Hello:
    """What the lab needs from a ClientHello: the SNI name and the versions offered."""

    server_name: str | None = None
    versions: frozenset[int] = frozenset()  # 0x0303 is TLS 1.2, 0x0304 TLS 1.3

    def offers(self, version: int) -> bool:
        return not self.versions or version in self.versions


NOT_A_HELLO = Hello()


def client_hello(data: bytes) -> Hello | None:
    """The ClientHello at the start of ``data``; None while its record is still arriving.

    Anything that is not a ClientHello gives an empty ``Hello`` (the TLS library
    then refuses it itself).  RFC 8446 §4.1.2 (ClientHello), §4.2.1
    (supported_versions), RFC 6066 §3 (server_name).
    """
    if len(data) < 5:
        return None if not data or data[0] == 0x16 else NOT_A_HELLO
    if data[0] != 0x16:  # not a handshake record
        return NOT_A_HELLO
    length = int.from_bytes(data[3:5], "big")
    if len(data) < 5 + length:
        return None
    body = data[5 : 5 + length]
    name: str | None = None
    versions: set[int] = set()
    try:
        if body[0] != 0x01:  # not a ClientHello
            return NOT_A_HELLO
        legacy_version = int.from_bytes(body[4:6], "big")
        pos = 4 + 2 + 32  # handshake header, legacy_version, random
        pos += 1 + body[pos]  # legacy_session_id
        pos += 2 + int.from_bytes(body[pos : pos + 2], "big")  # cipher_suites
        pos += 1 + body[pos]  # legacy_compression_methods
        end = min(len(body), pos + 2 + int.from_bytes(body[pos : pos + 2], "big"))
        pos += 2
        while pos + 4 <= end:
            kind = int.from_bytes(body[pos : pos + 2], "big")
            size = int.from_bytes(body[pos + 2 : pos + 4], "big")
            data_ = body[pos + 4 : pos + 4 + size]
            pos += 4 + size
            if kind == 0 and len(data_) >= 5 and data_[2] == 0:  # server_name: a host_name entry
                name_length = int.from_bytes(data_[3:5], "big")
                name = data_[5 : 5 + name_length].decode("ascii", "replace")
            elif kind == 43 and data_:  # supported_versions: a length byte, then 2 bytes each
                versions.update(int.from_bytes(data_[i : i + 2], "big") for i in range(1, 1 + data_[0], 2))
        if not versions:
            # No supported_versions: the client speaks legacy_version and below (RFC 8446 §4.2.1).
            versions = {v for v in (0x0301, 0x0302, 0x0303) if v <= legacy_version}
    except IndexError:
        pass
    return Hello(name, frozenset(versions))


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


async def peek_hello(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> Hello:
    """The ClientHello waiting on ``sock``, which stays unread."""
    while True:
        await _readable(loop, sock)
        data = sock.recv(MAX_HELLO + 5, socket.MSG_PEEK)
        if not data:
            raise ConnectionResetError("closed before the ClientHello")
        hello = client_hello(data)
        if hello is not None:
            return hello
        if len(data) >= MAX_HELLO + 5:
            return NOT_A_HELLO
        await asyncio.sleep(PEEK_AGAIN)


class Alert(asyncio.Protocol):
    """``handshake-alert``: the ClientHello is answered with a fatal alert, then close."""

    def __init__(self, held: set, alert: bytes = HANDSHAKE_FAILURE_ALERT) -> None:
        self.held = held
        self.alert = alert
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.held.add(self)

    def data_received(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(self.alert)
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


def _listen(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[
        0
    ]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class TLSListeners:
    """The HTTPS port and the scenario ports of one server."""

    def __init__(self, material: Material, listener: Listener, handshake_timeout: float) -> None:
        self.material = material
        self.listener = listener
        self.handshake_timeout = handshake_timeout
        self.https_port: int | None = None
        self.scenario_ports: dict[str, int] = {}
        self.sockets: list[socket.socket] = []
        self.held: set[Alert] = set()  # alert and stall connections, closed at shutdown
        self.tasks: set[asyncio.Task] = set()
        self.loop = asyncio.get_running_loop()

    async def start_https(self, host: str, port: int) -> int:
        """The HTTPS port: the valid leaf, or the scenario the SNI name asks for."""
        self.https_port = self._serve(_listen(host, port), None)
        return self.https_port

    async def start_scenarios(self, host: str, base: int) -> dict[str, int]:
        """Scenario i on port ``base + i`` (every one on a free port when ``base`` is 0)."""
        opened: list[socket.socket] = []
        try:
            for index in range(len(SCENARIOS)):
                opened.append(_listen(host, base + index if base else 0))
        except OSError:
            for sock in opened:
                sock.close()
            raise
        for scenario, sock in zip(SCENARIOS, opened):
            self.scenario_ports[scenario.name] = self._serve(sock, scenario)
        return self.scenario_ports

    def _serve(self, sock: socket.socket, scenario: Scenario | None) -> int:
        self.sockets.append(sock)
        self._spawn(self._accept(sock, scenario))
        return sock.getsockname()[1]

    def _spawn(self, coroutine) -> None:
        task = self.loop.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _accept(self, sock: socket.socket, scenario: Scenario | None) -> None:
        while True:
            try:
                client, _ = await self.loop.sock_accept(sock)
            except OSError as exc:
                # Out of file descriptors and the like: wait a moment, as asyncio's own server does.
                log.warning("mockstatus: TLS accept failed: %s", exc)
                await asyncio.sleep(1.0)
                continue
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            keep_alive_probes(client)
            self._spawn(self._dispatch(client, scenario))

    async def _dispatch(self, client: socket.socket, scenario: Scenario | None) -> None:
        """Peek at the ClientHello, then hand the socket to the protocol the scenario needs."""
        try:
            try:
                hello = await asyncio.wait_for(peek_hello(self.loop, client), self.handshake_timeout)
            except (TimeoutError, OSError):
                client.close()
                return
            if scenario is None:
                scenario = scenario_of(hello.server_name)
            await self._open(client, scenario, hello)
        except (TimeoutError, OSError, ssl.SSLError):
            # A failed handshake is the client's (or the lab's) business; the
            # transport is closed already.
            return

    async def _open(self, client: socket.socket, scenario: Scenario | None, hello: Hello) -> None:
        loop, timeout = self.loop, self.handshake_timeout
        if scenario is None:
            await loop.connect_accepted_socket(
                self.listener, client, ssl=self.material.valid, ssl_handshake_timeout=timeout
            )
            return
        limit = self.listener.max_connections
        if scenario.handshake != "tls" and limit and len(self.held) >= limit:
            client.close()  # held connections obey --max-connections too
            return
        if scenario.handshake == "stall":
            await self._hold(Stall(self.held), client)
            return
        if scenario.handshake == "alert":
            await self._hold(Alert(self.held), client)
            return
        version = VERSION_ONLY.get(scenario.name)
        if version is not None and not hello.offers(version):
            # RFC 8446 §4.2.1: no version in common is a protocol_version alert.
            # Sent here because asyncio's SSL transport closes a failed handshake
            # without flushing the alert OpenSSL wrote.
            await self._hold(Alert(self.held, PROTOCOL_VERSION_ALERT), client)
            return
        context = self.material.context(scenario.name)
        await loop.connect_accepted_socket(self.listener, client, ssl=context, ssl_handshake_timeout=timeout)

    async def _hold(self, protocol: Alert, client: socket.socket) -> None:
        # Counted before the transport is made, so handshakes dispatched at the
        # same moment all see it against --max-connections.
        self.held.add(protocol)
        try:
            await self.loop.connect_accepted_socket(lambda: protocol, client)
        except BaseException:
            self.held.discard(protocol)
            raise

    # -- shutdown -------------------------------------------------------------------------

    async def stop_accepting(self) -> None:
        """Stop accepting, and end the handshakes not yet handed over."""
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for sock in self.sockets:
            sock.close()
        self.sockets.clear()

    def close_held(self) -> None:
        for protocol in list(self.held):
            protocol.close()
