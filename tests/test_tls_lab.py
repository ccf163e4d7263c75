"""The bad-TLS lab: each scenario fails the way it is named, with every real client.

Each scenario is reached on its own port (``tls_url``) and by its SNI name on
the HTTPS port; the clients are the standard library's ``ssl``, requests,
httpx, aiohttp's client and curl, each trusting the served CA, so the one
thing wrong is the thing the scenario is named for.
"""

from __future__ import annotations

import asyncio
import random
import select
import socket
import ssl
import subprocess
import time

import aiohttp
import httpx
import pytest
import requests

from mockstatus.https import client_hello
from mockstatus.tls import SCENARIOS

pytestmark = pytest.mark.usefixtures("no_server_errors")

STALL = 0.3  # seconds a client waits for a handshake that never comes

VERIFY = {
    "expired": "certificate has expired",
    "not-yet-valid": "certificate is not yet valid",
    "wrong-host": "IP address mismatch",  # the port URL names 127.0.0.1
    "self-signed": "self-signed certificate",
    "untrusted-root": "self-signed certificate in certificate chain",
    "incomplete-chain": "unable to get local issuer certificate",
    "weak-key": "EE certificate key too weak",
}
CURL_VERIFY = {**VERIFY, "wrong-host": "no alternative certificate subject name matches target host name '127.0.0.1'"}


def curl(*args: str, timeout: float = 5) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "-m", str(timeout), *args], capture_output=True, text=True)


