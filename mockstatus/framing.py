"""HTTP/1.1 request framing (RFC 9112), from raw bytes, with no I/O.

The connection layer (``protocol.py``) reads every byte a client sends
through this module before aiohttp sees it: a request head is checked
against the grammar and this server's limits, and its body is framed by
Content-Length or chunked coding.  A request that breaks a rule is refused
here with a ``Refusal`` that names the rule, so the answer is the same
whichever parser aiohttp was built with (llhttp or its pure-Python one), and
aiohttp only ever parses requests that are already known to be well formed.

The grammar lives in this one module, as h11 keeps its ABNF in one place.
"""

from __future__ import annotations

import dataclasses
import re

# RFC 9110 §5.6.2: token = 1*tchar.
TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
TOKEN = re.compile(rb"[" + TCHAR + rb"]+")
# The methods llhttp knows, so that both of aiohttp's parsers see the same set
# (the pure-Python one accepts any token).  Lowercase is a different method
# (RFC 9110 §9.1: method names are case-sensitive).
METHODS = (
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT",
    "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH",
    "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE", "M-SEARCH", "NOTIFY", "SUBSCRIBE",
    "UNSUBSCRIBE", "PURGE", "MKCALENDAR", "LINK", "UNLINK", "BIND", "REBIND",
    "UNBIND", "ACL", "SOURCE", "QUERY",
)  # fmt: skip
KNOWN_METHODS = frozenset(m.encode() for m in METHODS)
# The methods named in refusals (the ones mockstatus's routes are about).
COMMON_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE, PROPFIND, LOCK, UNLOCK, MKCOL, COPY, MOVE"
# RFC 9112 §3.2: origin-form or absolute-form; targets are visible ASCII (RFC 3986 has no
# space, control or non-ASCII byte: those arrive percent-encoded).
TARGET = re.compile(rb"[\x21-\x7e]+")
VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
# RFC 9110 §5.5: field-value = *( VCHAR / obs-text / SP / HTAB ), no CR, LF or NUL.
VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
# One field line: name ":" OWS value OWS (RFC 9112 §5); no space before the colon.
FIELD = re.compile(rb"([" + TCHAR + rb"]+):[ \t]*([\t\x20-\x7e\x80-\xff]*?)[ \t]*")
# Every field line of a head at once (each one FIELD), so a well-formed head is
# checked in one pass; a refused one is then diagnosed line by line.
FIELD_LINES = re.compile(rb"(?:\r\n[" + TCHAR + rb"]+:[\t\x20-\x7e\x80-\xff]*)*")
# The fields that frame a request or change the connection, found in one pass.
FRAMING_FIELDS = re.compile(
    rb"\r\n(content-length|transfer-encoding|connection|upgrade|host|expect)[ \t]*:[ \t]*([^\r]*?)[ \t]*(?=\r\n|\Z)",
    re.IGNORECASE,
)
# RFC 9112 §7.1: chunk-size = 1*HEXDIG, then extensions; no "0x", no sign.
TRAILING_OWS = re.compile(rb"[ \t]+\r\n")
CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]+)((?:[ \t]*;[^\r\n]*)?)")
HTTP2_PREFACE = b"PRI * HTTP/2.0"
MAX_CHUNK_LINE = 4096  # a chunk-size line with its extensions
MAX_CONTENT_LENGTH_DIGITS = 18  # below 2**63: every client and parser can hold it


@dataclasses.dataclass(frozen=True)
class Limits:
    """What this server reads of a head (from the settings)."""

    max_target: int = 8190
    max_field: int = 16384
    max_fields: int = 128

    @property
    def max_head(self) -> int:
        """Most bytes a head may take: every line at its limit, plus the blank line."""
        return self.max_target + 32 + self.max_fields * (self.max_field + 256) + 4


