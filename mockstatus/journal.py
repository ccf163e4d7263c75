"""The request journal: a bounded ring buffer of the requests a server answered."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import time
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict

from .metrics import method_label

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy
    from yarl import URL

JOURNAL_BODY_PREVIEW = 4096
# What one entry keeps of the request's target and header fields; the rest is
# cut and the entry marked truncated, as the body preview is.
JOURNAL_ENTRY_BYTES = 8192
# What an entry costs besides the bytes it keeps (the tuple, the entry's
# fields) and what one header field costs besides its name and value (two
# str objects and a multidict slot), so the total-bytes cap tracks memory.
ENTRY_OVERHEAD = 400
FIELD_OVERHEAD = 120
# Credentials a request carries: the admin route, which other processes and
# pages can reach, shows them as REDACTED unless --journal-secrets keep.
SECRET_HEADERS = frozenset(("authorization", "proxy-authorization", "cookie", "set-cookie"))
REDACTED = "[redacted]"
_URL_PART = 2048  # of a cut entry: at most this many characters of the path, and of the query

# The journal's filters, for the admin route and ThreadServer.requests() alike.
FILTERS = ("path", "method", "sequence", "since", "status")
# Paging, for the admin route only (a test reads its whole journal at once).
PAGING = ("after", "limit")


def parse_filters(given: dict[str, Any], allowed: tuple[str, ...] = FILTERS) -> dict[str, Any]:
    """The journal filters in ``given`` (text or values), checked: ValueError names a bad one."""
    for name in given:
        if name not in allowed:
            raise ValueError(f"unknown filter {name!r}; allowed: {', '.join(allowed)}")
    filters = {name: value for name, value in given.items() if value is not None}
    if "since" in filters:
        try:
            filters["since"] = float(filters["since"])
        except (TypeError, ValueError):
            raise ValueError(f"bad since {given['since']!r}: expected a Unix time in seconds") from None
    if "status" in filters:
        status = filters["status"]
        if isinstance(status, bool) or not str(status).isascii() or not str(status).isdigit() or len(str(status)) != 3:
            raise ValueError(f"bad status {status!r}: expected a three-digit code such as 503")
        filters["status"] = int(status)
    for name, least in (("after", 0), ("limit", 1)):
        if name in filters:
            text = str(filters[name])
            if not (text.isascii() and text.isdigit()) or len(text) > 18 or int(text) < least:
                raise ValueError(f"bad {name} {text!r}: expected a whole number of at least {least}")
            filters[name] = int(text)
    return filters


NAMESPACE_HEADER = "X-Mockstatus-Namespace"
NAMESPACE_PREFIX = "/ns/"


def split_namespace(path: str) -> tuple[str | None, str]:
    """``/ns/ci-42/status/200`` -> ("ci-42", "/status/200"); a path without the prefix: (None, path)."""
    if not path.startswith(NAMESPACE_PREFIX):
        return None, path
    parts = path.split("/", 3)  # "", "ns", namespace, the rest
    return parts[2], "/" + (parts[3] if len(parts) > 3 else "")


def matches(
    data: dict[str, Any],
    *,
    path: str | None = None,
    method: str | None = None,
    sequence: str | None = None,
    since: float | None = None,
    status: int | None = None,
) -> bool:
    """The journal filters on an entry's JSON (a store's entries); ``Journal.query`` applies the same."""
    return (
        (path is None or data["path"] == path)
        and (method is None or data["method"] == method.upper())
        and (sequence is None or data["sequence"] == sequence)
        and (since is None or data["time"] >= since)
        and (status is None or data["status"] == status)
    )


def path_tail(path: str) -> str:
    """What a path has below its codes: ``/status/503/api/items`` -> ``/api/items``."""
    parts = path.split("/", 4)  # "", "status", codes, tail | "", "sequence", name, codes, tail
    if len(parts) > 3 and parts[1] == "status":
        return "/" + "/".join(parts[3:])
    if len(parts) > 4 and parts[1] == "sequence":
        return "/" + parts[4]
    return ""


def _printable(text: str) -> str:
    """Header bytes that are not UTF-8 reach us as surrogates (aiohttp decodes
    with surrogateescape) and cannot be encoded as JSON: show them as ``\\xNN``."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class _CutURL:
    """The path and query an over-size entry keeps (an object with URL's two attributes)."""

    __slots__ = ("path", "query_string")

    def __init__(self, path: str, query_string: str) -> None:
        self.path = path
        self.query_string = query_string


