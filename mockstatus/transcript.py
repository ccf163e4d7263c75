"""``/__mockstatus/transcript``: one request to this server over a raw socket, as the wire carried it.

A browser's ``fetch()`` hides most of what this server is for: interim 1xx
replies, the header-less 600, a reset, a truncated body, a stall.  The
transcript route makes the request itself, from inside the server, to the
server's own listening address (never to a host a caller names), and
returns every chunk of bytes with its arrival time, the interim and final
heads as parsed, and how the connection ended.

It is a client like any other: the request goes through the connection
layer, counts against ``--max-connections`` and lands in the journal.

The reply parser here is deliberately lenient (the point is to show what
arrived, malformed or not); the request grammar stays in ``framing.py``,
whose chunked-body framing it reuses.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import re
import socket
import ssl

from aiohttp import web
from multidict import MultiMapping

from .durations import DURATION_FORM, format_seconds, parse_duration
from .framing import FIELD, TOKEN, ChunkedBody, Refusal
from .settings import connect_host
from .tls import SCENARIO_DOMAIN, SCENARIOS_BY_NAME

DEFAULT_TIMEOUT = 5.0  # seconds; a stall or a long delay is cut here and the transcript says so
MIN_TIMEOUT_CAP = 1.0  # the longest wait allowed even with --max-delay below it
MAX_CAPTURE = 1 << 20  # bytes of reply kept; more and the transcript stops, marked truncated
MAX_PATH = 2048
MAX_HEADERS = 32
MAX_HEADER_LINE = 1024
MAX_BODY = 65536
MAX_HEAD_SCAN = 65536  # a "head" longer than this is shown as bytes, not parsed
MAX_TRAILERS = 16384
# The methods a transcript may send: the ones a browser page or a test asks this server for.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Paths on this server that answer with a scenario; everything else is refused.
PREFIXES = ("/status/", "/sequence/")
# RFC 3986 §3.3: a path with its query, visible ASCII only (no space, CR, LF,
# control or non-ASCII byte: those travel percent-encoded).
TARGET = re.compile(r"[\x21-\x7e]+")
# RFC 3986 §5.2.4: a dot segment, literal or percent-encoded, could climb out
# of /status/ once a server normalizes the path.
DOT_SEGMENT = re.compile(r"/(?:\.|%2e){1,2}(?:/|\?|$)", re.IGNORECASE)
# The fields this route frames itself (RFC 9112 §6: one framing per message).
OWN_FIELDS = ("host", "content-length", "transfer-encoding", "connection", "upgrade", "expect")
HOST = re.compile(r"[A-Za-z0-9._\-]+(?::[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?")
PARAMETERS = ("path", "method", "header", "body", "timeout", "scheme", "tls")


class Own:
    """This server's listening sockets, for the transcript: set when it starts."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []

    def address(self) -> tuple[str, int] | None:
        """Where a client on this machine reaches the first listening socket (loopback for a wildcard)."""
        for sock in self.sockets:
            if sock.fileno() >= 0:
                host, port = sock.getsockname()[:2]
                return connect_host(host), port
        return None


OWN = web.AppKey("mockstatus.transcript", Own)


@dataclasses.dataclass(frozen=True)
class Ask:
    """One transcript request, checked."""

    path: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    timeout: float = DEFAULT_TIMEOUT
    scheme: str = "http"
    tls: str | None = None  # a bad-TLS lab scenario, asked for by its SNI name on the HTTPS port


def limit_for(max_delay: float) -> float:
    return max(max_delay, MIN_TIMEOUT_CAP)


