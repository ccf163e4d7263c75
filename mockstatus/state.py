"""Per-server state that tests reset: retry sequences and the request journal."""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Any

JOURNAL_BODY_PREVIEW = 4096


class SequenceConflict(Exception):
    pass


@dataclasses.dataclass(slots=True)
class Sequence:
    codes: tuple[int, ...]
    spec: str
    calls: int = 0
    last_step: int | None = None
    cycle: bool = False  # the last request's ?cycle=, so the snapshot can say what comes next

    def step_for(self, call: int, cycle: bool) -> int:
        """The 1-based step that the ``call``-th request (0-based) gets."""
        if call < len(self.codes):
            return call + 1
        return call % len(self.codes) + 1 if cycle else len(self.codes)


class Sequences:
    """Named retry sequences: the n-th request to a name gets the n-th code.

    Each step is taken without an ``await`` between reading and advancing the
    counter, so concurrent requests on one event loop get distinct steps.
    """

    def __init__(self, max_names: int) -> None:
        self.max_names = max_names
        self._items: collections.OrderedDict[str, Sequence] = collections.OrderedDict()

    def step(self, name: str, codes: tuple[int, ...], spec: str, cycle: bool) -> tuple[int, int]:
        """Advance ``name`` and return (code, step); steps count from 1 like the n-th request."""
        sequence = self._items.get(name)
        if sequence is None:
            sequence = self._items[name] = Sequence(codes, spec)
            while len(self._items) > self.max_names:
                self._items.popitem(last=False)  # evict the oldest name
        elif sequence.codes != codes:
            raise SequenceConflict(
                f"sequence {name!r} is already running {sequence.spec!r}, not {spec!r}; "
                f"reset it with DELETE /__mockstatus/sequences/{name} or use another name"
            )
        step = sequence.step_for(sequence.calls, cycle)
        sequence.calls += 1
        sequence.last_step = step
        sequence.cycle = cycle
        return codes[step - 1], step

    def reset(self, name: str | None = None) -> bool:
        if name is None:
            self._items.clear()
            return True
        return self._items.pop(name, None) is not None

    def snapshot(self) -> dict[str, Any]:
        snapshot = {}
        for name, seq in self._items.items():
            next_step = seq.step_for(seq.calls, seq.cycle)
            snapshot[name] = {
                "spec": seq.spec,
                "codes": list(seq.codes),
                "steps": len(seq.codes),
                "calls": seq.calls,
                "last_step": seq.last_step,
                "last_code": seq.codes[seq.last_step - 1] if seq.last_step else None,
                # What the next request gets if it asks with the same ?cycle= as the last one.
                "next_step": next_step,
                "next_code": seq.codes[next_step - 1],
            }
        return snapshot


def _printable(text: str) -> str:
    """Header bytes that are not UTF-8 reach us as surrogates (aiohttp decodes
    with surrogateescape) and cannot be encoded as JSON: show them as ``\\xNN``."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


class JournalEntry:
    """One recorded request.

    Recording runs on every request, so it keeps references only (the
    request's immutable header proxy and URL); paths, queries and header lists
    are worked out when the journal is read (issue #8: the hot path).
    """

    __slots__ = (
        "id", "time", "_peer", "method", "_url", "_headers", "body_size", "body_preview",
        "status", "delay", "client_gone", "sequence", "step",
    )  # fmt: skip

    def __init__(self, id, time, peer, method, url, headers, body_size, body_preview, status, delay, client_gone, sequence, step):  # fmt: skip
        self.id = id
        self.time = time
        self._peer = peer
        self.method = method
        self._url = url
        self._headers = headers
        self.body_size = body_size
        self.body_preview = body_preview
        self.status = status
        self.delay = delay
        self.client_gone = client_gone
        self.sequence = sequence
        self.step = step

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

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        return tuple(self._headers.items())

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
    ) -> None:
        # A plain tuple: the cheapest thing to build on every request (issue #8);
        # ``query`` makes JournalEntry objects of the few that are read.
        self._entries.append(
            (
                self._next_id, time.time(), request.remote, request.method, request.rel_url,
                request.headers, body_size, body_preview, status, delay, client_gone, sequence, step,
            )
        )  # fmt: skip
        self._next_id += 1

    def record_plain(self, request, status: int) -> None:
        """``record`` for a reply with no body, delay or sequence: the hot path."""
        self._entries.append(
            (
                self._next_id, time.time(), request.remote, request.method, request.rel_url,
                request.headers, 0, b"", status, 0.0, False, None, None,
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
