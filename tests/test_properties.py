"""Property tests (hypothesis): whatever a client sends to the per-request surface,
it gets the reply the README specifies or a 4xx that names the problem.

The surface: the ``/status/<codes>`` path (one code, weighted lists, anything
else), ``/sequence/<name>/<codes>``, every query option and every
``X-Mockstatus-*`` request header (including ``X-Mockstatus-Response-<Name>``),
with any method, ``Accept`` and ``Accept-Language``.  For each generated
request the expected outcome is worked out here from the README's rules (an
oracle written from the spec, not from the server's code) and compared with
what a raw socket receives (``wire.send``, the strict client).  Besides that:

* never a 500, and never a dropped connection: after a reply that keeps the
  connection, a second request on the same socket (``/__mockstatus/health``)
  must be answered, so a framing mistake or a dead connection shows;
* the faults and the kinds that close the connection (``?fault=``, 408, 444,
  600, 101) do exactly what they say instead;
* no ERROR record and no traceback in the server's log (the server runs in this
  process, so ``caplog`` sees aiohttp's, asyncio's and mockstatus's loggers).

Delays are generated at most 5 ms, so the whole file runs in seconds.
"""

from __future__ import annotations

import dataclasses
import email.utils
import functools
import html
import html.parser
import itertools
import json
import os
import re
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from wire import Reply, send