def ssl_attempt(context: ssl.SSLContext, port: int, server_hostname: str = "localhost") -> bytes:
    """A handshake, one request, the first bytes of the reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=STALL) as raw:
        with context.wrap_socket(raw, server_hostname=server_hostname) as sock:
            sock.sendall(b"GET /status/200 HTTP/1.1\r\nHost: localhost\r\n\r\n")
            return sock.recv(64)


def port_of(server, scenario: str) -> int:
    url = server.tls_url(scenario)
    return int(url.rsplit(":", 1)[1].split("/")[0])


# --- certificate scenarios ---------------------------------------------------------------


@pytest.mark.parametrize("scenario", list(VERIFY))
def test_certificate_scenario_with_the_ssl_module(mockstatus, scenario):
    with pytest.raises(ssl.SSLCertVerificationError, match=VERIFY[scenario]):
        ssl_attempt(mockstatus.ssl_context(), port_of(mockstatus, scenario), "127.0.0.1")


@pytest.mark.parametrize("scenario", list(VERIFY))
def test_certificate_scenario_with_requests(mockstatus, scenario):
    with pytest.raises(requests.exceptions.SSLError, match=VERIFY[scenario]):
        requests.get(mockstatus.tls_url(scenario, "/status/200"), verify=mockstatus.ca_bundle, timeout=5)


@pytest.mark.parametrize("scenario", list(VERIFY))
def test_certificate_scenario_with_httpx(mockstatus, scenario):
    with pytest.raises(httpx.ConnectError, match=VERIFY[scenario]):
        httpx.get(mockstatus.tls_url(scenario, "/status/200"), verify=mockstatus.ssl_context(), timeout=5)


@pytest.mark.parametrize("scenario", list(VERIFY))
async def test_certificate_scenario_with_aiohttp(mockstatus, scenario):
    url = await asyncio.to_thread(mockstatus.tls_url, scenario, "/status/200")
    context = await asyncio.to_thread(mockstatus.ssl_context)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError, match=VERIFY[scenario]):
            await session.get(url, ssl=context)


@pytest.mark.parametrize("scenario", list(VERIFY))
def test_certificate_scenario_with_curl_is_exit_60(mockstatus, scenario):
    done = curl("--cacert", mockstatus.ca_bundle, mockstatus.tls_url(scenario, "/status/200"))
    assert done.returncode == 60, done.stderr
    assert CURL_VERIFY[scenario] in done.stderr


@pytest.mark.parametrize("scenario", [s.name for s in SCENARIOS if s.handshake == "tls"])
def test_sni_name_on_the_https_port_selects_the_scenario(mockstatus, scenario):
    name = f"{scenario}.localhost"
    context = mockstatus.ssl_context()
    if scenario in VERIFY:
        expected = "Hostname mismatch" if scenario == "wrong-host" else VERIFY[scenario]
        with pytest.raises(ssl.SSLCertVerificationError, match=expected):
            ssl_attempt(context, mockstatus.https_port, name)
        return
    if scenario == "client-cert-required":
        context.load_cert_chain(*mockstatus.client_cert)
    with socket.create_connection(("127.0.0.1", mockstatus.https_port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=name) as sock:
            # The leaf names the scenario: the SNI name verified.
            assert ("DNS", name) in sock.getpeercert()["subjectAltName"]
            if scenario.startswith("tls1."):
                assert sock.version() == "TLSv" + scenario[3:6]


def test_sni_names_with_curl_resolve(mockstatus):
    port = mockstatus.https_port
    for scenario, code in (("expired", 60), ("handshake-alert", 35), ("tls1.2-only", 0)):
        host = f"{scenario}.localhost"
        done = curl(
            "--cacert",
            mockstatus.ca_bundle,
            "--resolve",
            f"{host}:{port}:127.0.0.1",
            f"https://{host}:{port}/status/200",
        )
        assert done.returncode == code, done.stderr


def test_an_unknown_sni_name_gets_the_valid_leaf(mockstatus):
    context = mockstatus.ssl_context()
    context.check_hostname = False  # the name is not in the leaf; the chain must still verify
    assert ssl_attempt(context, mockstatus.https_port, "nope.localhost").startswith(b"HTTP/1.1 200 OK")


def test_a_client_hello_in_two_pieces_still_selects_by_sni(mockstatus):
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = mockstatus.ssl_context().wrap_bio(incoming, outgoing, server_hostname="expired.localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    with socket.create_connection(("127.0.0.1", mockstatus.https_port), timeout=5) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.sendall(hello[:40])
        time.sleep(0.05)
        raw.sendall(hello[40:])
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate has expired"):
            while True:
                incoming.write(raw.recv(65536))
                try:
                    tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    raw.sendall(outgoing.read())


def test_client_hello_parser_reads_sni_and_versions():
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    context = ssl.create_default_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    tls = context.wrap_bio(incoming, outgoing, server_hostname="tls1.3-only.localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    data = outgoing.read()
    assert client_hello(data[:30]) is None  # still arriving
    hello = client_hello(data)
    assert hello.server_name == "tls1.3-only.localhost"
    assert hello.offers(0x0303) and not hello.offers(0x0304)
    assert client_hello(b"GET / HTTP/1.1\r\n\r\n").server_name is None


# --- settings scenarios -----------------------------------------------------------------


def test_client_cert_required_with_the_plugins_client_cert(mockstatus):
    reply = requests.get(
        mockstatus.tls_url("client-cert-required", "/status/200"), verify=mockstatus.ca_bundle,
        cert=mockstatus.client_cert, timeout=5,
    )  # fmt: skip
    assert reply.status_code == 200


def test_client_cert_required_without_one(mockstatus):
    url = mockstatus.tls_url("client-cert-required", "/status/200")
    # TLS 1.3: the client's handshake ends before the server checks its (empty)
    # certificate, so each client sees the connection end with no reply: closed,
    # or reset when its request had arrived unread.
    try:
        assert ssl_attempt(mockstatus.ssl_context(), port_of(mockstatus, "client-cert-required")) == b""
    except ConnectionResetError:
        pass
    with pytest.raises(requests.exceptions.ConnectionError, match="Remote end closed connection|reset by peer"):
        requests.get(url, verify=mockstatus.ca_bundle, timeout=5)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError), match="Server disconnected|reset by peer"):
        httpx.get(url, verify=mockstatus.ssl_context(), timeout=5)
    done = curl("--cacert", mockstatus.ca_bundle, url)
    assert done.returncode in (52, 56), done.stderr


async def test_client_cert_required_without_one_with_aiohttp(mockstatus):
    url = await asyncio.to_thread(mockstatus.tls_url, "client-cert-required", "/status/200")
    context = await asyncio.to_thread(mockstatus.ssl_context)
    async with aiohttp.ClientSession() as session:
        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            await session.get(url, ssl=context)


@pytest.mark.parametrize(("scenario", "speaks", "client_limit"), [
    ("tls1.2-only", "TLSv1.2", {"minimum_version": ssl.TLSVersion.TLSv1_3}),
    ("tls1.3-only", "TLSv1.3", {"maximum_version": ssl.TLSVersion.TLSv1_2}),
])  # fmt: skip
def test_one_version_only(mockstatus, scenario, speaks, client_limit):
    port = port_of(mockstatus, scenario)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with mockstatus.ssl_context().wrap_socket(raw, server_hostname="localhost") as sock:
            assert sock.version() == speaks
    context = mockstatus.ssl_context()
    for name, value in client_limit.items():
        setattr(context, name, value)
    with pytest.raises(ssl.SSLError, match="TLSV1_ALERT_PROTOCOL_VERSION"):
        ssl_attempt(context, port)
    with pytest.raises(httpx.ConnectError, match="alert protocol version"):
        httpx.get(mockstatus.tls_url(scenario, "/status/200"), verify=context, timeout=5)
    flag = ["--tlsv1.3"] if scenario == "tls1.2-only" else ["--tls-max", "1.2"]
    done = curl("--cacert", mockstatus.ca_bundle, *flag, mockstatus.tls_url(scenario, "/status/200"))
    assert done.returncode == 35, done.stderr
    assert "alert protocol version" in done.stderr


# --- handshake scenarios ----------------------------------------------------------------


def test_handshake_alert_with_every_client(mockstatus):
    url = mockstatus.tls_url("handshake-alert", "/status/200")
    with pytest.raises(ssl.SSLError, match="SSLV3_ALERT_HANDSHAKE_FAILURE"):
        ssl_attempt(mockstatus.ssl_context(), port_of(mockstatus, "handshake-alert"))
    with pytest.raises(requests.exceptions.SSLError, match="sslv3 alert handshake failure"):
        requests.get(url, verify=mockstatus.ca_bundle, timeout=5)
    with pytest.raises(httpx.ConnectError, match="sslv3 alert handshake failure"):
        httpx.get(url, verify=mockstatus.ssl_context(), timeout=5)
    done = curl("--cacert", mockstatus.ca_bundle, url)
    assert (done.returncode, "sslv3 alert handshake failure" in done.stderr) == (35, True), done.stderr


async def test_handshake_alert_with_aiohttp(mockstatus):
    url = await asyncio.to_thread(mockstatus.tls_url, "handshake-alert", "/status/200")
    context = await asyncio.to_thread(mockstatus.ssl_context)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorSSLError, match="sslv3 alert handshake failure"):
            await session.get(url, ssl=context)


def test_handshake_stall_with_every_client(mockstatus):
    url = mockstatus.tls_url("handshake-stall", "/status/200")
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="handshake operation timed out"):
        ssl_attempt(mockstatus.ssl_context(), port_of(mockstatus, "handshake-stall"))
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(url, verify=mockstatus.ca_bundle, timeout=STALL)
    with pytest.raises(httpx.ConnectTimeout):
        httpx.get(url, verify=mockstatus.ssl_context(), timeout=STALL)
    done = curl("--cacert", mockstatus.ca_bundle, url, timeout=STALL)
    assert done.returncode == 28, done.stderr
    assert time.monotonic() - started < 4 * STALL + 2


async def test_handshake_stall_with_aiohttp(mockstatus):
    url = await asyncio.to_thread(mockstatus.tls_url, "handshake-stall", "/status/200")
    context = await asyncio.to_thread(mockstatus.ssl_context)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=STALL)) as session:
        with pytest.raises(asyncio.TimeoutError):
            await session.get(url, ssl=context)


# --- the ports and the listing ----------------------------------------------------------


def test_tls_listing_names_each_scenario_its_port_and_what_a_client_sees(mockstatus):
    mockstatus.tls_url("expired")
    listing = requests.get(mockstatus.url("/__mockstatus/tls"), timeout=5).json()
    assert listing["https_port"] == mockstatus.https_port
    assert [row["scenario"] for row in listing["scenarios"]] == [s.name for s in SCENARIOS]
    for row in listing["scenarios"]:
        assert row["sni"] == row["scenario"] + ".localhost"
        assert mockstatus.tls_url(row["scenario"]).endswith(f":{row['port']}/")
        assert row["client_sees"]


def test_scenario_ports_are_consecutive_in_the_documented_order(make_mockstatus):
    for _ in range(5):
        base = random.randrange(20000, 60000)
        try:
            server = make_mockstatus(tls_scenario_ports=base)
        except OSError:
            continue  # one of the ports was taken; another base
        listing = requests.get(server.url("/__mockstatus/tls"), timeout=5).json()
        assert [row["port"] for row in listing["scenarios"]] == list(range(base, base + len(SCENARIOS)))
        assert listing["https_port"] is None
        done = curl("--cacert", server.ca_bundle, f"https://127.0.0.1:{base}/status/200")
        assert done.returncode == 60 and "certificate has expired" in done.stderr, done.stderr
        return
    pytest.skip("no free run of ports found")


def test_unknown_scenario_names_the_known_ones(mockstatus):
    with pytest.raises(ValueError, match="unknown TLS scenario 'nope'; known: expired, not-yet-valid"):
        mockstatus.tls_url("nope")


def test_stop_closes_stalled_handshakes_and_tls_connections(make_mockstatus):
    server = make_mockstatus(https_port=0)
    stalled = socket.create_connection(("127.0.0.1", server.https_port), timeout=5)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    hello = server.ssl_context().wrap_bio(incoming, outgoing, server_hostname="handshake-stall.localhost")
    with pytest.raises(ssl.SSLWantReadError):
        hello.do_handshake()
    stalled.sendall(outgoing.read())
    with socket.create_connection(("127.0.0.1", server.https_port), timeout=5) as raw:
        with server.ssl_context().wrap_socket(raw, server_hostname="localhost") as kept:
            kept.sendall(b"GET /status/200 HTTP/1.1\r\nHost: x\r\n\r\n")
            assert kept.recv(64).startswith(b"HTTP/1.1 200 OK")
            started = time.monotonic()
            server.stop()
            assert time.monotonic() - started < 2
            while kept.recv(4096):  # the rest of the reply, then the server's close
                pass
    assert ended(stalled)  # the stalled handshake is closed too
    stalled.close()


def ended(sock: socket.socket) -> bool:
    """The server closed the connection (a FIN, or a reset when our bytes were unread)."""
    sock.settimeout(2)
    try:
        return sock.recv(64) == b""
    except ConnectionResetError:
        return True


def test_held_handshakes_obey_max_connections(make_mockstatus):
    server = make_mockstatus(tls_scenario_ports=0, max_connections=2)
    port = port_of(server, "handshake-stall")
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(3)]
    try:
        for sock in held:
            sock.sendall(b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00")  # a (tiny) ClientHello record
        # Which of the three is over the limit depends on the order their
        # ClientHellos are read in: exactly one is closed at once, two are held.
        deadline = time.monotonic() + 3
        readable: list = []
        while not readable and time.monotonic() < deadline:
            readable, _, _ = select.select(held, [], [], 0.1)
        assert len(readable) == 1 and ended(readable[0])
        time.sleep(0.2)
        assert select.select([s for s in held if s is not readable[0]], [], [], 0.1)[0] == []  # still held
    finally:
        for sock in held:
            sock.close()