def _cut(request, budget: int) -> tuple[_CutURL, CIMultiDict[str]]:
    """The first ``budget`` bytes' worth of an over-size request's target and headers."""
    url = request.rel_url
    path, query = url.path[:_URL_PART], url.query_string[:_URL_PART]
    budget -= len(path) + len(query)
    kept: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        room = budget - len(name)
        if room <= 0:
            break
        kept.add(name, value[:room])
        budget = room - len(value)
    return _CutURL(path, query), kept


@dataclasses.dataclass(slots=True)
class JournalEntry:
    """One recorded request, made from the tuple ``Journal.record`` keeps.

    Recording runs on every request, so it keeps references only (the
    request's immutable header proxy and URL); paths, queries and header lists
    are worked out when the journal is read.
    """

    id: int
    time: float
    _peer: Any
    method: str
    _url: URL | _CutURL
    _headers: CIMultiDictProxy[str] | CIMultiDict[str]
    body_size: int
    body_preview: bytes
    status: int
    delay: float
    client_gone: bool
    sequence: str | None
    step: int | None
    truncated: bool
    restarted: bool
    fault: str | None  # the fault kind (``reset-after:64``), when the reply was one
    bytes_sent: int | None  # of a fault's reply, the bytes that went out (None: the whole reply)
    _size: int
    _redact: bool = False
    replica: str | None = None

    @property
    def client(self) -> str | None:
        peer = self._peer
        if peer is None:
            return None
        return str(peer[0]) if isinstance(peer, (list, tuple)) else str(peer)

    @property
    def path(self) -> str:
        # Without a /ns/{namespace}/ prefix: the same path whichever way the namespace came.
        return split_namespace(self._url.path)[1]

    @property
    def namespace(self) -> str:
        """Worked out when read (recording keeps references only): the prefix, else the header."""
        namespace = split_namespace(self._url.path)[0]
        if namespace is None:
            namespace = self._headers.get(NAMESPACE_HEADER)
        return namespace or "default"

    @property
    def query(self) -> str:
        return self._url.query_string

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "client": self.client,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "tail": path_tail(self.path),
            "headers": self._header_list(),
            "body_size": self.body_size,
            "body": self.body_preview.decode("utf-8", "replace"),
            "status": self.status,
            "delay": self.delay,
            "client_gone": self.client_gone,
            "sequence": self.sequence,
            "step": self.step,
            # The sequence had been evicted (--max-sequences) and started again at step 1.
            "sequence_restarted": self.restarted,
            # Headers or target longer than the journal keeps per entry: the rest was cut.
            "truncated": self.truncated,
            "fault": self.fault,
            "bytes_sent": self.bytes_sent,
            "namespace": self.namespace,
            # The process that served it: with --state redis://, every replica's entries are listed.
            "replica": self.replica,
        }

    def _header_list(self) -> list[list[str]]:
        redact = self._redact
        return [
            [name, REDACTED if redact and name.lower() in SECRET_HEADERS else _printable(value)]
            for name, value in self._headers.items()
        ]