class Refusal(Exception):
    """A request this server will not read, as the status and text of the answer."""

    def __init__(self, status: int, reason: str, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.reason = reason
        self.text = text
        self.method = b""  # of the refused request, once its request line was read


def bad(text: str) -> Refusal:
    return Refusal(400, "Bad Request", text)


def _quote(data: bytes, limit: int = 60) -> str:
    shown = ascii(data[:limit].decode("latin-1"))
    return shown + ("..." if len(data) > limit else "")


@dataclasses.dataclass(slots=True)
class Head:
    """What the connection layer needs to know of one request head."""

    method: bytes
    target: bytes
    version: tuple[int, int]
    length: int = 0  # Content-Length, 0 when chunked or absent
    chunked: bool = False
    upgrade: bytes = b""  # the Upgrade field, when Connection lists "upgrade"
    close: bool = False  # no request may follow this one (HTTP/1.0 with Transfer-Encoding)
    expect: bool = False
    padded: bool = False  # a field value ends in whitespace


def check_start(data: bytes, limits: Limits) -> None:
    """Refuse at once what cannot become a request, before its head is complete.

    A TLS ClientHello or binary bytes on the plain port, an HTTP/0.9 request
    (its client sends one line and waits), the HTTP/2 preface, or a request
    line longer than any target allowed.
    """
    first = data[0]
    if first == 0x16 and len(data) > 1 and data[1] == 0x03:
        raise bad(
            "HTTPS traffic on an HTTP port: this is a TLS handshake (ClientHello) sent to "
            "mockstatus's plain-HTTP port; use http://, not https://"
        )
    if not TOKEN.match(data[:1]):
        raise bad(f"unknown method in {_quote(data, 16)}; allowed: {COMMON_METHODS}")
    end = data.find(b"\r\n")
    if end < 0:
        if len(data) > limits.max_target + 64:
            refusal = bad(
                f"request line is longer than {limits.max_target + 64} bytes: the target is longer than "
                f"{limits.max_target} bytes (a limit of this server: raise it with --max-request-line)"
            )
            # The method is in already: a HEAD request's refusal has no body (RFC 9110 §9.3.2).
            method, space, _ = data.partition(b" ")
            if space:
                refusal.method = method
            raise refusal
        return
    line = data[:end]
    if line.startswith(HTTP2_PREFACE):
        raise Refusal(
            505, "HTTP Version Not Supported",
            "an HTTP/2 connection preface (PRI * HTTP/2.0); mockstatus speaks HTTP/1.1 and "
            "HTTP/1.0, not HTTP/2 with prior knowledge",
        )  # fmt: skip
    parts = line.split(b" ")
    if len(parts) == 2 and parts[0] in KNOWN_METHODS and parts[1]:
        # RFC 1945 §4.1: an HTTP/0.9 Simple-Request is a method and a target, no version.
        raise Refusal(
            505, "HTTP Version Not Supported",
            f"an HTTP/0.9 request ({_quote(line)}); mockstatus speaks HTTP/1.1 and HTTP/1.0",
        )  # fmt: skip


def parse_request_line(line: bytes, limits: Limits) -> tuple[bytes, bytes, tuple[int, int]]:
    parts = line.split(b" ")
    if len(parts) != 3:
        check_start(line + b"\r\n", limits)  # HTTP/0.9, the HTTP/2 preface, TLS
        if b"\n" in line:
            raise bad(f"bare LF in the request line {_quote(line)}: lines end with CRLF (RFC 9112 §2.2)")
        if b"\r" in line:
            raise bad(f"bare CR in the request line {_quote(line)}: lines end with CRLF (RFC 9112 §2.2)")
        if parts[0] not in KNOWN_METHODS and TOKEN.fullmatch(parts[0]):
            raise bad(f"unknown method {parts[0].decode('latin-1')!r}; allowed: {COMMON_METHODS}")
        raise bad(f"bad request line {_quote(line)}; expected METHOD /target HTTP/1.1")
    method, target, version = parts
    if method not in KNOWN_METHODS:
        check_start(line + b"\r\n", limits)
        shown = method.decode("latin-1") if TOKEN.fullmatch(method) else method
        raise bad(f"unknown method {shown!r}; allowed: {COMMON_METHODS}")
    if len(target) > limits.max_target:
        raise bad(
            f"request target of {len(target)} bytes is longer than {limits.max_target} bytes "
            "(a limit of this server: raise it with --max-request-line)"
        )
    if not TARGET.fullmatch(target):
        raise bad(
            f"invalid character in the request target {_quote(target)}: only visible ASCII, percent-encode the rest"
        )
    matched = VERSION.fullmatch(version)
    if matched is None:
        raise bad(f"bad HTTP version {_quote(version)} in the request line; expected HTTP/1.1 or HTTP/1.0")
    numbers = (int(matched.group(1)), int(matched.group(2)))
    if numbers not in ((1, 1), (1, 0)):
        raise Refusal(
            505, "HTTP Version Not Supported",
            f"HTTP version {version.decode()!r}; mockstatus speaks HTTP/1.1 and HTTP/1.0",
        )  # fmt: skip
    return method, target, numbers


def _bad_field(line: bytes, limits: Limits) -> Refusal:
    """Why one field line is refused (the slow path: only for refusals)."""
    if line[:1] in (b" ", b"\t"):
        return bad(
            f"field line {_quote(line)} starts with whitespace: obsolete line folding "
            "(RFC 9112 §5.2) and space after the request line are refused"
        )
    if b"\n" in line or b"\r" in line:
        return bad(f"bare CR or LF in the field line {_quote(line)}: lines end with CRLF (RFC 9112 §2.2)")
    name, colon, value = line.partition(b":")
    if not colon or not TOKEN.fullmatch(name):
        return bad(
            f"invalid field name in {_quote(line)}: a name is a token followed directly by ':' "
            "(no space before the colon, RFC 9112 §5.1)"
        )
    if len(value.strip(b" \t")) > limits.max_field:
        return bad(
            f"field {name.decode()!r} has a value longer than {limits.max_field} bytes "
            "(a limit of this server: raise it with --max-header-size)"
        )
    return bad(f"invalid character in the value of field {name.decode()!r}: {_quote(value)} (no NUL, CR, LF or DEL)")


def parse_head(head: bytes, limits: Limits) -> Head:
    """Check one head (up to, not including, its blank line) and find its framing.

    ``head`` is the request line and the field lines joined by CRLF.
    """
    end = head.find(b"\r\n")
    line = head if end < 0 else head[:end]
    try:
        method, target, version = parse_request_line(line, limits)
        return _parse_fields(method, target, version, head[end:] if end >= 0 else b"", limits)
    except Refusal as refusal:
        refusal.method = line.split(b" ", 1)[0]  # a HEAD request's refusal has no body (RFC 9110 §9.3.2)
        raise


def _parse_fields(method: bytes, target: bytes, version: tuple[int, int], fields: bytes, limits: Limits) -> Head:
    count = fields.count(b"\r\n")
    if count > limits.max_fields:
        raise bad(
            f"{count} header fields: at most {limits.max_fields} header fields "
            "(a limit of this server: raise it with --max-headers)"
        )
    # One pass in C for the common case (a head shorter than one field's limit
    # cannot have a value over it); a refused head is diagnosed line by line.
    if len(fields) > limits.max_field or FIELD_LINES.fullmatch(fields) is None:
        for field in fields.split(b"\r\n")[1:]:
            matched = FIELD.fullmatch(field)
            if matched is None or len(matched.group(2)) > limits.max_field:
                raise _bad_field(field, limits)
    if not target.startswith(b"/") and not target.startswith((b"http://", b"https://")):
        # CONNECT host:port (authority-form) and OPTIONS * (asterisk-form) name no path.
        raise Refusal(
            404, "Not Found",
            f"request target {target.decode('latin-1')!r} is not a path; mockstatus serves paths "
            "such as /status/418 (it is not a proxy)",
        )  # fmt: skip
    parsed = Head(method, target, version)
    parsed.padded = b" \r\n" in fields or b"\t\r\n" in fields or fields.endswith((b" ", b"\t"))
    hosts = 0
    lengths: list[bytes] = []
    codings: list[bytes] = []
    connection = b""
    upgrade = b""
    for matched in FRAMING_FIELDS.finditer(fields):
        name = matched.group(1).lower()
        value = matched.group(2)
        if name == b"host":
            hosts += 1
        elif name == b"content-length":
            lengths.append(value)
        elif name == b"transfer-encoding":
            codings.append(value)
        elif name == b"connection":
            connection += b"," + value.lower()
        elif name == b"upgrade":
            upgrade = value
        elif name == b"expect":
            parsed.expect = True
    if version == (1, 1) and hosts != 1:
        # RFC 9112 §3.2: a 1.1 request without Host, or with more than one, is a 400.
        raise bad(
            "missing Host field: HTTP/1.1 requests carry exactly one"
            if not hosts
            else f"{hosts} Host fields: HTTP/1.1 requests carry exactly one"
        )
    if codings:
        if lengths:
            # RFC 9112 §6.3 and §11.2: two framings is how requests are smuggled; pick neither.
            raise bad("Content-Length and Transfer-Encoding together: a request has one framing (RFC 9112 §6.3)")
        if len(codings) > 1 or codings[0].lower() != b"chunked":
            shown = b", ".join(codings).decode("latin-1")
            raise bad(f"Transfer-Encoding {shown!r} is not supported: only 'chunked' (RFC 9112 §6.1)")
        parsed.chunked = True
        # RFC 9112 §6.1: HTTP/1.0 with Transfer-Encoding has faulty framing (a 1.0
        # proxy in front may read it differently): answer it, then read no more.
        parsed.close = version == (1, 0)
    elif lengths:
        if len(lengths) > 1:
            raise bad("Duplicate Content-Length fields: a request carries one")
        text = lengths[0]
        if not text.isdigit() or not text.isascii():
            raise bad(f"Invalid character in Content-Length {text.decode('latin-1')!r}: expected digits only")
        if len(text) > MAX_CONTENT_LENGTH_DIGITS:
            raise bad(f"Content-Length overflow: {text[:30].decode()} has more than {MAX_CONTENT_LENGTH_DIGITS} digits")
        parsed.length = int(text)
    if upgrade and b"upgrade" in connection.replace(b" ", b"").split(b","):
        parsed.upgrade = upgrade
    return parsed


class ChunkedBody:
    """Frames a chunked body (RFC 9112 §7.1) as it arrives, without buffering data.

    ``feed`` returns how many bytes of ``data`` belong to this body, or raises
    ``Refusal``; ``done`` is true once the last chunk and trailers are in.
    """

    __slots__ = ("state", "left", "line", "trailer_bytes", "max_trailers", "done")

    SIZE, DATA, DATA_END, TRAILERS = range(4)

    def __init__(self, max_trailers: int) -> None:
        self.state = self.SIZE
        self.left = 0
        self.line = b""  # a partial size or trailer line
        self.trailer_bytes = 0
        self.max_trailers = max_trailers
        self.done = False

    def feed(self, data: bytes) -> int:
        pos = 0
        size = len(data)
        while pos < size and not self.done:
            state = self.state
            if state == self.DATA:
                take = min(self.left, size - pos)
                pos += take
                self.left -= take
                if not self.left:
                    self.state = self.DATA_END
                continue
            if state == self.DATA_END:
                need = 2 - len(self.line)
                got = data[pos : pos + need]
                self.line += got
                pos += len(got)
                if not b"\r\n".startswith(self.line):
                    raise bad(
                        f"Expected CRLF after chunk data, got {_quote(self.line)}: the chunk is longer than its size"
                    )
                if self.line == b"\r\n":
                    self.line = b""
                    self.state = self.SIZE
                continue
            end = data.find(b"\n", pos)
            piece = data[pos:] if end < 0 else data[pos : end + 1]
            pos += len(piece)
            self.line += piece
            if end < 0:
                if len(self.line) > MAX_CHUNK_LINE and state == self.SIZE:
                    raise bad(f"chunk-size line longer than {MAX_CHUNK_LINE} bytes")
                self._count_trailers(len(piece))
                continue
            line, self.line = self.line, b""
            if not line.endswith(b"\r\n"):
                raise bad(
                    f"bare LF in chunked framing {_quote(line)}: expected CR after chunk size (lines end with CRLF)"
                )
            line = line[:-2]
            if state == self.SIZE:
                self._size(line)
            else:
                self._count_trailers(len(line) + 2)
                if not line:
                    self.done = True
                elif FIELD.fullmatch(line) is None:
                    raise _bad_field(line, Limits(max_field=self.max_trailers))
        return pos

    def _size(self, line: bytes) -> None:
        matched = CHUNK_SIZE.fullmatch(line)
        if matched is None:
            raise bad(f"Invalid character in chunk size {_quote(line)}: expected hex digits (RFC 9112 §7.1)")
        digits = matched.group(1).lstrip(b"0")
        if len(digits) > 15:
            raise bad(f"Chunk size overflow: {_quote(line, 30)}")
        self.left = int(digits or b"0", 16)
        self.state = self.DATA if self.left else self.TRAILERS

    def _count_trailers(self, added: int) -> None:
        if self.state == self.TRAILERS:
            self.trailer_bytes += added
            if self.trailer_bytes > self.max_trailers:
                raise bad(f"chunked trailers longer than {self.max_trailers} bytes (--max-header-size)")
