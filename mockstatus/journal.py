"""The request journal: a bounded ring buffer of the requests a server answered."""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multidict import CIMultiDictProxy
    from yarl import URL

JOURNAL_BODY_PREVIEW = 4096


def _printable(text: str) -> str:
    """Header bytes that are not UTF-8 reach us as surrogates (aiohttp decodes
    with surrogateescape) and cannot be encoded as JSON: show them as ``\\xNN``."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


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
    _url: URL
    _headers: CIMultiDictProxy[str]
    body_size: int
    body_preview: bytes
    status: int
    delay: float
    client_gone: bool
    sequence: str | None
    step: int | None
    fault: str | None

    @property
    def client(self) -> str | None:
        peer = self._peer
        if peer is None:
            return None
        return str(peer[0]) if isinstance(peer, (list, tuple)) else str(peer)

    @property
    def path(self) -> str:
        return self._url.path

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
            "headers": [[name, _printable(value)] for name, value in self._headers.items()],
            "body_size": self.body_size,
            "body": self.body_preview.decode("utf-8", "replace"),
            "status": self.status,
            "delay": self.delay,
            "client_gone": self.client_gone,
            "sequence": self.sequence,
            "step": self.step,
            "fault": self.fault,
        }


class Journal:
    """A bounded ring buffer of requests (oldest dropped first)."""

    def __init__(self, size: int) -> None:
        self._entries: collections.deque[tuple] = collections.deque(maxlen=size)
        self._next_id = 1

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
        fault: str | None = None,
    ) -> None:
        # A plain tuple: the cheapest thing to build on every request;
        # ``query`` makes JournalEntry objects of the few that are read.
        self._entries.append(
            (
                self._next_id, time.time(), request.remote, request.method, request.rel_url,
                request.headers, body_size, body_preview, status, delay, client_gone, sequence, step, fault,
            )
        )  # fmt: skip
        self._next_id += 1

    def record_fast_path(self, request, status: int) -> None:
        """``record`` for the fast path: a reply with no body, delay or sequence."""
        self._entries.append(
            (
                self._next_id, time.time(), request.remote, request.method, request.rel_url,
                request.headers, 0, b"", status, 0.0, False, None, None, None,
            )
        )  # fmt: skip
        self._next_id += 1

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def query(
        self,
        *,
        path: str | None = None,
        method: str | None = None,
        sequence: str | None = None,
        since: float | None = None,
    ) -> list[JournalEntry]:
        found = []
        for fields in self._entries:
            entry = JournalEntry(*fields)
            if path is not None and entry.path != path:
                continue
            if method is not None and entry.method != method.upper():
                continue
            if sequence is not None and entry.sequence != sequence:
                continue
            if since is not None and entry.time < since:
                continue
            found.append(entry)
        return found