def parse_ask(query: MultiMapping[str], max_delay: float) -> Ask:
    """The transcript's parameters; ValueError naming the bad one and the rule."""

    def getall(name: str) -> list[str]:
        return query.getall(name, [])

    for name in query:
        if name not in PARAMETERS:
            raise ValueError(f"unknown parameter {name[:40]!r}; allowed: {', '.join(PARAMETERS)}")
    for name in ("path", "method", "body", "timeout", "scheme", "tls"):
        if len(getall(name)) > 1:
            raise ValueError(f"parameter {name!r} given {len(getall(name))} times; give it once")
    path = query.get("path")
    if path is None or path == "":
        raise ValueError("missing path: give ?path=/status/CODE (with its query, percent-encoded), e.g. /status/418")
    check_path(path)
    method = query.get("method", "GET")
    if method not in METHODS:
        raise ValueError(f"bad method {method[:40]!r}: expected one of {', '.join(METHODS)}")
    headers = tuple(parse_header(line) for line in getall("header"))
    if len(headers) > MAX_HEADERS:
        raise ValueError(f"{len(headers)} header parameters: at most {MAX_HEADERS}")
    body_text = query.get("body", "")
    body = body_text.encode("utf-8", "surrogateescape")
    if len(body) > MAX_BODY:
        raise ValueError(f"body of {len(body)} bytes is above the transcript's {MAX_BODY} bytes")
    if body and method in ("GET", "HEAD", "OPTIONS", "DELETE"):
        raise ValueError(f"a body needs method POST, PUT or PATCH, not {method}")
    limit = limit_for(max_delay)
    timeout = min(DEFAULT_TIMEOUT, limit)
    if "timeout" in query:
        timeout = parse_duration(query["timeout"], what="timeout")
        if timeout <= 0 or timeout > limit:
            raise ValueError(
                f"bad timeout {query['timeout']!r}: expected {DURATION_FORM}, above 0 and at most "
                f"{format_seconds(limit)} (--max-delay)"
            )
    scheme = query.get("scheme", "http")
    if scheme not in ("http", "https"):
        raise ValueError(f"bad scheme {scheme[:20]!r}: expected http or https")
    scenario = query.get("tls")
    if scenario is not None:
        if scenario not in SCENARIOS_BY_NAME:
            raise ValueError(f"bad tls {scenario[:40]!r}: expected one of {', '.join(SCENARIOS_BY_NAME)}")
        if "scheme" in query and scheme != "https":
            raise ValueError("tls= is a scenario of the HTTPS port: leave scheme out or give scheme=https")
        scheme = "https"
    return Ask(path, method, headers, body, timeout, scheme, scenario)


def check_path(path: str) -> None:
    """Only a path on this server: refused with the rule it breaks."""
    shown = repr(path[:80]) + ("..." if len(path) > 80 else "")
    if len(path) > MAX_PATH:
        raise ValueError(f"path of {len(path)} characters: at most {MAX_PATH}")
    if TARGET.fullmatch(path) is None:
        bad = next(c for c in path if TARGET.fullmatch(c) is None)
        raise ValueError(
            f"bad path {shown}: {bad!r} is not allowed; a path is visible ASCII, with spaces, CR, LF "
            "and other bytes percent-encoded"
        )
    if not path.startswith("/") or path.startswith("//"):
        raise ValueError(
            f"bad path {shown}: a path on this server starts with one '/' (no scheme, no host); "
            f"expected one starting with {' or '.join(PREFIXES)}"
        )
    if not path.startswith(PREFIXES):
        raise ValueError(f"bad path {shown}: expected one starting with {' or '.join(PREFIXES)}")
    if "#" in path:
        raise ValueError(f"bad path {shown}: no fragment ('#'); a fragment never goes on the wire")
    if DOT_SEGMENT.search(path.partition("?")[0]):
        raise ValueError(f"bad path {shown}: no '.' or '..' segments")


def parse_header(line: str) -> tuple[str, str]:
    """``Name: value`` (one per ``header=`` parameter), as the request sends it."""
    if len(line) > MAX_HEADER_LINE:
        raise ValueError(f"header of {len(line)} characters: at most {MAX_HEADER_LINE}")
    name, colon, value = line.partition(":")
    name, value = name.strip(), value.strip(" \t")
    raw = f"{name}:{value}".encode("utf-8", "surrogateescape")
    if not colon or TOKEN.fullmatch(name.encode("utf-8", "surrogateescape")) is None or FIELD.fullmatch(raw) is None:
        raise ValueError(
            f"bad header {line[:80]!r}: expected Name: value, a token name and a value without CR, LF or NUL"
        )
    if name.lower() in OWN_FIELDS:
        raise ValueError(f"bad header {name!r}: the transcript sets {', '.join(OWN_FIELDS)} itself")
    return name, value


