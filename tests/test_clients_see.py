"""What real clients do with 600, 444 and each fault.

``SEES`` is the table in README ("what your client sees"): each cell is what a
test below asserts, and ``test_readme_table_matches`` keeps README in step.
curl runs as a subprocess; requests, httpx and aiohttp's client in-process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import subprocess
import time
from pathlib import Path

import aiohttp
import httpx
import pytest
import requests
from wire import connect, read_to_end, request_bytes

README = Path(__file__).resolve().parent.parent / "docs" / "wire.md"
GARBAGE = "/status/200?fault=garbage&seed=1"  # seeded: the same bytes every time
NO_LENGTH_BODY = b"200 OK\n"

ROWS = {
    "600": "/status/600",
    "444": "/status/444",
    "reset": "/status/200?fault=reset",
    "empty": "/status/200?fault=empty",
    "garbage": GARBAGE,
    "malformed": "/status/200?fault=malformed",
    "truncate": "/status/200?fault=truncate",
    "no-length": "/status/200?fault=no-length",
    "101 without Upgrade": "/status/101",
    "stall": "/status/200?fault=stall",
    "stall-body": "/status/200?fault=stall-body",
    "reset-after:64": "/status/200?fault=reset-after:64",
    "close-after:64": "/status/200?fault=close-after:64",
    "close-during-upload": "/status/200?fault=close-during-upload",
    "reset-during-upload": "/status/200?fault=reset-during-upload",
    "early-response": "/status/413?fault=early-response",
    "stale-keepalive": "/status/200?fault=stale-keepalive",
    "close-after-requests:1": "/status/200?fault=close-after-requests:1",
    "close-after-requests:1!": "/status/200?fault=close-after-requests:1!",
}
# Rows sent as a POST with a 10-byte body (the fault is in the upload); the rest are GETs.
UPLOADS = {"close-during-upload", "reset-during-upload", "early-response"}
UPLOAD = b"0123456789"
HOLD = 0.2  # --max-delay of the server here: how long a stall lasts
CLIENTS = ("curl", "curl --http0.9", "requests", "httpx", "aiohttp")


@dataclasses.dataclass(frozen=True)
class Exit:
    """curl's exit status; ``says`` is its error message, or for 0 what it prints."""

    code: int
    says: str

    def cell(self) -> str:
        return f"exit {self.code}, {self.says}" if self.code == 0 else f"exit {self.code}: {self.says}"


@dataclasses.dataclass(frozen=True)
class Raises:
    """The exact exception class, and a piece of its message or (``wraps``) the exception it wraps."""

    cls: type[BaseException]
    detail: str
    wraps: bool = False
    # What the same client says at the floor of the aiohttp range (its parser's older wording).
    older: str | None = None

    def cell(self) -> str:
        if self.wraps:
            return f"`{self.cls.__name__}` wrapping `{self.detail}`"
        return f'`{self.cls.__name__}`: "{self.detail}"'


@dataclasses.dataclass(frozen=True)
class Gets:
    """The client returns a response."""

    status: int
    body: str  # "the body", "an empty body"
    note: str = ""

    def cell(self) -> str:
        return f"{self.status} with {self.body}" + (f"; {self.note}" if self.note else "")


HEADER_WARNING = "urllib3 logs `Failed to parse headers`"
NEXT_ON_SESSION = "the session's next request gets its own reply"

# fmt: off
# What each client says (curl, curl --http0.9, requests, httpx, aiohttp) in the
# outcomes several rows share: a close with no reply, a TCP reset, a whole reply.
CLOSED_UNANSWERED = (
    Exit(52, "Empty reply from server"), Exit(52, "Empty reply from server"),
    Raises(requests.ConnectionError, "RemoteDisconnected", wraps=True),
    Raises(httpx.RemoteProtocolError, "Server disconnected without sending a response."),
    Raises(aiohttp.ServerDisconnectedError, "Server disconnected"),
)
RESET_BY_PEER = (
    Exit(56, "Recv failure: Connection reset by peer"), Exit(56, "Recv failure: Connection reset by peer"),
    Raises(requests.ConnectionError, "ConnectionResetError", wraps=True),
    Raises(httpx.ReadError, "Connection reset by peer"),
    Raises(aiohttp.ClientOSError, "Connection reset by peer"),
)


def answered(code: int) -> tuple:
    return (
        Exit(0, "prints the body"), Exit(0, "prints the body"),
        Gets(code, "the body"), Gets(code, "the body"), Gets(code, "the body"),
    )


