"""Per-request options: parse the query string and ``X-Mockstatus-*`` headers.

Each option is a query parameter and, for clients that cannot change the URL,
a request header ``X-Mockstatus-<Option>`` (``retry_after`` ->
``X-Mockstatus-Retry-After``).  The query wins over the header.  Response
headers can also be given as ``X-Mockstatus-Response-<Name>: value``.

Parsers raise ``BadRequest`` whose message names the bad value and the form
allowed; the handler answers it with a 400.  ``Asked`` is the whole request as
the layers below the handlers see it: its code, options and negotiated format.
"""

from __future__ import annotations

import dataclasses
import email.utils
import functools
import random
import re
from typing import NamedTuple
from urllib.parse import urlsplit

from .catalog import CODE_FORM, CODE_PATTERN, FAULT_FORMS, FRAMING_HEADERS, ILLEGAL_VALUE, TOKEN, parse_fault
from .durations import DURATION_FORM, DelaySpec, format_seconds, parse_delay, parse_duration
from .settings import Settings
from .store import NAMESPACE, NAMESPACE_FORM

HEADER_PREFIX = "x-mockstatus-"
RESPONSE_HEADER_PREFIX = "x-mockstatus-response-"
MAX_CHUNKS = 10_000
MIN_INTERVAL = 0.01
MAX_BODY_OPTION = 64 * 1024
MAX_LIMIT = 1_000_000_000
# A sliding log keeps one time per request let through: its limit bounds its memory.
MAX_SLIDING_LIMIT = 10_000
MIN_WINDOW = 0.001  # below a millisecond a window cannot be told from none
MAX_WINDOW = 86_400.0  # a day: limits, windows and outages
LIMIT_FORM = "N/WINDOW such as 5/1s, 100/1m or 1000/1h (N at least 1, WINDOW from 1ms to 1 day)"

QUERY_NAMES = (
    "delay", "body_delay", "drip", "chunks", "interval", "fault", "then",
    "location", "retry_after", "body", "header", "seed", "cycle",
    "limit", "limit_mode", "bucket", "outage", "until",
)  # fmt: skip