def host_for(given: str | None, address: tuple[str, int]) -> str:
    """The Host the request names: the page's own (so the reply is the one fetch() gets), else the address."""
    if given and len(given) <= 255 and HOST.fullmatch(given):
        return given
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def request_bytes(ask: Ask, host: str) -> bytes:
    lines = [f"{ask.method} {ask.path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in ask.headers]
    if ask.body or ask.method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(ask.body)}")  # RFC 9110 §8.6: a POST without a body says 0
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + b"\r\n\r\n" + ask.body


# --- the reply, as it arrives --------------------------------------------------------


def data_json(data: bytes) -> dict:
    """Bytes in JSON: ``text`` is latin-1 (one character per byte, so ``text.encode('latin-1')``
    gives the bytes back), ``base64`` the same bytes for tools that want them so."""
    return {"size": len(data), "text": data.decode("latin-1"), "base64": base64.b64encode(data).decode("ascii")}


def parse_head(head: bytes) -> dict:
    """A response head, leniently: what a careful client would make of it."""
    line, *fields = head.decode("latin-1").split("\r\n")
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    headers, malformed = [], []
    for item in fields:
        name, sep, value = item.partition(":")
        if not sep or not name or name != name.strip():
            malformed.append(item)
            continue
        headers.append([name, value.strip(" \t")])  # OWS only (RFC 9110 §5.5)
    status = int(code) if len(code) == 3 and code.isdigit() else None
    return {"version": version, "status": status, "reason": reason, "headers": headers, "malformed": malformed}


def _header(head: dict, name: str) -> str | None:
    found = [value for key, value in head["headers"] if key.lower() == name]
    return ",".join(found) if found else None