SEES: dict[str, tuple] = {
    #              curl, curl --http0.9, requests, httpx, aiohttp
    "600": (
        Exit(1, "Received HTTP/0.9 when not allowed"), Exit(0, "prints the body"),
        Raises(requests.ConnectionError, "BadStatusLine", wraps=True),
        Raises(httpx.RemoteProtocolError, "Server disconnected without sending a response."),
        Raises(aiohttp.ClientResponseError, "Bad status line", older="Expected HTTP/"),
    ),
    "444": CLOSED_UNANSWERED,
    "reset": RESET_BY_PEER,
    "empty": CLOSED_UNANSWERED,
    "garbage": (
        Exit(1, "Received HTTP/0.9 when not allowed"), Exit(0, "prints the bytes"),
        Raises(requests.ConnectionError, "BadStatusLine", wraps=True),
        Raises(httpx.RemoteProtocolError, "Server disconnected without sending a response."),
        Raises(aiohttp.ClientResponseError, "Bad status line", older="Expected HTTP/"),
    ),
    "malformed": (
        Exit(8, "Header without colon"), Exit(8, "Header without colon"),
        Gets(200, "an empty body", HEADER_WARNING),
        Raises(httpx.RemoteProtocolError, "illegal header line"),
        Raises(aiohttp.ClientResponseError, "Invalid header token"),
    ),
    "truncate": (
        Exit(18, "transfer closed with 4 bytes remaining to read"),
        Exit(18, "transfer closed with 4 bytes remaining to read"),
        Raises(requests.exceptions.ChunkedEncodingError, "IncompleteRead", wraps=True),
        Raises(httpx.RemoteProtocolError, "peer closed connection without sending complete message body"),
        Raises(aiohttp.ClientPayloadError, "Response payload is not completed"),
    ),
    "no-length": answered(200),
    "101 without Upgrade": (
        Exit(52, "Empty reply from server"), Exit(52, "Empty reply from server"),
        Gets(101, "an empty body", NEXT_ON_SESSION),
        Raises(httpx.RemoteProtocolError, "Received server _SWITCH_UPGRADE event without a pending proposal"),
        Gets(101, "an empty body", NEXT_ON_SESSION),
    ),
    "stall": CLOSED_UNANSWERED,
    "stall-body": (
        Exit(18, "transfer closed with 4 bytes remaining to read"),
        Exit(18, "transfer closed with 4 bytes remaining to read"),
        Raises(requests.exceptions.ChunkedEncodingError, "IncompleteRead", wraps=True),
        Raises(httpx.RemoteProtocolError, "peer closed connection without sending complete message body"),
        Raises(aiohttp.ClientPayloadError, "Response payload is not completed"),
    ),
    "reset-after:64": RESET_BY_PEER,
    "close-after:64": (
        Exit(0, "prints nothing"), Exit(0, "prints nothing"),
        Gets(200, "an empty body"),
        Raises(httpx.RemoteProtocolError, "Server disconnected without sending a response."),
        Raises(aiohttp.ServerDisconnectedError, "code=200, reason='OK'"),
    ),
    "close-during-upload": CLOSED_UNANSWERED,
    "reset-during-upload": RESET_BY_PEER,
    "early-response": answered(413),
    "stale-keepalive": answered(200),
    "close-after-requests:1": answered(200),
    "close-after-requests:1!": answered(200),
}
# fmt: on

CASES = [(row, client) for row in ROWS for client in CLIENTS]
IDS = [f"{row}/{client.replace(' --', '-')}" for row, client in CASES]


def expected(row: str, client: str):
    return SEES[row][CLIENTS.index(client)]


def raw_bytes(server, path: str) -> bytes:
    with connect(server) as sock:
        sock.sendall(request_bytes(path))
        return read_to_end(sock)[0]


@pytest.fixture(scope="module")
def server(make_mockstatus_session):
    return make_mockstatus_session(None, max_delay=HOLD)


def body_of(server, row: str) -> bytes:
    """What a client that succeeds should print: the bytes the server sent as the body."""
    if row == "early-response":
        return b"413 Content Too Large\n"
    if row == "close-after:64":
        return b""
    if row == "600":
        return server.catalog.get(600).body.encode()
    if row == "garbage":
        return raw_bytes(server, GARBAGE)
    if row == "101 without Upgrade":
        return b""
    return NO_LENGTH_BODY


# --- the clients --------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (.ci/run installs it)")
@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize("client", ["curl", "curl --http0.9"])
def test_curl(server, row, client):
    want = expected(row, client)
    upload = ["--data-binary", UPLOAD.decode()] if row in UPLOADS else []
    args = ["curl", "-sS", "--max-time", "10", *client.split()[1:], *upload, server.url(ROWS[row])]
    done = subprocess.run(args, capture_output=True, timeout=20)
    assert done.returncode == want.code, done.stderr
    if want.code == 0:
        assert done.stdout == body_of(server, row)
    else:
        assert done.stdout in (b"", b"200")  # truncate: the half body it got before the close
        assert want.says in done.stderr.decode()


def run_requests(url: str, body: bytes | None = None):
    return requests.request("GET" if body is None else "POST", url, data=body, timeout=5)


def run_httpx(url: str, body: bytes | None = None):
    return httpx.request("GET" if body is None else "POST", url, content=body, timeout=5)


def run_aiohttp(url: str, body: bytes | None = None):
    async def get():
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.request("GET" if body is None else "POST", url, data=body) as response:
                return response.status, await response.read()

    return asyncio.run(get())


RUNNERS = {"requests": run_requests, "httpx": run_httpx, "aiohttp": run_aiohttp}