SETTINGS = settings(
    # MOCKSTATUS_EXAMPLES=5000 for a deeper run by hand; 150 keeps the file at a few seconds.
    max_examples=int(os.environ.get("MOCKSTATUS_EXAMPLES", "150")),
    deadline=None,
    # ``mockstatus`` is one server for the session; nothing per example depends on its reset.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- the spec (README: routes, per-request options), written out for the oracle ---------

CODE = re.compile(r"[1-9][0-9]{2}", re.ASCII)  # exactly three ASCII digits, 100-999
WEIGHT = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
REPEAT = re.compile(r"[0-9]{1,5}", re.ASCII)
SEQUENCE_NAME = re.compile(r"[A-Za-z0-9._~-]{1,128}", re.ASCII)
DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(ms|s|m|h)?", re.ASCII)
UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", re.ASCII)
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
NOT_UTF8 = re.compile("[\udc80-\udcff]")
FRAMING = {"content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer"}
FAULTS = ("reset", "empty", "garbage", "malformed", "truncate", "no-length")
OPTION_NAMES = (
    "delay", "body_delay", "drip", "chunks", "interval", "fault", "then",
    "location", "retry_after", "body", "header", "seed", "cycle",
)  # fmt: skip
MAX_DELAY = 300.0
MAX_CHOICES = 1000
MAX_STEPS = 10_000
MAX_BODY_OPTION = 64 * 1024
SMALL = 0.005  # the longest delay generated, in seconds
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND")


class Bad(Exception):
    """The request is invalid: a 4xx whose body contains one of ``fragments``."""

    def __init__(self, *fragments: str, status: int = 400) -> None:
        super().__init__(fragments)
        self.fragments = fragments
        self.status = status


def duration(text: str, what: str) -> float:
    match = DURATION.fullmatch(text.strip())
    if match is None:
        raise Bad(repr(text))
    return float(match.group(1)) * UNIT[match.group(2)]


def delay_seconds(text: str) -> float:
    stripped = text.strip()
    if "-" in stripped[1:]:
        low_text, _, high_text = stripped.partition("-")
        if not (low_text and high_text):
            raise Bad(repr(text))
        low, high = duration(low_text, "delay"), duration(high_text, "delay")
        if low > high:
            raise Bad(repr(text))
    else:
        high = duration(text, "delay")
    if high > MAX_DELAY:
        raise Bad(repr(text))
    return high


def location_ok(value: str, allowed: tuple[str, ...] = ()) -> bool:
    """README: a relative URL (/path) or an absolute http(s) URL; no controls, backslashes, tabs."""
    if not value or CONTROL.search(value) or NOT_UTF8.search(value) or "\\" in value or "\t" in value:
        return False
    if value.startswith("/") and not value.startswith("//"):
        return True
    match = re.match(r"(?i)(https?)://([^/?#]*)", value)
    if match is None:
        return False
    host = match.group(2).rpartition("@")[2]
    host = host[1:].partition("]")[0] if host.startswith("[") else host.partition(":")[0]
    if not host or ("[" in value.split("//", 1)[1].split("/", 1)[0] and "]" not in value):
        return False
    return not allowed or host.lower() in allowed


def retry_after_ok(value: str) -> bool:
    if re.fullmatch(r"[0-9]{1,9}", value, re.ASCII):
        return True
    try:
        return email.utils.parsedate_to_datetime(value) is not None and value.endswith("GMT")
    except (TypeError, ValueError, IndexError, OverflowError):
        return False


@dataclass
class Expected:
    """What a valid request asks for."""

    delay: float = 0.0
    fault: str | None = None
    then: int | None = None
    location: str | None = None
    retry_after: str | None = None
    body: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    seed: str | None = None


def check_header(name: str, value: str, origin: str) -> tuple[str, str]:
    if not TOKEN.fullmatch(name):
        raise Bad(repr(name))
    if name.lower() in FRAMING:
        raise Bad(repr(name))
    if CONTROL.search(value) or NOT_UTF8.search(value):
        raise Bad(repr(value))
    value = value.strip(" \t")
    if name.lower() == "location" and not location_ok(value):
        raise Bad(repr(value))
    if name.lower() == "refresh":
        url = refresh_target(value)
        if url is not None and not location_ok(url):
            raise Bad(repr(url))
    return name, value


def refresh_target(value: str) -> str | None:
    """Where a browser goes for a Refresh value (HTML standard: url= is optional)."""
    match = re.fullmatch(
        r"[ \t\n\f\r]*(?:[0-9]|(?=\.))[0-9.]*(?:([;, \t\n\f\r])[ \t\n\f\r]*[;,]?[ \t\n\f\r]*)?(.*)", value, re.S
    )
    if match is None or not match.group(2) or not match.group(1):
        return None
    rest = match.group(2)
    keyword = re.match(r"(?i)url[ \t\n\f\r]*=[ \t\n\f\r]*", rest)
    if keyword is None and rest[:1].lower() == "u":
        return rest.strip("".join(map(chr, range(33))))
    rest = rest[keyword.end() :] if keyword else rest
    if rest[:1] in ("'", '"'):
        rest = rest[1:].partition(rest[0])[0]
    return rest.strip("".join(map(chr, range(33))))


def apply(expected: Expected, name: str, value: str) -> None:
    if name == "delay":
        expected.delay = delay_seconds(value)
    elif name in ("body_delay", "drip"):
        if duration(value, name) > MAX_DELAY:
            raise Bad(repr(value))
    elif name == "interval":
        if duration(value, name) < 0.01:
            raise Bad(repr(value))
    elif name == "chunks":
        if not re.fullmatch(r"[0-9]{1,9}", value, re.ASCII) or not 1 <= int(value) <= 10_000:
            raise Bad(repr(value))
    elif name == "fault":
        if value not in FAULTS:
            raise Bad(repr(value))
        expected.fault = value
    elif name == "then":
        if not CODE.fullmatch(value) or int(value) < 200:
            raise Bad(repr(value))
        expected.then = int(value)
    elif name == "location":
        if not location_ok(value):
            raise Bad(repr(value))
        expected.location = value
    elif name == "retry_after":
        if not retry_after_ok(value):
            raise Bad(repr(value))
        expected.retry_after = value
    elif name == "body":
        if len(value) > MAX_BODY_OPTION:
            raise Bad("bad body")
        expected.body = value
    elif name == "header":
        header_name, sep, rest = value.partition(":")
        if not sep:
            raise Bad(repr(value))
        expected.headers.append(check_header(header_name.strip(), rest, "header"))
    elif name == "seed":
        if not re.fullmatch(r"-?[0-9]{1,18}", value, re.ASCII):
            raise Bad(repr(value))
        expected.seed = value
    elif name == "cycle":
        if value not in ("0", "1", "true", "false"):
            raise Bad(repr(value))


def header_option(key: str) -> str:
    return "X-Mockstatus-" + "-".join(part.capitalize() for part in key.split("_"))


HEADER_OPTIONS = tuple(name for name in OPTION_NAMES if name != "header")


def osa_distance(a: str, b: str) -> int:
    """Edit distance counting a swap of neighbours as one edit, by the textbook recursion."""

    @functools.cache
    def d(i: int, j: int) -> int:
        if i == 0 or j == 0:
            return i + j
        best = min(d(i - 1, j) + 1, d(i, j - 1) + 1, d(i - 1, j - 1) + (a[i - 1] != b[j - 1]))
        if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
            best = min(best, d(i - 2, j - 2) + 1)
        return best

    return d(len(a), len(b))


def near_option(name: str, options: tuple[str, ...]) -> str | None:
    """README's rule: case and -/_ folded away, then within 2 edits of a 6+ letter option, 1 of a shorter one."""

    def fold(text: str) -> str:
        return text.lower().replace("-", "").replace("_", "")

    given, best = fold(name), None
    if not given:
        return None
    for option in options:
        target = fold(option)
        limit = 2 if len(target) >= 6 else 1
        if abs(len(given) - len(target)) <= limit:
            distance = osa_distance(given, target)
            if distance <= limit and (best is None or distance < best[0]):
                best = (distance, option)
    return best and best[1]


def expected_options(query: list[tuple[str, str]], headers: list[tuple[str, bytes]]) -> Expected:
    """Query first (it wins), then the X-Mockstatus-* headers; the first problem is the answer."""
    expected = Expected()
    seen: set[str] = set()
    for name, value in query:
        if name not in OPTION_NAMES:
            if near_option(name, OPTION_NAMES):
                raise Bad(repr(name))
            continue  # a client's own parameter: ignored
        if name != "header" and name in seen:
            raise Bad(repr(name))
        seen.add(name)
        apply(expected, name, value)
    for key, raw in headers:
        # As the server's parser hands them over: not-UTF-8 bytes as surrogates, OWS stripped.
        value = raw.decode("utf-8", "surrogateescape").strip(" \t")
        lowered = key.lower()
        if lowered.startswith("x-mockstatus-response-"):
            expected.headers.append(check_header(key[len("x-mockstatus-response-") :], value, "response header"))
            continue
        if lowered.startswith("x-mockstatus-"):
            name = lowered[len("x-mockstatus-") :].replace("-", "_")
            if name == "header" or (name not in OPTION_NAMES and near_option(name, HEADER_OPTIONS)):
                raise Bad(repr(key))
            if name not in OPTION_NAMES:
                continue
            if name not in seen:
                apply(expected, name, value)
    return expected


def expected_choices(text: str) -> list[int]:
    items = text.split(",")
    if len(items) > MAX_CHOICES:
        raise Bad("too many codes")
    codes = []
    total = 0.0
    for item in items:
        if not item:
            raise Bad("empty item")
        code_text, sep, weight = item.partition(":")
        if not CODE.fullmatch(code_text):
            raise Bad(repr(code_text))
        if sep and (not WEIGHT.fullmatch(weight) or float(weight) <= 0 or float(weight) == float("inf")):
            raise Bad(repr(weight))
        total += float(weight) if sep else 1.0
        codes.append(int(code_text))
    if total == float("inf"):
        raise Bad(repr(text))
    return codes


def expected_sequence(name: str, text: str) -> list[int]:
    if not SEQUENCE_NAME.fullmatch(name):
        raise Bad(repr(name))
    codes: list[int] = []
    for item in text.split(","):
        if not item:
            raise Bad("empty item")
        code_text, sep, count_text = item.partition("*")
        if not CODE.fullmatch(code_text):
            raise Bad(repr(code_text))
        count = 1
        if sep:
            if not REPEAT.fullmatch(count_text) or int(count_text) < 1:
                raise Bad(repr(count_text))
            count = int(count_text)
        if len(codes) + count > MAX_STEPS:
            raise Bad("too long")
        codes.extend([int(code_text)] * count)
    return codes


# --- checking a reply against the spec -----------------------------------------------------

TEXT = "text/plain; charset=utf-8"
CONTENT_TYPES = {"text/plain; charset=utf-8", "application/json", "text/html; charset=utf-8"}


def check_reply(server, code: int, expected: Expected, method: str, reply: Reply) -> None:
    info = server.catalog.get(code)
    kind = expected.fault or info.kind
    if info.kind == "interim":
        assert reply.interim == [code], (code, reply.interim)
        code = expected.then or info.then or 200
        info = server.catalog.get(code)
        kind = expected.fault or info.kind
    else:
        assert reply.interim == []
    if kind in FAULTS:
        check_fault(info, kind, method, reply)
        return
    if kind == "headerless":
        body = expected.body if expected.body is not None else (info.body or f"{code} {info.reason}\n")
        assert reply.status is None and reply.raw == body.encode("utf-8", "surrogateescape")
        assert reply.end == "close"
        return
    if kind == "upgrade":
        # These requests name no protocol: the 101, and the close it announces.
        assert reply.status == 101 and reply.header("Connection") == "Upgrade, close", reply.raw[:300]
        return
    assert (reply.status, reply.reason) == (code, info.reason), reply.raw[:300]
    assert reply.header("Server").startswith("mockstatus/")
    if kind == "close":
        assert reply.header("Connection") == "close"
    # Headers: the catalog's, each name replaced by header= (in order), location=/retry_after=.
    wanted: dict[str, list[str]] = {}
    for name, value in info.headers:
        wanted.setdefault(name.lower(), []).append(value)
    if expected.location is not None:
        wanted["location"] = [expected.location]
    if expected.retry_after is not None:
        wanted["retry-after"] = [expected.retry_after]
    replaced: set[str] = set()
    for name, value in expected.headers:
        if name.lower() not in replaced:
            wanted[name.lower()] = []
            replaced.add(name.lower())
        wanted[name.lower()].append(value)
    for name, values in wanted.items():
        if name in ("content-type", "server", "vary", "access-control-allow-origin", "access-control-expose-headers"):
            continue  # the server's own; body= also sets Content-Type
        got = [v.encode("latin-1").decode("utf-8", "surrogateescape") for v in reply.header_all(name)]
        # Leading/trailing SP and HTAB are not part of a field value (RFC 9110 §5.5).
        assert got == [value.strip(" \t") for value in values], (name, got, values)
    if expected.delay > 0:
        assert (reply.header("Server-Timing") or "").startswith("delay;dur=")
    # The body.
    has_body = code not in (204, 304, 205) and code >= 200
    if method == "HEAD" or not has_body:
        assert reply.body == b""
        if code in (204, 304):
            assert reply.header("Content-Length") is None
        return
    if expected.body is not None:
        assert reply.body == expected.body.encode("utf-8", "surrogateescape")
        assert reply.header("Content-Type") == TEXT
        return
    content_type = reply.header("Content-Type")
    if any(name.lower() == "content-type" for name, _ in expected.headers):
        return  # the caller chose the label; the body is still the negotiated one
    assert content_type in CONTENT_TYPES, content_type
    if content_type == "application/json":
        assert json.loads(reply.body)["code"] == code
    elif content_type.startswith("text/html"):
        assert f"<h1>{code} ".encode() in reply.body
    else:
        assert reply.body.decode() == (info.body if info.body is not None else f"{code} {info.reason}\n")


INTERIM_HEAD = re.compile(rb"HTTP/1\.1 1[0-9][0-9] [^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n")


def check_fault(info, fault: str, method: str, reply: Reply) -> None:
    """README (faults): each breaks the exchange in its own way (after any interim 1xx)."""
    raw = reply.raw
    while (interim := INTERIM_HEAD.match(raw)) is not None:
        raw = raw[interim.end() :]
    reply = dataclasses.replace(reply, raw=raw)
    if fault == "reset":
        assert reply.raw == b"" and reply.end == "reset"
    elif fault == "empty":
        assert reply.raw == b"" and reply.end == "close"
    elif fault == "garbage":
        assert len(reply.raw) == 64 and all(byte >= 0x80 for byte in reply.raw) and reply.end == "close"
    elif fault == "malformed":
        assert reply.raw.startswith(f"HTTP/1.1 {info.code} ".encode()) and b"this line is not a header" in reply.raw
        assert reply.end == "close"
    elif fault == "truncate":
        assert reply.status == info.code and reply.end == "close"
        if method == "HEAD" or info.code in (204, 304):
            assert reply.raw.endswith(b"\r\n\r\n")  # the head only: no body to cut
        elif int(reply.header("Content-Length")) > 0:
            assert len(reply.body) < int(reply.header("Content-Length"))
    elif fault == "no-length":
        assert reply.status == info.code and reply.header("Content-Length") is None
        assert reply.header("Connection") == "close" and reply.end == "close"


def check_bad(reply: Reply, bad: Bad, method: str = "GET") -> None:
    assert reply.status == bad.status, (bad.fragments, reply.raw[:400])
    if method == "HEAD":
        assert reply.body == b"" and int(reply.header("Content-Length")) > 0  # GET's length, no body
        return
    text = reply.body.decode("utf-8", "replace")
    content_type = reply.header("Content-Type") or ""
    if content_type == "application/json":
        text = json.loads(text)["error"]
    elif content_type.startswith("text/html"):
        text = html.unescape(text)
    assert any(fragment in text for fragment in bad.fragments), (bad.fragments, text)


# --- the server log ------------------------------------------------------------------------


pytestmark = pytest.mark.usefixtures("no_server_errors")


# --- strategies ----------------------------------------------------------------------------

# Text a path segment or a query value may hold (percent-encoded on the wire): no
# surrogates (not encodable), no "/" in a path segment.
CHARS = st.characters(blacklist_categories=("Cs",))
codes = st.integers(100, 999)
plain_codes = codes.map(str)
code_texts = st.one_of(
    plain_codes,
    st.sampled_from(["2_00", "+200", " 200", "٢٠٠", "99", "1000", "099", "200.0", "20", "", "abc"]),
    st.text(CHARS, max_size=6),
)
weights = st.one_of(
    st.sampled_from(["1", "2", "0.5", ".5", "3.", "0", "0.0", "-1", "1e3", "inf", "nan", "", "1:2", " 1"]),
    # Near and above the float maximum: one is infinite, two add up to infinity.
    st.sampled_from(["1" + "0" * 308, "9" * 400, "17" + "0" * 307]),
    st.integers(1, 99).map(str),
)
list_items = st.one_of(
    codes.map(str),
    st.tuples(codes, weights).map(lambda t: f"{t[0]}:{t[1]}"),
    st.tuples(code_texts, weights).map(lambda t: f"{t[0]}:{t[1]}"),
    code_texts,
)
weighted = st.lists(list_items, min_size=1, max_size=5).map(",".join)
good_weights = st.one_of(st.integers(1, 20).map(str), st.sampled_from(["0.5", ".25", "3.", "1.0"]))
valid_weighted = st.lists(
    st.one_of(codes.map(str), st.tuples(codes, good_weights).map(lambda t: f"{t[0]}:{t[1]}")), min_size=2, max_size=5
).map(",".join)
segments = st.one_of(
    plain_codes, valid_weighted, weighted, st.text(CHARS.filter(lambda c: c not in "/?#"), max_size=12)
)

small_durations = st.one_of(
    st.sampled_from(["0", "0s", "0ms", "1ms", "2ms", "0.001", ".002", "0.003s", "1ms-3ms", "0-2ms", "5ms"]),
    st.integers(0, 5).map(lambda n: f"{n}ms"),
)
bad_durations = st.one_of(
    st.sampled_from(["-1", "-1ms", "1x", "inf", "nan", "1_0", "１", "3ms-1ms", "1ms-", "-", "400s", "6m", "1h", ""]),
    st.text(CHARS, max_size=8),
)
good_http_dates = st.datetimes().map(
    lambda d: email.utils.format_datetime(d.replace(tzinfo=None), usegmt=False)[:-5] + "GMT"
)
http_dates = st.one_of(
    good_http_dates,
    # A year or hour too large for a C long.
    st.integers(10**18, 10**40).map(lambda n: f"Wed, 21 Oct {n} 07:28:00 GMT"),
    st.integers(10**18, 10**40).map(lambda n: f"Wed, 21 Oct 2026 {n}:28:00 GMT"),
)
header_names = st.one_of(
    st.sampled_from(["X-A", "X-Test", "Location", "Retry-After", "Link", "Set-Cookie", "Content-Type", "Refresh",
                     "Content-Length", "connection", "TE", "Trailer", "Bad Name", "", "X-A\r\nX-B", "Ünicode"]),
    st.from_regex(TOKEN, fullmatch=True).filter(lambda s: len(s) < 20),
)  # fmt: skip
header_values = st.one_of(
    st.sampled_from(["1", "a b", " padded ", "/status/200", "javascript:alert(1)", "//evil.test", "0; url=/x",
                     "5; url=javascript:alert(1)", "café", "a\r\nb", "\x01", "<script>alert(1)</script>",
                     "0;https://evil.test/", "0; //evil.test/", "0,'https://evil.test/'", ".5 http://e.test",
                     "0; URL = \"/x\" y", "0;urlx", "0x http://e.test", "5"]),
    st.text(CHARS, max_size=10),
)  # fmt: skip
locations = st.one_of(
    st.sampled_from([
        "/", "/status/200", "/a?b=c#d", "http://example.test/x", "HTTPS://example.test", "https://u:p@example.test:8443/",
        "http://[::1]:8080/", "javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x", "//evil.test",
        "/\\evil.test", "\\\\evil.test", "/\t/evil.test", "http://evil.test\\@good.test", "ftp://x.test", "http:evil.test",
        "http:///x", "http://[::1", "", " /x", "/x\r\nSet-Cookie: a=b", "mailto:a@b.test", "/é",
    ]),
    st.text(CHARS, max_size=12),
    st.text(CHARS, max_size=12).map(lambda s: "/" + s),
)  # fmt: skip


def option_values(name: str):
    if name in ("delay", "body_delay", "drip"):
        return st.one_of(small_durations, bad_durations)
    if name == "interval":
        return st.one_of(st.sampled_from(["10ms", "0.5", "1s", "5ms", "0", "x"]), bad_durations)
    if name == "chunks":
        return st.one_of(st.integers(0, 10_001).map(str), st.sampled_from(["", "a", "-1", "1.0", "0x10"]))
    if name == "fault":
        return st.one_of(st.sampled_from(FAULTS), st.text(CHARS, max_size=8))
    if name == "then":
        return code_texts
    if name == "location":
        return locations
    if name == "retry_after":
        return st.one_of(st.integers(0, 10**10).map(str), http_dates, st.text(CHARS, max_size=10))
    if name == "body":
        return st.one_of(st.text(CHARS, max_size=40), st.sampled_from(["", "<b>x</b>", "x" * (MAX_BODY_OPTION + 1)]))
    if name == "header":
        return st.one_of(st.tuples(header_names, header_values).map(":".join), st.text(CHARS, max_size=10))
    if name == "seed":
        return st.one_of(st.integers(-(10**18) + 1, 10**18 - 1).map(str), st.text(CHARS, max_size=6))
    return st.one_of(st.sampled_from(["0", "1", "true", "false", "yes", "TRUE", ""]), st.text(CHARS, max_size=4))


def valid_values(name: str):
    """Values the README allows (the mix above is mostly not)."""
    if name in ("delay", "body_delay", "drip"):
        return small_durations
    if name == "interval":
        return st.sampled_from(["10ms", "0.5", "1s", "20ms"])
    if name == "chunks":
        return st.integers(1, 10_000).map(str)
    if name == "fault":
        return st.sampled_from(FAULTS)
    if name == "then":
        return st.integers(200, 999).map(str)
    if name == "location":
        return st.one_of(
            st.sampled_from(["/", "/status/200", "/a?b=c#d", "http://example.test/x", "HTTPS://example.test:8443/p"]),
            st.text(CHARS.filter(lambda c: not CONTROL.match(c) and c not in "\\\t"), max_size=10).map(
                lambda t: "/x" + t
            ),
        )
    if name == "retry_after":
        return st.one_of(st.integers(0, 999_999_999).map(str), good_http_dates)
    if name == "body":
        return st.text(CHARS, max_size=40)
    if name == "header":
        names = st.from_regex(TOKEN, fullmatch=True).filter(
            lambda n: n.lower() not in FRAMING | {"location", "refresh"}
        )
        values = st.text(CHARS.filter(lambda c: not CONTROL.match(c)), max_size=10)
        return st.tuples(names, values).map(":".join)
    if name == "seed":
        return st.integers(-(10**17), 10**17).map(str)
    return st.sampled_from(["0", "1", "true", "false"])


any_pairs = st.sampled_from(OPTION_NAMES + ("bogus", "Delay")).flatmap(
    lambda name: st.tuples(st.just(name), option_values(name) if name in OPTION_NAMES else st.text(CHARS, max_size=4))
)
valid_pairs = st.sampled_from(OPTION_NAMES).flatmap(lambda name: st.tuples(st.just(name), valid_values(name)))
# Half the time every option is valid (each name once, header= may repeat), so the
# replies they shape are checked as often as the 400s.
query_lists = st.one_of(
    st.lists(valid_pairs, max_size=4, unique_by=lambda pair: pair[0] if pair[0] != "header" else pair[1]),
    st.lists(st.one_of(valid_pairs, any_pairs), max_size=4),
)


def wire_value(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


# Header values: what may travel in a header field (no CR, LF, NUL or other controls;
# obs-text bytes 0x80-0xff, UTF-8 or not, are allowed).
header_safe = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10).map(str.encode)
obs_text = st.binary(max_size=4).map(lambda b: bytes(byte | 0x80 for byte in b))
header_pairs = st.one_of(
    st.sampled_from(OPTION_NAMES).flatmap(
        lambda name: st.tuples(
            st.just(header_option(name)),
            st.one_of(option_values(name).filter(lambda v: not CONTROL.search(v) and "\t" not in v).map(wire_value),
                      header_safe, obs_text),
        )
    ),
    st.tuples(header_names.filter(lambda n: TOKEN.fullmatch(n) is not None).map(lambda n: "X-Mockstatus-Response-" + n),
              st.one_of(header_values.filter(lambda v: not CONTROL.search(v)).map(wire_value), obs_text)),
    st.tuples(st.sampled_from(["X-Mockstatus-Bogus", "X-Mockstatus-Header", "X-Mockstatus-"]), header_safe),
)  # fmt: skip
accepts = st.one_of(
    st.none(),
    st.sampled_from(["application/json", "text/html", "*/*", "application/problem+json", "TEXT/HTML", "text/html;q=0",
                     "image/png", "application/json;q=0.1, text/html", "x" * 40]),
    header_safe.map(bytes.decode),
)  # fmt: skip
languages = st.one_of(
    st.none(),
    st.sampled_from(["zh", "zh-CN", "en", "en;q=0.5, zh;q=0.9", "zh;q=x", "fr", "*", "zh;q=0"]),
    header_safe.map(bytes.decode),
)


def negotiation_headers(accept, language) -> list[tuple[str, bytes]]:
    headers = []
    if accept is not None:
        headers.append(("Accept", accept.strip().encode()))
    if language is not None:
        headers.append(("Accept-Language", language.strip().encode()))
    return headers


def delays_small(expected: Expected, query, headers) -> bool:
    """Only tiny delays run: a generated value that is valid and long is thrown away."""
    for name, value in [*query, *((k, v.decode("utf-8", "surrogateescape")) for k, v in headers)]:
        key = name.lower().removeprefix("x-mockstatus-").replace("-", "_")
        if key in ("delay", "body_delay", "drip"):
            try:
                seconds = delay_seconds(value) if key == "delay" else duration(value, key)
            except Bad:
                continue
            if seconds > SMALL:
                return False
    return True


# --- the properties ------------------------------------------------------------------------


@SETTINGS
@given(segment=segments, method=st.sampled_from(METHODS), accept=accepts, language=languages)
def test_any_status_path_gets_its_reply_or_a_400_naming_it(mockstatus, segment, method, accept, language):
    assume(segment not in (".", ".."))  # dot segments are resolved away by the URL parser
    headers = negotiation_headers(accept, language)
    if method == "OPTIONS":
        headers.append(("Origin", b"http://page.test"))  # CORS, not a preflight (no Request-Method)
    reply = send(mockstatus, method, "/status/" + quote(segment, safe=",:"), headers)
    # The path is decoded before routing, so a %2F ends the codes like a "/":
    # what follows is a tail, answered as without it.
    segment = segment.partition("/")[0]
    try:
        if CODE.fullmatch(segment):
            choices = [int(segment)]
        elif "," in segment or ":" in segment:
            choices = expected_choices(segment)
        else:
            raise Bad(repr(segment))
    except Bad as bad:
        event("a 400 naming the bad code")
        return check_bad(reply, bad, method)
    event("one code" if len(choices) == 1 else "a weighted list")
    chosen = reply.header("X-Mockstatus-Choice")
    if chosen is not None:
        assert int(chosen) in choices
        return check_reply(mockstatus, int(chosen), Expected(), method, reply)
    # No header: one code, or a pick whose reply carries none (a fault, 444, 600, 101):
    # the reply must be what one of the codes in the list gives.
    problems = []
    for code in dict.fromkeys(choices):
        try:
            return check_reply(mockstatus, code, Expected(), method, reply)
        except AssertionError as exc:
            problems.append(f"{code}: {exc}")
    raise AssertionError(problems)


sequence_names = st.one_of(
    st.from_regex(r"[A-Za-z0-9._~-]{1,12}", fullmatch=True),
    st.text(CHARS.filter(lambda c: c not in "/?#"), min_size=1, max_size=12),
    st.sampled_from(["a" * 129, "pay ment", "名字", "a%b"]),
)
sequence_items = st.one_of(
    codes.map(str),
    st.tuples(codes, st.integers(1, 3)).map(lambda t: f"{t[0]}*{t[1]}"),
    st.tuples(code_texts, st.sampled_from(["0", "-1", "", "x", "1.5", "100000", "2"])).map(lambda t: f"{t[0]}*{t[1]}"),
    code_texts,
)
sequence_specs = st.lists(sequence_items, min_size=1, max_size=4).map(",".join)
_names = itertools.count()


@SETTINGS
@given(name=sequence_names, spec=sequence_specs, method=st.sampled_from(("GET", "HEAD", "POST")))
def test_any_sequence_steps_through_its_codes_or_gets_a_400_naming_it(mockstatus, name, spec, method):
    assume(name not in (".", "..") and spec not in (".", ".."))
    if SEQUENCE_NAME.fullmatch(name):
        name = f"{name[:100]}-{next(_names)}"  # a fresh name: a reused one with other codes is a 409
    target = f"/sequence/{quote(name, safe='')}/{quote(spec, safe=',*')}"
    # As for /status: a %2F ends the codes like a "/"; what follows is a tail.
    spec = spec.partition("/")[0]
    try:
        steps = expected_sequence(name, spec)
    except Bad as bad:
        event("a 400 naming the bad name or step")
        return check_bad(send(mockstatus, method, target), bad, method)
    assume(len(steps) <= 12)
    event("a valid sequence")
    for call in range(min(len(steps) + 1, 6)):
        step = min(call, len(steps) - 1)
        reply = send(mockstatus, method, target)
        code = steps[step]
        info = mockstatus.catalog.get(code)
        if info.kind in ("normal", "close"):
            assert reply.header("X-Mockstatus-Step") == str(step + 1)
            assert reply.header("X-Mockstatus-Sequence") == name
        check_reply(mockstatus, code, Expected(), method, reply)


plain = [c for c in range(100, 1000) if c != 101]


@SETTINGS
@given(
    code=st.sampled_from(plain),
    query=query_lists,
    headers=st.lists(header_pairs, max_size=3),
    method=st.sampled_from(METHODS),
    accept=accepts,
)
def test_any_options_get_their_reply_or_a_400_naming_the_bad_one(mockstatus, code, query, headers, method, accept):
    target = f"/status/{code}"
    if query:
        target += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    try:
        # The parser's limits come first (--max-request-line, --max-header-size): a 400 naming them.
        if len(target) > 8190:
            raise Bad("8190")
        if any(len(value) > 16384 for name, value in headers):  # aiohttp counts a later field's value
            raise Bad("16384")
        expected = expected_options(query, headers)
    except Bad as bad:
        event("a 400 naming the bad option")
        reply = send(mockstatus, method, target, headers + negotiation_headers(accept, None))
        return check_bad(reply, bad, method)
    assume(delays_small(expected, query, headers))
    event(f"valid, kind {expected.fault or mockstatus.catalog.get(code).kind}")
    reply = send(
        mockstatus, method, target, headers + negotiation_headers(accept, None), fault=expected.fault is not None
    )
    check_reply(mockstatus, code, expected, method, reply)


@SETTINGS
@given(code=st.sampled_from([c for c in plain if c >= 200]), fault=st.sampled_from(FAULTS),
       method=st.sampled_from(METHODS), how=st.sampled_from(["query", "header"]))  # fmt: skip
def test_every_fault_breaks_the_exchange_the_way_it_says(mockstatus, code, fault, method, how):
    if how == "query":
        reply = send(mockstatus, method, f"/status/{code}?fault={fault}", fault=True)
    else:
        reply = send(mockstatus, method, f"/status/{code}", [("X-Mockstatus-Fault", fault.encode())], fault=True)
    check_fault(mockstatus.catalog.get(code), fault, method, reply)
    # ... and the server carries on.
    assert send(mockstatus, "GET", "/status/200").status == 200


@SETTINGS
@given(body=st.binary(max_size=2048), method=st.sampled_from(("POST", "PUT", "PATCH", "DELETE")),
       code=st.sampled_from([c for c in plain if c >= 200 and c not in (408, 444, 600)]))  # fmt: skip
def test_any_request_body_is_read_and_the_reply_is_unchanged(mockstatus, body, method, code):
    check_reply(mockstatus, code, Expected(), method, send(mockstatus, method, f"/status/{code}", body=body))


class Tags(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.text = ""

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)

    def handle_data(self, data):
        self.text += data


PAGE_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "p", "a"}