class Journal:
    """A bounded ring buffer of requests: at most ``size`` entries and about
    ``max_bytes`` of kept headers, targets and body previews (oldest dropped first)."""

    def __init__(
        self,
        size: int,
        max_bytes: int = 16 * 1024 * 1024,
        *,
        entry_bytes: int = JOURNAL_ENTRY_BYTES,
        keep_secrets: bool = False,  # what the admin route shows: --journal-secrets
    ) -> None:
        self._entries: collections.deque[tuple] = collections.deque()
        self._next_id = 1
        self.size = size
        self.max_bytes = max_bytes
        self.entry_bytes = entry_bytes
        self.keep_secrets = keep_secrets
        self.bytes = 0  # the sum of the entries' sizes
        self.replica: str | None = None  # set by the store (store.replica_id)
        # Requests answered by (status, method label, fault kind): what the metrics count.
        self.counts: collections.Counter[tuple[int, str, str | None]] = collections.Counter()

    def record(
        self,
        request,
        status: int,
        *,
        body_size: int = 0,
        body_preview: bytes = b"",
        delay: float = 0.0,
        client_gone: bool = False,
        sequence: str | None = None,
        step: int | None = None,
        restarted: bool = False,
        fault: str | None = None,
        bytes_sent: int | None = None,
    ) -> None:
        self.counts[(status, method_label(request.method), fault and fault.partition(":")[0])] += 1
        # A plain tuple of references: the cheapest thing to build on every
        # request; ``query`` makes JournalEntry objects of the few that are read.
        # A request above the per-entry budget is copied, cut, instead.
        raw = request.raw_headers
        kept = sum(map(len, itertools.chain.from_iterable(raw))) + len(request.raw_path)
        url, headers, truncated = request.rel_url, request.headers, False
        if kept > self.entry_bytes:
            url, headers = _cut(request, self.entry_bytes)
            kept, truncated = self.entry_bytes, True
        size = ENTRY_OVERHEAD + kept + FIELD_OVERHEAD * len(headers) + len(body_preview)
        self._keep(
            (
                self._next_id, time.time(), request.remote, request.method, url, headers, body_size,
                body_preview, status, delay, client_gone, sequence, step, truncated, restarted,
                fault, bytes_sent, size,
            )
        )  # fmt: skip

    def record_fast_path(self, request, status: int) -> None:
        """``record`` for the fast path: a reply with no body, delay or sequence."""
        raw = request.raw_headers
        kept = sum(map(len, itertools.chain.from_iterable(raw))) + len(request.raw_path)
        if kept > self.entry_bytes:
            self.record(request, status)
            return
        self.counts[(status, method_label(request.method), None)] += 1
        size = ENTRY_OVERHEAD + kept + FIELD_OVERHEAD * len(raw)
        self._keep(
            (
                self._next_id, time.time(), request.remote, request.method, request.rel_url,
                request.headers, 0, b"", status, 0.0, False, None, None, False, False, None, None, size,
            )
        )  # fmt: skip

    def _keep(self, fields: tuple) -> None:
        """Keep one entry's fields (a store's journal sends them to the store instead)."""
        self._entries.append(fields)
        self._next_id += 1
        self.bytes += fields[-1]
        entries = self._entries
        while len(entries) > self.size or (self.bytes > self.max_bytes and len(entries) > 1):
            self.bytes -= entries.popleft()[-1]

    def clear(self, namespace: str | None = None) -> None:
        """Forget every entry, or a namespace's."""
        if namespace is None:
            self._entries.clear()
            self.bytes = 0
            return
        kept = [fields for fields in self._entries if JournalEntry(*fields).namespace != namespace]
        self._entries = collections.deque(kept)
        self.bytes = sum(fields[-1] for fields in kept)

    def __len__(self) -> int:
        return len(self._entries)

    def query(
        self,
        *,
        path: str | None = None,
        method: str | None = None,
        sequence: str | None = None,
        since: float | None = None,
        status: int | None = None,
        after: int | None = None,
        limit: int | None = None,
        redact: bool = False,
        namespace: str | None = "default",
    ) -> list[JournalEntry]:
        """Entries oldest first; ``after`` (an id) and ``limit`` page through them.

        ``redact``: show credentials as REDACTED (what the admin route does
        unless --journal-secrets keep; the test's own process reads them as sent).
        """
        found = []
        for fields in self._entries:
            if after is not None and fields[0] <= after:
                continue
            entry = JournalEntry(*fields, redact, self.replica)
            if namespace is not None and entry.namespace != namespace:
                continue
            if path is not None and entry.path != path:
                continue
            if method is not None and entry.method != method.upper():
                continue
            if sequence is not None and entry.sequence != sequence:
                continue
            if since is not None and entry.time < since:
                continue
            if status is not None and entry.status != status:
                continue
            found.append(entry)
            if limit is not None and len(found) >= limit:
                break
        return found