class BadRequest(Exception):
    """A request the server cannot honour; the message goes into a 4xx body."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclasses.dataclass(slots=True)
class Options:
    delay: DelaySpec | None = None
    body_delay: float | None = None
    drip: float | None = None
    chunks: int | None = None
    interval: float | None = None
    fault: str | None = None
    then: int | None = None
    location: str | None = None
    retry_after: str | None = None
    body: str | None = None
    # A tuple: most requests add no header, and an empty tuple is shared.
    headers: tuple[tuple[str, str], ...] = ()
    seed: str | None = None
    cycle: bool = False
    fault_rate: float | None = None  # fault=reset:0.1: the share of requests faulted
    limit: tuple[int, float] | None = None  # (requests, window seconds)
    limit_text: str | None = None  # as asked, for messages and the bucket's spec
    limit_mode: str = "fixed"
    bucket: str | None = None
    outage: float | None = None
    until: float | None = None
    rng: random.Random | None = None

    def random(self) -> random.Random:
        """A seeded generator when ``?seed=`` was given, so picks repeat."""
        if self.rng is None:
            # Unseeded picks share one generator: a Random() per request costs a
            # urandom read and its state's memory (benchmarks/throughput.py).
            self.rng = random.Random(self.seed) if self.seed is not None else _SHARED_RANDOM
        return self.rng


_SHARED_RANDOM = random.Random()
NO_OPTIONS = Options()


class Asked(NamedTuple):
    """What one request asks for, read once from the aiohttp request (``handlers.ask``).

    This, not the aiohttp request, is what delivery, the kinds' writers, the
    bodies, errors and CORS work from; the request itself goes along only to
    reach its connection and the journal.
    """

    code: int
    options: Options
    fmt: str  # the body format: text, json or html (Accept)
    lang: str  # en or zh (Accept-Language)
    origin: str | None  # the Origin header: a cross-origin caller gets CORS headers
    arrived: float | None  # time.monotonic() when its head was complete; None: count delays from now
    method: str
    version: tuple[int, int]


_SEED = re.compile(r"-?[0-9]{1,18}", re.ASCII)
# Request header bytes that are not UTF-8 reach us as surrogates (aiohttp decodes
# with surrogateescape); aiohttp would silently drop them from a response header.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
_DIGITS = re.compile(r"[0-9]{1,9}", re.ASCII)
_RATE = re.compile(r"(?:0|1)(?:\.[0-9]{1,9})?|\.[0-9]{1,9}", re.ASCII)
_UNIX_TIME = re.compile(r"[0-9]{1,11}(?:\.[0-9]{1,6})?", re.ASCII)
BUCKET_NAME = re.compile(r"[A-Za-z0-9._~-]{1,128}", re.ASCII)


def header_name(option: str) -> str:
    return "X-Mockstatus-" + "-".join(part.capitalize() for part in option.split("_"))


def _check_location(value: str, settings: Settings) -> str:
    if ILLEGAL_VALUE.search(value) or _NOT_UTF8.search(value) or not value:
        raise BadRequest(f"bad location {value!r}: expected a relative URL (/path) or an absolute http(s) URL")
    if "\\" in value or "\t" in value:
        # Browsers read a backslash as a slash and drop tabs (WHATWG URL), so
        # "/\\evil.test" or "/\t/evil.test" would leave for evil.test.
        raise BadRequest(
            f"bad location {value!r}: backslashes and tabs are not allowed (a browser reads /\\host as //host)"
        )
    if value.startswith("/") and not value.startswith("//"):
        return value
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError:  # "http://[::1": an unclosed IPv6 literal
        hostname = None
    # Only http(s): a 'javascript:' or 'data:' Location is an open door in a browser.
    if not hostname or parts.scheme.lower() not in ("http", "https"):
        raise BadRequest(f"bad location {value!r}: expected a relative URL (/path) or an absolute http(s) URL")
    allowed = settings.allowed_redirect_hosts
    if allowed and hostname.lower() not in allowed:
        raise BadRequest(
            f"bad location {value!r}: host {hostname!r} is not allowed; allowed hosts: {', '.join(allowed)}"
        )
    return value


def _check_retry_after(value: str) -> str:
    # RFC 9110 §10.2.3: Retry-After = HTTP-date / delay-seconds
    if _DIGITS.fullmatch(value):
        return value
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        # OverflowError: a year or hour too large for a C long (datetime's fields).
        parsed = None
    if parsed is None or not value.endswith("GMT"):
        raise BadRequest(
            f"bad retry_after {value!r}: expected whole seconds (120) or an HTTP-date (Wed, 21 Oct 2026 07:28:00 GMT)"
        )
    return value


def check_header(name: str, value: str, origin: str) -> tuple[str, str]:
    if not TOKEN.fullmatch(name):
        raise BadRequest(f"bad {origin} {name!r}: a header name must be an RFC 9110 token")
    if name.lower() in FRAMING_HEADERS:
        raise BadRequest(f"bad {origin} {name!r}: {', '.join(sorted(FRAMING_HEADERS))} are set by the server")
    if ILLEGAL_VALUE.search(value):
        raise BadRequest(f"bad {origin} value {value!r}: CR, LF and control characters are not allowed")
    if _NOT_UTF8.search(value):
        raise BadRequest(f"bad {origin} value {value!r}: not UTF-8; response headers are sent as UTF-8 text")
    return name, value.strip(" \t")  # OWS (RFC 9110 §5.6.3); str.strip() would also eat U+00A0, U+0085


def _header_option(value: str) -> tuple[str, str]:
    name, sep, rest = value.partition(":")
    if not sep:
        raise BadRequest(f"bad header {value!r}: expected Name:Value")
    return check_header(name.strip(), rest, "header")


_ASCII_WS = " \t\n\f\r"
_C0_SPACE = "".join(map(chr, range(0x21)))  # what the URL parser strips from both ends


def refresh_url(value: str) -> str | None:
    """The URL a browser goes to for ``Refresh: value``, or None if it stays.

    The HTML standard's "shared declarative refresh steps": a delay of digits
    and dots, then ``;``, ``,`` or whitespace, then an optional ``url`` and
    ``=``, then an optional quote; ``url=`` is not required, so
    ``0; https://host/`` leaves too.
    """
    pos, end = 0, len(value)

    def skip_ws(at: int) -> int:
        while at < end and value[at] in _ASCII_WS:
            at += 1
        return at

    pos = skip_ws(pos)
    start = pos
    while pos < end and value[pos] in "0123456789":
        pos += 1
    if pos == start and (pos >= end or value[pos] != "."):
        return None  # no delay: the browser ignores the header
    while pos < end and value[pos] in "0123456789.":
        pos += 1
    if pos < end:
        if value[pos] not in ";," + _ASCII_WS:
            return None
        pos = skip_ws(pos)
        if pos < end and value[pos] in ";,":
            pos += 1
        pos = skip_ws(pos)
    if pos >= end:
        return None  # a reload of the same page
    url_start = pos
    if value[pos : pos + 3].lower() == "url":
        after = skip_ws(pos + 3)
        if after < end and value[after] == "=":
            pos = skip_ws(after + 1)
        else:
            return value[url_start:].strip(_C0_SPACE)
    quote = value[pos] if pos < end and value[pos] in "'\"" else None
    url = value[pos + 1 :] if quote else value[pos:]
    if quote and quote in url:
        url = url[: url.index(quote)]
    # The URL parser drops leading and trailing C0 controls and spaces (WHATWG URL).
    return url.strip(_C0_SPACE)


def _redirect_checked(header: tuple[str, str], settings: Settings) -> tuple[str, str]:
    """A Location (or a Refresh's URL) set through header= is checked like location=,
    so it cannot point a browser at javascript: or past --allowed-redirect-hosts."""
    name, value = header
    lowered = name.lower()
    if lowered == "location":
        _check_location(value, settings)
    elif lowered == "refresh" and (url := refresh_url(value)) is not None:
        _check_location(url, settings)
    return header


def check_catalog_redirects(catalog, settings: Settings) -> None:
    """With --allowed-redirect-hosts, the catalog's own Refresh headers are
    narrowed too, parsed as browsers parse them.  Its Location headers stay
    the operator's (the shipped 305 names a proxy by its absolute URL)."""
    from .catalog import ConfigError

    if not settings.allowed_redirect_hosts:
        return
    for info in catalog:
        for name, value in info.headers:
            if name.lower() != "refresh":
                continue
            try:
                _redirect_checked((name, value), settings)
            except BadRequest as exc:
                raise ConfigError(f"{catalog.sources[-1]}: codes.{info.code}.headers.{name}: {exc.message}") from None


def parse_code_text(text: str, what: str = "code") -> int:
    if not CODE_PATTERN.fullmatch(text):
        raise BadRequest(f"bad {what} {text!r}: expected {CODE_FORM}")
    return int(text)


@functools.lru_cache(maxsize=256)
def _delay_spec(text: str, max_delay: float) -> DelaySpec:
    """A DelaySpec never changes, so requests asking for the same delay share one."""
    return parse_delay(text, max_delay=max_delay)


def _apply(options: Options, name: str, value: str, settings: Settings) -> None:
    try:
        if name == "delay":
            options.delay = _delay_spec(value, settings.max_delay)
        elif name in ("body_delay", "drip"):
            seconds = parse_duration(value, what=name)
            if seconds > settings.max_delay:
                raise ValueError(
                    f"bad {name} {value!r}: above the maximum of {format_seconds(settings.max_delay)} "
                    "(raise it with --max-delay)"
                )
            setattr(options, name, seconds)
        elif name == "interval":
            seconds = parse_duration(value, what="interval")
            if seconds < MIN_INTERVAL:
                raise ValueError(f"bad interval {value!r}: expected {DURATION_FORM}, at least 10ms")
            options.interval = seconds
        elif name == "chunks":
            if not _DIGITS.fullmatch(value) or not 1 <= int(value) <= MAX_CHUNKS:
                raise ValueError(f"bad chunks {value!r}: expected a whole number from 1 to {MAX_CHUNKS}")
            options.chunks = int(value)
        elif name == "fault":
            # A share is the last part: reset:0.1, and after a fault's own argument
            # reset-after:64:0.5 (stale-keepalive's time is then needed: stale-keepalive:100ms:0.5).
            parts = value.split(":")
            share_at = 2 if parts[0] in FAULT_FORMS else 1
            text = ":".join(parts[:share_at])
            try:
                fault = parse_fault(text, value)
            except ValueError as exc:
                raise ValueError(f"{exc}; optionally with a share from 0 to 1 after it, e.g. reset:0.1") from None
            if len(parts) > share_at:
                rate = ":".join(parts[share_at:])
                if not _RATE.fullmatch(rate) or float(rate) > 1:
                    raise ValueError(
                        f"bad fault {value!r}: the share {rate!r} is not a number from 0 to 1; "
                        "e.g. reset:0.1 or reset-after:64:0.1"
                    )
                options.fault_rate = float(rate)
            if fault.seconds is not None and fault.seconds > settings.max_delay:
                raise ValueError(
                    f"bad fault {value!r}: above the maximum of {format_seconds(settings.max_delay)} "
                    "(raise it with --max-delay)"
                )
            options.fault = text
        elif name == "then":
            code = parse_code_text(value, "then")
            if code < 200:
                raise ValueError(f"bad then {value!r}: expected a final code from 200 to 999")
            options.then = code
        elif name == "location":
            options.location = _check_location(value, settings)
        elif name == "retry_after":
            options.retry_after = _check_retry_after(value)
        elif name == "body":
            if len(value) > MAX_BODY_OPTION:
                raise ValueError(f"bad body: {len(value)} characters, at most {MAX_BODY_OPTION}")
            options.body = value
        elif name == "header":
            options.headers += (_redirect_checked(_header_option(value), settings),)
        elif name == "seed":
            if not _SEED.fullmatch(value):
                raise ValueError(f"bad seed {value!r}: expected a whole number")
            options.seed = value
        elif name == "cycle":
            if value not in ("0", "1", "true", "false"):
                raise ValueError(f"bad cycle {value!r}: expected 1 or 0")
            options.cycle = value in ("1", "true")
        elif name == "limit":
            options.limit = _parse_limit(value)
            options.limit_text = value
        elif name == "limit_mode":
            if value not in ("fixed", "sliding"):
                raise ValueError(f"bad limit_mode {value!r}: expected fixed or sliding")
            options.limit_mode = value
        elif name == "bucket":
            if not BUCKET_NAME.fullmatch(value):
                raise ValueError(f"bad bucket {value!r}: expected 1-128 of A-Z a-z 0-9 . _ ~ -")
            options.bucket = value
        elif name == "outage":
            seconds = parse_duration(value, what="outage")
            if not MIN_WINDOW <= seconds <= MAX_WINDOW:
                raise ValueError(f"bad outage {value!r}: expected {DURATION_FORM}, from 1ms to 1 day")
            options.outage = seconds
        elif name == "until":
            if not _UNIX_TIME.fullmatch(value):
                raise ValueError(f"bad until {value!r}: expected a Unix time in seconds, such as 1767225600")
            options.until = float(value)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


def _folded(name: str) -> str:
    """A name with case and separators folded away: ``Retry-After`` -> ``retryafter``."""
    return name.lower().replace("-", "").replace("_", "")


def _distance(a: str, b: str, limit: int) -> int:
    """Edit distance (insert, delete, substitute, swap two neighbours), or limit+1 once it is above limit."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    # Each letter of a that b lacks takes an edit of its own: a cheap lower bound
    # that settles most names (``utm_source``) before the table is built.
    letters = set(b)
    if sum(char not in letters for char in a) > limit:
        return limit + 1
    before: list[int] = []
    row = list(range(len(b) + 1))
    for i, char in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, other in enumerate(b, 1):
            current[j] = min(row[j] + 1, current[j - 1] + 1, row[j - 1] + (char != other))
            if i > 1 and j > 1 and char == b[j - 2] and a[i - 2] == other:
                current[j] = min(current[j], before[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        before, row = row, current
    return row[-1]


@functools.lru_cache(maxsize=1024)  # clients repeat their own few parameter names
def resembles(name: str, names: tuple[str, ...] = QUERY_NAMES) -> str | None:
    """The option ``name`` looks like a misspelling of, or None.

    Same letters in another case or with ``-``/``_`` moved (``Delay``,
    ``retry-after``, ``retryafter``), or within edit distance 2 of an option
    of six letters or more, 1 of a shorter one: a distance of 2 from a
    four-letter option would catch ordinary parameters (``token`` is two
    edits from ``then``, ``cache`` two from ``cycle``, ``seq`` from ``seed``).
    """
    folded = _folded(name)
    if not folded:
        return None
    best: tuple[int, str] | None = None
    for option in names:
        target = _folded(option)
        limit = 2 if len(target) >= 6 else 1
        distance = 0 if folded == target else _distance(folded, target, limit)
        if distance <= limit and (best is None or distance < best[0]):
            best = (distance, option)
    return None if best is None else best[1]


def _parse_limit(value: str) -> tuple[int, float]:
    count_text, sep, window_text = value.partition("/")
    if not sep or not _DIGITS.fullmatch(count_text):
        raise ValueError(f"bad limit {value!r}: expected {LIMIT_FORM}")
    try:
        window = parse_duration(window_text, what="limit window")
    except ValueError:
        raise ValueError(f"bad limit {value!r}: expected {LIMIT_FORM}") from None
    count = int(count_text)
    if not 1 <= count <= MAX_LIMIT or not MIN_WINDOW <= window <= MAX_WINDOW:
        raise ValueError(f"bad limit {value!r}: expected {LIMIT_FORM}")
    return count, window


def _check_together(options: Options) -> None:
    """Options that only mean something beside another."""
    if options.limit is None:
        if options.limit_mode != "fixed":
            raise BadRequest("limit_mode needs a limit: add limit=N/WINDOW, e.g. limit=5/1s")
        if options.bucket is not None and options.outage is None:
            raise BadRequest("bucket names a limit or an outage: add limit=N/WINDOW or outage=DURATION")
    elif options.limit_mode == "sliding" and options.limit[0] > MAX_SLIDING_LIMIT:
        raise BadRequest(
            f"bad limit {options.limit_text!r}: a sliding limit keeps one time per request, so at most "
            f"{MAX_SLIDING_LIMIT} requests per window"
        )


def parse_options(request, settings: Settings) -> Options:
    """Options from headers first, then the query (which wins).

    A query parameter or ``X-Mockstatus-*`` header that is not an option is
    ignored (clients add their own: cache-busters, API keys, signatures),
    unless it looks like a misspelt option (``resembles``) or the server runs
    with ``--strict-options``: then it is a 400.
    """
    options = Options()
    from_query: set[str] = set()
    strict = settings.strict_options
    if request.query_string:
        for name, value in request.query.items():
            if name not in QUERY_NAMES:
                _foreign(name, name, strict, "option", ", ".join(QUERY_NAMES), str)
                continue
            if name != "header" and name in from_query:
                raise BadRequest(f"option {name!r} given twice; give it once")
            from_query.add(name)
            _apply(options, name, value, settings)
    for key, value in request.headers.items():
        lowered = key.lower()
        if not lowered.startswith(HEADER_PREFIX):
            continue
        if lowered.startswith(RESPONSE_HEADER_PREFIX):
            header = check_header(key[len(RESPONSE_HEADER_PREFIX) :], value, "response header")
            options.headers += (_redirect_checked(header, settings),)
            continue
        name = lowered[len(HEADER_PREFIX) :].replace("-", "_")
        if name == "namespace":  # not an option of the reply: whose sequences and journal (store.py)
            if not NAMESPACE.fullmatch(value):
                raise BadRequest(f"bad namespace {value!r} in {key}: expected {NAMESPACE_FORM}")
            continue
        if name == "header":
            raise BadRequest(f"bad header {key!r}: give response headers as X-Mockstatus-Response-<Name>: value")
        if name not in QUERY_NAMES:
            allowed = ", ".join(header_name(n) for n in QUERY_NAMES if n != "header")
            _foreign(key, name, strict, "header", f"{allowed}, X-Mockstatus-Response-<Name>", header_name)
            continue
        if name in from_query:
            continue
        _apply(options, name, value, settings)
    _check_together(options)
    return options


_HEADER_NAMES = tuple(n for n in QUERY_NAMES if n != "header")  # header= has no X-Mockstatus-Header form


def _foreign(given: str, name: str, strict: bool, what: str, allowed: str, spelt) -> None:
    """A parameter or header that is not an option: a 400 if it looks like one (or when strict)."""
    near = resembles(name, QUERY_NAMES if what == "option" else _HEADER_NAMES)
    if near is not None:
        raise BadRequest(f"unknown {what} {given!r}: did you mean {spelt(near)!r}? allowed: {allowed}")
    if strict:
        raise BadRequest(f"unknown {what} {given!r} (--strict-options); allowed: {allowed}")


def has_options(request) -> bool:
    """Cheap test so the hot path skips parsing when nothing was asked for."""
    if request.query_string:
        return True
    for key in request.headers:
        if key[:13].lower() == HEADER_PREFIX:
            return True
    return False