@SETTINGS
@given(value=st.text(CHARS, min_size=1, max_size=30).map(lambda s: "<" + s),
       where=st.sampled_from(["code", "option", "header", "unknown", "path", "sequence"]))  # fmt: skip
def test_request_values_in_html_error_pages_are_escaped(mockstatus, value, where):
    """An HTML 4xx names the bad value, escaped: markup sent in a request never becomes markup."""
    accept = [("Accept", b"text/html")]
    if where == "code":
        reply = send(mockstatus, "GET", "/status/" + quote(value, safe=""), accept)
    elif where == "option":
        reply = send(mockstatus, "GET", "/status/200?retry_after=" + quote(value, safe=""), accept)
    elif where == "header":
        reply = send(mockstatus, "GET", "/status/200", [*accept, ("X-Mockstatus-Delay", value.encode())])
        assume(reply.status != 400 or b"Invalid header value" not in reply.body)  # the parser's own 400
    elif where == "unknown":  # a misspelt option, its misspelling the "<": a 400 naming it
        reply = send(mockstatus, "GET", "/status/200?" + quote("retry_afte" + value[0], safe="") + "=1", accept)
    elif where == "path":
        reply = send(mockstatus, "GET", "/nowhere/" + quote(value, safe=""), accept)
    else:
        reply = send(mockstatus, "GET", f"/sequence/{quote(value, safe='')}/200", accept)
    assert reply.status in (400, 404), reply.raw[:300]
    if reply.header("Content-Type") != "text/html; charset=utf-8":
        assert reply.header("Content-Type").startswith("text/plain")  # the parser's own 400s
        return
    page = Tags()
    page.feed(reply.body.decode())
    assert page.tags <= PAGE_TAGS, page.tags
    assert "<" in page.text  # the value is there, as text