class Recorder(asyncio.Protocol):
    """A client connection that records what arrives and reads the reply's framing as it goes."""

    HEAD, BODY, CHUNKED, TO_CLOSE, DONE = range(5)

    def __init__(self, method: str) -> None:
        self.method = method
        self.loop = asyncio.get_running_loop()
        self.started = self.loop.time()
        self.finished: asyncio.Future[str] = self.loop.create_future()
        self.transport: asyncio.Transport | None = None
        self.chunks: list[tuple[float, bytes]] = []
        self.raw = bytearray()
        self.pos = 0  # where the next unparsed byte of raw is
        self.state = self.HEAD
        self.heads: list[dict] = []
        self.left = 0
        self.chunked: ChunkedBody | None = None
        self.body_start: int | None = None
        self.closing = False  # the final reply asks for the connection to close
        self.ends_at_close = False  # a reply framed by the close: whole once the FIN comes
        self.headerless = False
        self.note: str | None = None
        self.truncated = False
        self.tls_error: str | None = None

    def ms(self) -> float:
        return round((self.loop.time() - self.started) * 1000, 1)

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)
        self.started = self.loop.time()  # times count from the request written

    def data_received(self, data: bytes) -> None:
        if self.finished.done():
            return
        room = MAX_CAPTURE - len(self.raw)
        if len(data) > room:
            data, self.truncated = data[:room], True
        self.chunks.append((self.ms(), data))
        self.raw += data
        self.advance()
        if self.truncated and not self.finished.done():
            self.finish("limit")

    def eof_received(self) -> bool:
        self.finish("fin")
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if isinstance(exc, ssl.SSLError):
            # A TLS alert after the handshake (TLS 1.3 sends a missing client
            # certificate's alert with the server's first read, RFC 8446 §4.4.2.4).
            self.tls_error = exc.reason or str(exc)
            self.finish("tls-alert")
        else:
            self.finish("reset" if isinstance(exc, ConnectionResetError) else "fin")

    def finish(self, how: str) -> None:
        if not self.finished.done():
            self.end_ms = self.ms()
            self.finished.set_result(how)

    # -- framing ----------------------------------------------------------------------

    def advance(self) -> None:
        while not self.finished.done():
            before = (self.state, self.pos)
            if self.state == self.HEAD:
                self.read_head()
            elif self.state == self.BODY:
                take = min(self.left, len(self.raw) - self.pos)
                self.pos += take
                self.left -= take
                if not self.left:
                    self.complete()
            elif self.state == self.CHUNKED:
                assert self.chunked is not None
                try:
                    self.pos += self.chunked.feed(bytes(self.raw[self.pos :]))
                except Refusal as exc:
                    self.note = f"bad chunked framing: {exc.text}"
                    self.state = self.TO_CLOSE
                if self.chunked.done:
                    self.complete()
            if (self.state, self.pos) == before:
                return

    def read_head(self) -> None:
        rest = self.raw[self.pos :]
        if len(rest) >= 5 and not rest.startswith(b"HTTP/") or len(rest) > MAX_HEAD_SCAN:
            # RFC 9112 §2.2 has no place for bytes before a status line: a header-less
            # reply (600) or a broken one is shown as bytes until the connection ends.
            self.headerless = not self.heads
            self.state = self.TO_CLOSE
            return
        if not b"HTTP/".startswith(bytes(rest[:5])):
            self.headerless, self.state = not self.heads, self.TO_CLOSE
            return
        end = rest.find(b"\r\n\r\n")
        if end < 0:
            return
        head = parse_head(bytes(rest[:end]))
        head["interim"] = False
        head["at_ms"] = self.chunks[-1][0]
        head["offset"] = self.pos
        head["size"] = end + 4
        self.pos += end + 4
        self.heads.append(head)
        status = head["status"]
        if status is None or head["malformed"]:
            self.note = "the head is malformed; read to the end of the connection"
            self.state = self.TO_CLOSE
            return
        if 100 <= status < 200 and status != 101:
            head["interim"] = True  # RFC 9110 §15.2: another head follows
            return
        head["interim"] = False
        self.body_start = self.pos
        connection = (_header(head, "connection") or "").lower()
        self.closing = "close" in connection or head["version"] == "HTTP/1.0" and "keep-alive" not in connection
        length = _header(head, "content-length")
        # RFC 9112 §6.3: the order a client frames a response body in.
        if status == 101:
            self.note = "switched protocols: what follows is no longer HTTP"
            self.state = self.DONE
            self.finish("open")
        elif self.method == "HEAD" or status in (204, 304):
            self.complete()
        elif "chunked" in (_header(head, "transfer-encoding") or "").lower():
            self.chunked = ChunkedBody(MAX_TRAILERS)
            self.state = self.CHUNKED
        elif length is not None and length.strip().isdigit():
            self.left = int(length)
            self.state = self.BODY
            if not self.left:
                self.complete()
        else:
            self.state = self.TO_CLOSE  # no length: the body runs to the close
            self.ends_at_close = True

    def complete(self) -> None:
        if self.closing:
            self.state = self.TO_CLOSE  # wait for the close the reply announced
            self.ends_at_close = True
        else:
            self.state = self.DONE
            self.finish("open")

    # -- the result ----------------------------------------------------------------------

    def as_json(self, how: str) -> dict:
        final = next((head for head in self.heads if not head["interim"]), None)
        body = b""
        if self.body_start is not None:
            body = bytes(self.raw[self.body_start :])
        complete = self.state == self.DONE or how == "fin" and self.ends_at_close
        return {
            "chunks": [{"at_ms": at, **data_json(data)} for at, data in self.chunks],
            "raw": data_json(bytes(self.raw)),
            "interim": [head for head in self.heads if head["interim"]],
            "final": final,
            "headerless": self.headerless,
            "body": data_json(body) if final is not None else None,
            "complete": complete,
            "end": {
                "how": how,
                "at_ms": getattr(self, "end_ms", self.ms()),
                "text": END_TEXT[how] + (f": {self.tls_error}" if self.tls_error else ""),
            },
            "truncated": self.truncated,
            "note": self.note,
        }


