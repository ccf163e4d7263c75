"""HTTPS: the listener, the CA and its leaf, and every wire-level kind over TLS.

Real clients only (the standard library's ``ssl``, requests, httpx, aiohttp's
client, curl), each verifying against the CA the server serves.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import time

import aiohttp
import httpx
import pytest
import requests
import websockets.sync.client
from wire import read_exactly, read_head, read_response, read_to_end, request_bytes

from mockstatus.cli import main
from mockstatus.heads import SERVER

pytestmark = pytest.mark.usefixtures("no_server_errors")


def tls_connect(server, port: int | None = None, server_hostname: str = "localhost", context=None) -> ssl.SSLSocket:
    context = context or server.ssl_context()
    raw = socket.create_connection(("127.0.0.1", port or server.https_port), timeout=5)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return context.wrap_socket(raw, server_hostname=server_hostname)


def curl(*args: str, timeout: float = 5) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "-m", str(timeout), *args], capture_output=True, text=True)


# --- the valid path verifies with every client ------------------------------------------


def test_https_status_418_with_requests(mockstatus):
    reply = requests.get(mockstatus.https_url("/status/418"), verify=mockstatus.ca_bundle, timeout=5)
    assert reply.status_code == 418
    assert reply.url.startswith("https://127.0.0.1:")


def test_https_status_503_with_httpx(mockstatus):
    with httpx.Client(verify=mockstatus.ssl_context()) as client:
        reply = client.get(mockstatus.https_url("/status/503"))
    assert (reply.status_code, reply.headers["Retry-After"]) == (503, "1")


async def test_https_status_201_with_aiohttp(mockstatus):
    url = await asyncio.to_thread(mockstatus.https_url, "/status/201")
    context = await asyncio.to_thread(mockstatus.ssl_context)
    async with aiohttp.ClientSession() as session:
        async with session.get(url, ssl=context) as reply:
            assert reply.status == 201
            assert reply.headers["Location"] == "/status/200"


def test_https_status_200_with_curl_and_the_served_ca(mockstatus, tmp_path):
    served = requests.get(mockstatus.url("/__mockstatus/ca.pem"), timeout=5)
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "application/x-pem-file"
    assert served.content == mockstatus.ca_pem
    ca = tmp_path / "ca.pem"
    ca.write_bytes(served.content)
    for host in ("127.0.0.1", "localhost"):
        done = curl("--cacert", str(ca), f"https://{host}:{mockstatus.https_port}/status/200")
        assert (done.returncode, done.stdout) == (0, "200 OK\n"), done.stderr


def test_https_with_the_ssl_module_names_localhost_and_speaks_http_1_1(mockstatus):
    with tls_connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/204"))
        head, body = read_response(sock)
        assert head.startswith(b"HTTP/1.1 204 No Content\r\n")
        assert sock.version() in ("TLSv1.2", "TLSv1.3")
        names = [value for kind, value in sock.getpeercert()["subjectAltName"]]
        assert {"localhost", "127.0.0.1"} <= set(names)


def test_https_without_trusting_the_ca_fails_verification(mockstatus):
    with pytest.raises(requests.exceptions.SSLError, match="certificate verify failed"):
        requests.get(mockstatus.https_url("/status/200"), timeout=5)


def test_ca_pem_is_a_404_naming_the_flag_when_https_is_off(make_mockstatus):
    server = make_mockstatus()
    reply = requests.get(server.url("/__mockstatus/ca.pem"), timeout=5)
    assert reply.status_code == 404
    assert "--https-port" in reply.text


def test_tls_hostnames_are_in_the_leaf(make_mockstatus):
    server = make_mockstatus(https_port=0, tls_hostnames=("mock.test", "api.mock.test"))
    port = server.https_port
    for host in ("mock.test", "api.mock.test"):
        done = curl(
            "--cacert", server.ca_bundle, "--resolve", f"{host}:{port}:127.0.0.1", f"https://{host}:{port}/status/200"
        )
        assert (done.returncode, done.stdout) == (0, "200 OK\n"), done.stderr
    done = curl(
        "--cacert", server.ca_bundle, "--resolve", f"other.test:{port}:127.0.0.1", f"https://other.test:{port}/"
    )
    assert done.returncode == 60, done.stderr


def test_a_ca_from_files_signs_the_leaf_and_the_client_cert(make_mockstatus, tmp_path, capsys):
    assert main(["ca", "--out", str(tmp_path / "ca.pem")], environ={}) == 0
    cert, key = tmp_path / "ca.pem", tmp_path / "ca-key.pem"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    server = make_mockstatus(https_port=0, tls_ca_cert=str(cert), tls_ca_key=str(key))
    assert requests.get(server.url("/__mockstatus/ca.pem"), timeout=5).content == cert.read_bytes()
    assert requests.get(server.https_url("/status/200"), verify=str(cert), timeout=5).status_code == 200
    # `mockstatus ca` with the same files prints that CA; client-cert writes a pair it signs.
    capsys.readouterr()
    assert main(["ca"], environ={"MOCKSTATUS_TLS_CA_CERT": str(cert), "MOCKSTATUS_TLS_CA_KEY": str(key)}) == 0
    assert capsys.readouterr().out.encode() == cert.read_bytes()
    out = tmp_path / "client"
    assert (
        main(["client-cert", "--out", str(out), "--tls-ca-cert", str(cert), "--tls-ca-key", str(key)], environ={}) == 0
    )
    url = server.tls_url("client-cert-required", "/status/202")
    reply = requests.get(url, verify=str(cert), cert=(str(out / "client.pem"), str(out / "client-key.pem")), timeout=5)
    assert reply.status_code == 202


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--https-port", "x"], "--https-port: bad port 'x': expected off or a whole number from 0 to 65535"),
        (["--tls-scenario-ports", "65530"], "the 12 scenario ports must end by 65535, so at most 65524"),
        (["--https-port", "0", "--tls-ca-cert", "/nonexistent/ca.pem"], "--tls-ca-cert and --tls-ca-key go together"),
        (
            ["--https-port", "0", "--tls-ca-cert", "/nonexistent/ca.pem", "--tls-ca-key", "/nonexistent/k.pem"],
            "--tls-ca-cert /nonexistent/ca.pem: No such file or directory",
        ),
        (["ca"], "no CA to print: give --tls-ca-cert and --tls-ca-key"),
        (["client-cert", "--out", "/tmp/x"], "client-cert needs the CA the server uses"),
    ],
)
def test_bad_tls_flags_are_one_line_and_exit_2(argv, message, capsys):
    assert main(argv, environ={}) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_https_port_from_env_and_config(tmp_path):
    from mockstatus.settings import resolve

    settings, _ = resolve({"server": {"https_port": 8443}})
    assert settings.https_port == 8443
    settings, _ = resolve(None, environ={"MOCKSTATUS_HTTPS_PORT": "9443", "MOCKSTATUS_TLS_HOSTNAMES": "a.test,b.test"})
    assert (settings.https_port, settings.tls_hostnames) == (9443, ("a.test", "b.test"))
    assert resolve(None, environ={"MOCKSTATUS_HTTPS_PORT": "off"})[0].https_port is None


# --- every wire-level kind works over TLS -----------------------------------------------


def test_https_interim_103_then_200(mockstatus):
    with tls_connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/103"))
        interim = read_head(sock)
        assert interim.startswith(b"HTTP/1.1 103 Early Hints\r\nLink: ")
        head, _ = read_response(sock)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")


def test_https_101_raw_echo(mockstatus):
    with tls_connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/101", headers={"Connection": "Upgrade", "Upgrade": "mockproto"}) + b"ping")
        head = read_head(sock)
        assert (
            head
            == (
                f"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: mockproto\r\nServer: {SERVER}\r\n\r\n"
            ).encode()
        )
        assert read_exactly(sock, 4) == b"ping"
        sock.sendall(b"pong over tls")
        assert read_exactly(sock, 13) == b"pong over tls"


def test_https_101_websocket_echo_with_the_websockets_library(mockstatus):
    url = "wss" + mockstatus.https_url("/status/101")[len("https") :]
    with websockets.sync.client.connect(url, ssl=mockstatus.ssl_context()) as ws:
        ws.send("hello over wss")
        assert ws.recv(timeout=5) == "hello over wss"


def test_https_600_is_the_body_with_no_head_then_close_notify(mockstatus):
    with tls_connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/600"))
        data, end = read_to_end(sock)
    assert not data.startswith(b"HTTP/")
    assert data
    assert end == "close"  # a TLS close_notify and a FIN, not a reset


def tls_over_raw(server, request: bytes) -> socket.socket:
    """A TLS handshake and one request, then the bare TCP socket: what the server does
    to the connection itself (FIN or RST) shows there, not hidden behind the TLS library."""
    raw = socket.create_connection(("127.0.0.1", server.https_port), timeout=5)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = server.ssl_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            raw.sendall(outgoing.read())
            incoming.write(raw.recv(65536))
    tls.write(request)
    raw.sendall(outgoing.read())
    return raw


def test_https_fault_reset_is_a_tcp_reset(mockstatus):
    with tls_over_raw(mockstatus, request_bytes("/status/200?fault=reset")) as raw:
        _, end = read_to_end(raw)
    assert end == "reset"


def test_https_fault_empty_is_a_close_notify_and_curl_exit_52(mockstatus):
    with tls_connect(mockstatus) as sock:
        sock.sendall(request_bytes("/status/200?fault=empty"))
        assert read_to_end(sock) == (b"", "close")
    done = curl("--cacert", mockstatus.ca_bundle, mockstatus.https_url("/status/200?fault=empty"))
    assert done.returncode == 52, done.stderr


def test_https_fault_reset_with_curl_is_exit_56(mockstatus):
    done = curl("--cacert", mockstatus.ca_bundle, mockstatus.https_url("/status/200?fault=reset"))
    assert done.returncode == 56, done.stderr
    assert "reset by peer" in done.stderr


def test_https_delay_and_keep_alive(mockstatus):
    with tls_connect(mockstatus) as sock:
        started = time.monotonic()
        for _ in range(2):
            sock.sendall(request_bytes("/status/200?delay=0.1"))
            head, _ = read_response(sock)
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert time.monotonic() - started >= 0.2


def test_https_requests_are_journaled(mockstatus):
    requests.get(mockstatus.https_url("/status/409?seed=77"), verify=mockstatus.ca_bundle, timeout=5)
    (entry,) = mockstatus.requests(path="/status/409")
    assert entry["status"] == 409


def test_a_ca_that_cannot_be_used_is_one_line_and_exit_2(tmp_path, capsys):
    for name in ("a", "b"):
        assert main(["ca", "--out", str(tmp_path / f"{name}.pem")], environ={}) == 0
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    cases = [
        (
            "a.pem",
            "b-key.pem",
            f"--tls-ca-key {tmp_path / 'b-key.pem'}: not the key of the certificate in {tmp_path / 'a.pem'}",
        ),
        ("junk.pem", "a-key.pem", f"--tls-ca-cert {tmp_path / 'junk.pem'}: not a PEM certificate"),
        ("a.pem", "junk.pem", f"--tls-ca-key {tmp_path / 'junk.pem'}: not an unencrypted PEM private key"),
    ]
    for cert, key, message in cases:
        capsys.readouterr()
        argv = [
            "--https-port",
            "0",
            "--port",
            "0",
            "--tls-ca-cert",
            str(tmp_path / cert),
            "--tls-ca-key",
            str(tmp_path / key),
        ]
        assert main(argv, environ={}) == 2
        assert capsys.readouterr().err == f"mockstatus: error: {message}\n"