def described(exc: BaseException) -> str:
    """The message plus the names of the exceptions it wraps (requests wraps urllib3 wraps http.client)."""
    parts, seen = [str(exc)], exc
    while seen is not None:
        parts.append(type(seen).__name__)
        for arg in getattr(seen, "args", ()):
            if isinstance(arg, BaseException):
                parts.append(type(arg).__name__ + " " + str(arg))
        seen = seen.__cause__ or seen.__context__
    return " | ".join(parts)


@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize("client", ["requests", "httpx", "aiohttp"])
def test_python_client(server, row, client, caplog):
    want = expected(row, client)
    url = server.url(ROWS[row])
    upload = UPLOAD if row in UPLOADS else None
    if isinstance(want, Raises):
        with pytest.raises(Exception) as caught:
            RUNNERS[client](url, upload)
        assert type(caught.value) is want.cls, described(caught.value)  # exactly this class
        seen = described(caught.value)
        assert want.detail in seen or (want.older is not None and want.older in seen), seen
        return
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        result = RUNNERS[client](url, upload)
    status, body = (result.status_code, result.content) if client != "aiohttp" else result
    assert status == want.status
    assert body == (b"" if want.body == "an empty body" else body_of(server, row))
    if want.note == HEADER_WARNING:
        assert any("Failed to parse headers" in record.getMessage() for record in caplog.records)


def test_101_without_upgrade_in_a_requests_session_then_the_next_code(mockstatus):
    """Looping over the catalog in one Session: the reply after 101 is its own, not an echo."""
    with requests.Session() as session:
        for code in (100, 101, 200, 101, 503):
            response = session.get(mockstatus.url(f"/status/{code}"), timeout=5)
            assert response.status_code == (200 if code == 100 else code)
            if code == 101:
                assert response.headers["Upgrade"] == "mockstatus-echo" and response.content == b""


def test_101_without_upgrade_in_an_httpx_client_then_the_next_code(mockstatus):
    with httpx.Client(timeout=5) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(mockstatus.url("/status/101"))
        assert client.get(mockstatus.url("/status/503")).status_code == 503


async def test_101_without_upgrade_in_an_aiohttp_session_then_the_next_code(mockstatus):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        async with session.get(mockstatus.url("/status/101")) as response:
            assert response.status == 101 and response.headers["Upgrade"] == "mockstatus-echo"
            assert await response.read() == b""
        async with session.get(mockstatus.url("/status/503")) as response:
            assert response.status == 503


# --- the README table ---------------------------------------------------------------


def markdown_table() -> str:
    lines = ["| reply | " + " | ".join(f"`{c}`" if c.startswith("curl") else c for c in CLIENTS) + " |"]
    lines.append("|" + " --- |" * (len(CLIENTS) + 1))
    for row, path in ROWS.items():
        label = f"`{row}` (`{path}`)"
        lines.append(f"| {label} | " + " | ".join(cell.cell() for cell in SEES[row]) + " |")
    return "\n".join(lines)


def test_readme_table_matches():
    """README's table is generated from SEES: print markdown_table() to refresh it."""
    text = README.read_text(encoding="utf-8")
    assert markdown_table() in text, "docs/wire.md table out of date; paste:\n" + markdown_table()


def test_every_row_and_client_has_a_cell():
    assert set(SEES) == set(ROWS) and all(len(cells) == len(CLIENTS) for cells in SEES.values())


# --- a stale pooled connection ----------------------------------------------------------

STALE = "/status/200?fault=stale-keepalive"  # closes 100 ms after the reply


def test_stale_keepalive_second_request_at_once_hits_the_dead_connection(server):
    url = server.url(STALE)
    with requests.Session() as session:
        assert session.get(url, timeout=5).status_code == 200
        with pytest.raises(requests.ConnectionError) as caught:
            session.get(url, timeout=5)
    assert "RemoteDisconnected" in described(caught.value)
    with httpx.Client(timeout=5) as client:
        assert client.get(url).status_code == 200
        with pytest.raises(httpx.RemoteProtocolError, match="Server disconnected without sending a response."):
            client.get(url)


def test_stale_keepalive_aiohttp_and_curl_retry_on_a_new_connection(server):
    url = server.url("/status/202?fault=stale-keepalive")  # a code of its own, to count its entries

    async def twice():
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            statuses = []
            for _ in range(2):
                async with session.get(url) as response:
                    await response.read()
                    statuses.append(response.status)
            return statuses

    assert asyncio.run(twice()) == [202, 202]
    answered = 2
    if shutil.which("curl") is not None:
        done = subprocess.run(["curl", "-sS", "--max-time", "5", url, url], capture_output=True, timeout=20)
        assert (done.returncode, done.stdout) == (0, b"202 Accepted\n" * 2)
        answered += 2
    # Both replies each, and one journal entry per reply (the request the stale
    # connection swallowed never reached a handler).
    assert len(server.requests(path="/status/202")) == answered


def test_stale_keepalive_after_the_close_every_client_reconnects(server):
    url = server.url(STALE)
    with requests.Session() as session, httpx.Client(timeout=5) as client:
        for _ in range(2):
            assert session.get(url, timeout=5).status_code == 200
            assert client.get(url).status_code == 200
            time.sleep(0.15)  # past the close: the pool sees the connection is gone