END_TEXT = {
    "open": "the reply was complete and the server kept the connection open",
    "fin": "the server closed the connection (FIN)",
    "reset": "the server reset the connection (RST)",
    "timeout": "still open at the time limit: the transcript stopped waiting",
    "limit": f"stopped after {MAX_CAPTURE} bytes: the rest was not captured",
    "tls-alert": "the server ended TLS with an alert",
}


async def record(
    address: tuple[str, int],
    data: bytes,
    method: str,
    timeout: float,
    tls: ssl.SSLContext | None = None,
    server_name: str = "localhost",
) -> dict:
    """Send ``data`` to ``address`` on a new connection and record the reply until it ends."""
    loop = asyncio.get_running_loop()
    handshake: dict | None = None
    started = loop.time()
    recorder: Recorder | None = None
    try:
        async with asyncio.timeout(timeout):
            transport, recorder = await loop.create_connection(
                lambda: Recorder(method), address[0], address[1], ssl=tls, server_hostname=server_name if tls else None
            )
    except TimeoutError:
        text = "the connection (or its TLS handshake) was not made within the time limit"
        return _failed("timeout", text, tls, loop.time() - started)
    except ssl.SSLError as exc:
        # A certificate problem names itself in verify_message ("certificate has expired").
        reason = getattr(exc, "verify_message", None) or exc.reason or str(exc)
        return _failed("handshake", f"TLS handshake failed: {reason}", tls, loop.time() - started)
    except (OSError, ssl.CertificateError) as exc:
        return _failed("connect", f"could not connect: {exc.strerror or exc}", tls, loop.time() - started)
    if tls is not None:
        info = transport.get_extra_info("ssl_object")
        handshake = {
            "ok": True,
            "ms": round((loop.time() - started) * 1000, 1),
            "version": info.version() if info else None,
            "cipher": info.cipher()[0] if info else None,
        }
    recorder.send(data)
    try:
        how = await asyncio.wait_for(asyncio.shield(recorder.finished), timeout)
    except TimeoutError:
        recorder.finish("timeout")
        how = "timeout"
    except BaseException:  # cancelled (a shutdown): leave nothing open
        transport.abort()
        raise
    if how == "open":
        transport.close()  # a FIN: the server sees a client that is done
    else:
        transport.abort()
    result = recorder.as_json(how)
    if handshake is not None:
        result["handshake"] = handshake
    return result


def _failed(how: str, text: str, tls, seconds: float) -> dict:
    result = {
        "chunks": [],
        "raw": data_json(b""),
        "interim": [],
        "final": None,
        "headerless": False,
        "body": None,
        "complete": False,
        "end": {"how": how, "at_ms": round(seconds * 1000, 1), "text": text},
        "truncated": False,
        "note": None,
    }
    if tls is not None:
        result["handshake"] = {"ok": False, "error": text}
    return result


async def transcript_for(ask: Ask, own: Own, serving, host_header: str | None) -> tuple[int, dict]:
    """The transcript of ``ask`` on this server, or an error status and text."""
    address = own.address()
    if address is None:
        return 503, {"error": "this server is not listening yet"}
    context = None
    if ask.scheme == "https":
        if serving.https_port is None:
            return 400, {"error": "scheme=https needs HTTPS on: start mockstatus with --https-port"}
        from .certs import client_context  # cryptography only when HTTPS is asked for

        address = (address[0], serving.https_port)
        context = client_context(serving.ca_pem)
    # The page's own Host for plain HTTP (the reply is then the one its fetch() got).
    host = host_for(host_header if ask.scheme == "http" else None, address)
    data = request_bytes(ask, host)
    # The lab's scenario by its SNI name; the leaf is checked against that name as a client would.
    server_name = f"{ask.tls}.{SCENARIO_DOMAIN}" if ask.tls else "localhost"
    result = await record(address, data, ask.method, ask.timeout, context, server_name)
    scheme = ask.scheme
    head = {
        "url": f"{scheme}://{host}{ask.path}",
        "tls": ask.tls,
        "method": ask.method,
        "timeout_ms": round(ask.timeout * 1000),
        "request": data_json(data),
    }
    return 200, {**head, **result}
