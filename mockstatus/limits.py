"""Truthful time: the clock, rate-limit buckets and outage windows.

``Clock`` is what limits and outages read: the monotonic clock for windows (a
wall-clock step, NTP or DST, must not end or stretch a window) and the wall
clock for ``?until=`` (a Unix time is a wall-clock moment), both moved by the
test clock's offset (``POST /__mockstatus/clock``).  Delays never read it: they
stay in real time.

``Buckets`` is the one store of this state, a bounded LRU like the sequences:
``limit`` takes one request from a bucket and ``outage`` opens or reads a
window.  Each call reads and updates without an ``await``, so concurrent
requests on one event loop see distinct counts.  A shared store replaces this
class with one of the same methods.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import time
from typing import Any, NamedTuple

from .durations import format_seconds


class Clock:
    """Monotonic and wall time, both moved forward by ``advance`` (a test's clock)."""

    __slots__ = ("offset",)

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.monotonic() + self.offset

    def wall(self) -> float:
        return time.time() + self.offset

    @staticmethod
    def raw_wall() -> float:
        """The wall clock without the offset (a shared store adds its own)."""
        return time.time()

    def advance(self, seconds: float) -> float:
        self.offset += seconds
        return self.offset

    def reset(self) -> None:
        self.offset = 0.0


class LimitConflict(Exception):
    pass


class Verdict(NamedTuple):
    """One request's fate under a rate limit."""

    allowed: bool
    limit: int
    remaining: int
    reset: float  # seconds until the window frees a request (fixed: the window ends)
    window: float


@dataclasses.dataclass(slots=True)
class _Bucket:
    spec: str  # "5/1s sliding": a bucket keeps the limit it was made with
    limit: int
    window: float
    sliding: bool
    start: float = 0.0  # fixed: when the current window began
    count: int = 0  # fixed: requests let through in it
    log: collections.deque[float] = dataclasses.field(default_factory=collections.deque)  # sliding: their times


@dataclasses.dataclass(slots=True)
class _Outage:
    duration: float
    ends: float


def ceil_seconds(seconds: float) -> int:
    """Whole seconds, rounded up, so a client that waits them is past the moment.

    A float a hair above a whole number (1.0000000002 from subtracting clock
    readings) is that whole number: rounding it up to 2 would be a second late.
    """
    return max(0, math.ceil(round(seconds, 6)))


class Buckets:
    """Rate-limit buckets and outage windows by namespace and name, at most
    ``max_items`` in all (least recently used evicted)."""

    def __init__(self, max_items: int, clock: Clock) -> None:
        self.max_items = max_items
        self.clock = clock
        self._items: collections.OrderedDict[tuple[str, str, str], Any] = collections.OrderedDict()

    def _store(self, key: tuple[str, str, str], item: Any) -> None:
        self._items[key] = item
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def limit(self, namespace: str, name: str, limit: int, window: float, sliding: bool, spec: str) -> Verdict:
        """Take one request from bucket ``name``: let it through or say when to come back."""
        now = self.clock.now()
        key = ("limit", namespace, name)
        bucket = self._items.get(key)
        if bucket is None:
            bucket = _Bucket(spec, limit, window, sliding, start=now)
            self._store(key, bucket)
        elif (bucket.limit, bucket.window, bucket.sliding) != (limit, window, sliding):
            raise LimitConflict(
                f"bucket {name!r} is already limited to {bucket.spec!r}, not {spec!r}; "
                "reset it with DELETE /__mockstatus/buckets or name another with bucket="
            )
        else:
            self._items.move_to_end(key)
        if sliding:
            log = bucket.log
            while log and log[0] + window <= now:
                log.popleft()
            if len(log) < limit:
                log.append(now)
                return Verdict(True, limit, limit - len(log), log[0] + window - now, window)
            return Verdict(False, limit, 0, log[0] + window - now, window)
        if now >= bucket.start + window:
            bucket.start, bucket.count = now, 0
        if bucket.count < limit:
            bucket.count += 1
            return Verdict(True, limit, limit - bucket.count, bucket.start + window - now, window)
        return Verdict(False, limit, 0, bucket.start + window - now, window)

    def outage(self, namespace: str, name: str, duration: float) -> float:
        """Seconds left of the outage ``name`` (the first request opens it); 0 once it is over."""
        now = self.clock.now()
        key = ("outage", namespace, name)
        window = self._items.get(key)
        if window is None:
            window = _Outage(duration, now + duration)
            self._store(key, window)
        elif window.duration != duration:
            raise LimitConflict(
                f"outage {name!r} already lasts {format_seconds(window.duration)}, not {format_seconds(duration)}; "
                "reset it with DELETE /__mockstatus/buckets or name another with bucket="
            )
        else:
            self._items.move_to_end(key)
        return max(0.0, window.ends - now)

    def reset(self, namespace: str | None = None) -> None:
        """Forget every bucket and outage, or those of one namespace."""
        if namespace is None:
            self._items.clear()
            return
        for key in [key for key in self._items if key[1] == namespace]:
            del self._items[key]

    def __len__(self) -> int:
        return len(self._items)

    def snapshot(self, namespace: str) -> dict[str, Any]:
        now = self.clock.now()
        limits: dict[str, Any] = {}
        outages: dict[str, Any] = {}
        for (what, space, name), item in self._items.items():
            if space != namespace:
                continue
            if what == "outage":
                outages[name] = {"duration": item.duration, "left": round(max(0.0, item.ends - now), 3)}
            elif item.sliding:
                used = sum(1 for t in item.log if t + item.window > now)
                limits[name] = {"limit": item.spec, "used": used, "remaining": item.limit - used}
            else:
                used = item.count if now < item.start + item.window else 0
                left = item.start + item.window - now if used else item.window
                limits[name] = {
                    "limit": item.spec, "used": used, "remaining": item.limit - used, "reset": round(left, 3),
                }  # fmt: skip
        return {"limits": limits, "outages": outages}


# --- the headers a limit and an outage put on the wire --------------------------------


def limit_headers(verdict: Verdict, wall: float) -> list[tuple[str, str]]:
    """RateLimit-* of draft-ietf-httpapi-ratelimit-headers-06, and the common X-RateLimit-* trio.

    Draft 06 has one field per fact, each a Structured Field integer: Limit,
    Remaining, and Reset as delta-seconds (§5.3), with the policy as
    ``N;w=WINDOW`` (§5.4).  Later drafts (07 on) fold them into ``RateLimit``
    and ``RateLimit-Policy`` parameters; clients read the three fields today.
    ``X-RateLimit-Reset`` is a Unix time in seconds, as GitHub's API sends it.
    """
    reset = ceil_seconds(verdict.reset)
    return [
        ("RateLimit-Limit", str(verdict.limit)),
        ("RateLimit-Remaining", str(verdict.remaining)),
        ("RateLimit-Reset", str(reset)),
        ("RateLimit-Policy", f"{verdict.limit};w={ceil_seconds(verdict.window)}"),
        ("X-RateLimit-Limit", str(verdict.limit)),
        ("X-RateLimit-Remaining", str(verdict.remaining)),
        ("X-RateLimit-Reset", str(math.ceil(wall + verdict.reset))),
    ]
