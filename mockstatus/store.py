"""The state store: where sequences and the journal live, per namespace.

``MemoryStore`` (``--state memory``, the default) keeps them in this process.
``RedisStore`` (``--state redis://...``) keeps them in Redis, so replicas
behind a load balancer step one sequence together and share one journal.
Handlers and admin routes call the same async API on either; the one a
server uses is chosen at start.

Plain ``/status`` replies never touch the store: only sequences and the
journal do, and the journal's writes to Redis go through a bounded
background queue, never in a reply's path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .journal import Journal, JournalEntry, matches
from .limits import Buckets, Clock, LimitConflict, Verdict
from .sequences import Sequences, conflict_message

DEFAULT_NAMESPACE = "default"
NAMESPACE = re.compile(r"[A-Za-z0-9._~-]{1,64}", re.ASCII)
NAMESPACE_FORM = "1-64 of A-Z a-z 0-9 . _ ~ -"
NAMESPACE_HEADER = "X-Mockstatus-Namespace"
KEY_PREFIX = "mockstatus:"
JOURNAL_QUEUE = 10_000  # entries waiting for the Redis writer; above it they are dropped and counted
JOURNAL_BATCH = 256  # entries written in one pipeline (one round trip)
# A stopped store must fail a request quickly (a 500 naming it), not hold it.
CONNECT_TIMEOUT = 1.0
COMMAND_TIMEOUT = 2.0
CLOSE_TIMEOUT = 2.0  # on shutdown, for the journal's last entries to go out

log = logging.getLogger("mockstatus")


class StoreError(Exception):
    """The store could not be reached or failed a command; the message names the problem."""


def check_namespace(text: str) -> str:
    if not NAMESPACE.fullmatch(text):
        raise ValueError(f"bad namespace {text!r}: expected {NAMESPACE_FORM}")
    return text


def namespace_of(request) -> str:
    """The request's namespace: the ``/ns/{namespace}/`` prefix, else the header, else the default.

    Unchecked: the handlers check it (options.parse_options, app.namespaced).
    """
    name = request.match_info.get("namespace")
    if name is None:
        name = request.headers.get(NAMESPACE_HEADER)
    return name or DEFAULT_NAMESPACE


def replica_id() -> str:
    """Names the process that served a journal entry: the host (a pod's name) and pid,
    and a random part, so servers in one process differ."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


def shown_url(url: str) -> str:
    """A store URL for messages and health, its password hidden."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def run_length(codes: tuple[int, ...]) -> str:
    """``(503, 503, 200)`` -> ``503*2,200``: the identity of a sequence's codes,
    short, so two specs that spell the same codes differently do not conflict."""
    parts: list[str] = []
    index = 0
    while index < len(codes):
        end = index
        while end < len(codes) and codes[end] == codes[index]:
            end += 1
        parts.append(f"{codes[index]}*{end - index}")
        index = end
    return ",".join(parts)


def expand(text: str) -> tuple[int, ...]:
    """``run_length`` undone: ``503*2,200`` -> ``(503, 503, 200)``."""
    codes: list[int] = []
    for part in text.split(","):
        code, _, count = part.partition("*")
        codes.extend([int(code)] * int(count))
    return tuple(codes)


class StoredEntry:
    """A journal entry read back from the store: its JSON, with the id the store gave it."""

    __slots__ = ("id", "data")

    def __init__(self, entry_id: int, data: dict[str, Any]) -> None:
        self.id = entry_id
        self.data = data

    def as_json(self) -> dict[str, Any]:
        return self.data


@dataclass
class Health:
    problem: str | None
    details: dict[str, Any]


class MemoryStore:
    """This process's sequences and journal (the default: one server, the pytest plugin)."""

    kind = "memory"

    def __init__(self, settings, journal: Journal) -> None:
        self.journal = journal
        # One table for every namespace, so --max-sequences bounds them all;
        # a namespace's names are kept as "namespace/name" ("/" is in neither).
        self.sequences = Sequences(settings.max_sequences)
        self.replica = replica_id()
        journal.replica = self.replica
        self.clock = Clock()  # what rate limits and outages read; delays stay in real time
        self.bucket_table = Buckets(settings.max_buckets, self.clock)

    @staticmethod
    def _key(namespace: str, name: str) -> str:
        return name if namespace == DEFAULT_NAMESPACE else f"{namespace}/{name}"

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def step(
        self, namespace: str, name: str, codes: tuple[int, ...], spec: str, cycle: bool
    ) -> tuple[int, int, bool]:
        """Advance ``name``: (code, step, restarted); SequenceConflict for other codes under the name."""
        key = self._key(namespace, name)
        code, step = self.sequences.step(key, codes, spec, cycle)
        return code, step, self.sequences.restarted(key)

    async def snapshot(self, namespace: str) -> dict[str, Any]:
        prefix = "" if namespace == DEFAULT_NAMESPACE else namespace + "/"
        return {
            key[len(prefix) :]: value
            for key, value in self.sequences.snapshot().items()
            if ("/" not in key if not prefix else key.startswith(prefix))
        }

    async def reset_sequences(self, namespace: str, name: str | None = None) -> bool:
        if name is not None:
            return self.sequences.reset(self._key(namespace, name))
        if namespace == DEFAULT_NAMESPACE:
            self.sequences.reset_matching(lambda key: "/" not in key)
        else:
            self.sequences.reset_matching(lambda key: key.startswith(namespace + "/"))
        return True

    async def requests(self, namespace: str, filters: dict[str, Any], redact: bool) -> list:
        return self.journal.query(namespace=namespace, **filters, redact=redact)

    async def clear_journal(self, namespace: str) -> None:
        self.journal.clear(namespace)

    async def reset(self) -> None:
        """Everything, every namespace: the plugin's reset between tests."""
        self.journal.clear()
        self.sequences.reset()
        self.bucket_table.reset()
        self.clock.reset()

    async def health(self) -> Health:
        return Health(None, {"store": "memory"})

    # -- rate limits, outages, the test clock (limits.Buckets and limits.Clock) ----

    async def limit(self, namespace: str, name: str, limit: int, window: float, sliding: bool, spec: str):
        """(verdict, wall time it was taken at); LimitConflict for another limit under the name."""
        return self.bucket_table.limit(namespace, name, limit, window, sliding, spec), self.clock.wall()

    async def outage(self, namespace: str, name: str, duration: float) -> float:
        return self.bucket_table.outage(namespace, name, duration)

    async def buckets(self, namespace: str) -> dict[str, Any]:
        return self.bucket_table.snapshot(namespace)

    async def reset_buckets(self, namespace: str) -> None:
        self.bucket_table.reset(namespace)

    async def advance_clock(self, seconds: float) -> float:
        return self.clock.advance(seconds)

    async def reset_clock(self) -> None:
        self.clock.reset()


# One atomic step of a sequence (Redis runs a script without interleaving other
# commands): check the codes for the 409, count the call, pick the step as
# sequences.Sequence.step_for does, and push the idle expiry out again.
# Only HMGET, HSET, PEXPIRE: commands Redis 6.2 and Valkey share.
STEP_SCRIPT = """
local cur = redis.call('HMGET', KEYS[1], 'codes', 'spec', 'calls')
if cur[1] and cur[1] ~= ARGV[1] then
  return {0, cur[2]}
end
local calls = tonumber(cur[3] or '0')
local steps = tonumber(ARGV[3])
local step
if calls < steps then
  step = calls + 1
elseif ARGV[4] == '1' then
  step = calls % steps + 1
else
  step = steps
end
if not cur[1] then
  redis.call('HSET', KEYS[1], 'codes', ARGV[1], 'spec', ARGV[2], 'steps', steps)
end
redis.call('HSET', KEYS[1], 'calls', calls + 1, 'last_step', step, 'cycle', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {step, ''}
"""

# A batch of one namespace's journal entries: ids from the namespace's counter
# (they keep growing across clears, as in memory), each added to the capped
# stream as 0-<id> so ?after= is an exclusive XRANGE.  One call per batch:
# packing a command per entry would cost the replica more than the entry.
APPEND_SCRIPT = """
local count = #ARGV - 1
local id = redis.call('INCRBY', KEYS[2], count) - count
for i = 2, #ARGV do
  id = id + 1
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '0-' .. id, 'e', ARGV[i])
end
return id
"""


# Rate limits and outages in the store, so every replica counts one bucket.
# Time is the caller's wall clock (replicas agree on it as until= assumes)
# plus the test clock's offset, which is kept in the store so an advance on
# one replica moves them all.  Numbers go back as strings: Redis would cut a
# Lua number to an integer.  Only GET, HGET, HMGET, HSET, PEXPIRE, ZADD, ZCARD,
# ZRANGE, ZREMRANGEBYSCORE, HINCRBY (and INCRBYFLOAT, ZCOUNT outside the scripts):
# commands Redis 6.2 and Valkey share.
LIMIT_SCRIPT = """
local now = tonumber(ARGV[1]) + tonumber(redis.call('GET', KEYS[3]) or '0')
local limit, window, sliding = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local held = redis.call('HMGET', KEYS[1], 'limit', 'window', 'sliding', 'spec')
if held[1] and (tonumber(held[1]) ~= limit or tonumber(held[2]) ~= window or held[3] ~= sliding) then
  return {'conflict', held[4]}
end
if not held[1] then
  redis.call('HSET', KEYS[1], 'limit', ARGV[2], 'window', ARGV[3], 'sliding', sliding, 'spec', ARGV[5],
             'start', tostring(now), 'count', '0')
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
if sliding == '1' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tostring(now - window))
  local used = redis.call('ZCARD', KEYS[2])
  local allowed = 0
  if used < limit then
    local n = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    redis.call('ZADD', KEYS[2], tostring(now), tostring(n))
    used = used + 1
    allowed = 1
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local reset = window
  if oldest[2] then reset = tonumber(oldest[2]) + window - now end
  local remaining = limit - used
  if allowed == 0 then remaining = 0 end
  return {tostring(allowed), tostring(remaining), tostring(reset), tostring(now)}
end
local start = tonumber(redis.call('HGET', KEYS[1], 'start'))
local count = tonumber(redis.call('HGET', KEYS[1], 'count'))
if now >= start + window then
  start, count = now, 0
end
local allowed = 0
if count < limit then
  count = count + 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'start', tostring(start), 'count', tostring(count))
local remaining = limit - count
if allowed == 0 then remaining = 0 end
return {tostring(allowed), tostring(remaining), tostring(start + window - now), tostring(now)}
"""

OUTAGE_SCRIPT = """
local now = tonumber(ARGV[1]) + tonumber(redis.call('GET', KEYS[2]) or '0')
local held = redis.call('HMGET', KEYS[1], 'duration', 'ends')
if held[1] and tonumber(held[1]) ~= tonumber(ARGV[2]) then
  return {'conflict', held[1]}
end
local ends = tonumber(held[2])
if not held[1] then
  ends = now + tonumber(ARGV[2])
  redis.call('HSET', KEYS[1], 'duration', ARGV[2], 'ends', tostring(ends))
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'ok', tostring(math.max(0, ends - now)), tostring(now)}
"""


class StoreJournal(Journal):
    """The journal's recording side for a Redis store: entries go to a bounded
    queue that a background task writes in batches; when it is full they are dropped and counted."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queue: asyncio.Queue[tuple | None] = asyncio.Queue(JOURNAL_QUEUE)
        self.dropped = 0

    def _keep(self, fields: tuple) -> None:
        try:
            self.queue.put_nowait(fields)
        except asyncio.QueueFull:
            self.dropped += 1


class RedisStore:
    """Sequences and the journal in Redis (or Valkey), shared by every replica."""

    kind = "redis"

    def __init__(self, settings, journal: StoreJournal) -> None:
        import redis.asyncio

        self.url = settings.state
        self.shown = shown_url(settings.state)
        self.ttl_ms = max(1, int(settings.sequence_ttl * 1000))
        self.journal = journal
        self.replica = replica_id()
        journal.replica = self.replica
        self.redis = redis.asyncio.from_url(
            settings.state,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=COMMAND_TIMEOUT,
            decode_responses=True,
        )
        self._step = self.redis.register_script(STEP_SCRIPT)
        self._append = self.redis.register_script(APPEND_SCRIPT)
        self._limit = self.redis.register_script(LIMIT_SCRIPT)
        self._outage = self.redis.register_script(OUTAGE_SCRIPT)
        self._writer: asyncio.Task | None = None
        # The offset as this replica last heard it; the store's is the one limits read.
        self.clock = Clock()
        self.errors = 0  # commands that failed (the metrics and health say so)
        self.last_error: str | None = None

    # -- keys --------------------------------------------------------------------

    @staticmethod
    def _seq_key(namespace: str, name: str) -> str:
        return f"{KEY_PREFIX}{namespace}:seq:{name}"

    @staticmethod
    def _journal_keys(namespace: str) -> tuple[str, str]:
        return f"{KEY_PREFIX}{namespace}:journal", f"{KEY_PREFIX}{namespace}:journal:id"

    def _failed(self, exc: BaseException) -> StoreError:
        self.errors += 1
        text = str(exc) or type(exc).__name__
        self.last_error = f"state store {self.shown} failed: {text}"
        return StoreError(self.last_error)

    async def _call(self, coro):
        from redis.exceptions import RedisError

        try:
            return await coro
        except (TimeoutError, RedisError, OSError) as exc:
            raise self._failed(exc) from None

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        self._writer = asyncio.get_running_loop().create_task(self._write_journal())

    async def close(self) -> None:
        writer = self._writer
        if writer is not None:
            # The writer stops at the marker, once what was queued before it is written;
            # a cancel in the middle of a pipeline can leave redis-py waiting for good.
            try:
                self.journal.queue.put_nowait(None)
            except asyncio.QueueFull:
                writer.cancel()
            done, _ = await asyncio.wait({writer}, timeout=CLOSE_TIMEOUT)
            if not done:
                writer.cancel()
        try:
            await asyncio.wait_for(self.redis.aclose(), CLOSE_TIMEOUT)
        except TimeoutError:
            log.info("state store %s: connections not closed within %gs", self.shown, CLOSE_TIMEOUT)

    # -- sequences ---------------------------------------------------------------

    async def step(
        self, namespace: str, name: str, codes: tuple[int, ...], spec: str, cycle: bool
    ) -> tuple[int, int, bool]:
        from .sequences import SequenceConflict

        args = [run_length(codes), spec, len(codes), "1" if cycle else "0", self.ttl_ms]
        step, running = await self._call(self._step(keys=[self._seq_key(namespace, name)], args=args))
        if step == 0:
            raise SequenceConflict(conflict_message(name, running, spec, namespace))
        # An expired name starts again at step 1 like a new one: nothing is kept to tell them apart.
        return codes[step - 1], step, False

    async def _names(self, namespace: str) -> list[str]:
        prefix = self._seq_key(namespace, "")
        keys = [key async for key in self.redis.scan_iter(match=prefix + "*", count=500)]
        return sorted(key[len(prefix) :] for key in keys)

    async def snapshot(self, namespace: str) -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            names = await self._names(namespace)
            async with self.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hgetall(self._seq_key(namespace, name))
                rows = await pipe.execute()
            snapshot = {}
            for name, row in zip(names, rows):
                if not row:
                    continue  # expired between the scan and the read
                codes = expand(row["codes"])
                calls, last = int(row["calls"]), int(row["last_step"])
                steps = len(codes)
                cycle = row.get("cycle") == "1"
                next_step = calls + 1 if calls < steps else (calls % steps + 1 if cycle else steps)
                snapshot[name] = {
                    "spec": row["spec"],
                    "steps": steps,
                    "calls": calls,
                    "last_step": last,
                    "last_code": codes[last - 1],
                    "next_step": next_step,
                    "next_code": codes[next_step - 1],
                    "restarted": False,
                }
            return snapshot

        return await self._call(read())

    async def reset_sequences(self, namespace: str, name: str | None = None) -> bool:
        if name is not None:
            return bool(await self._call(self.redis.delete(self._seq_key(namespace, name))))

        async def delete_all() -> None:
            names = await self._names(namespace)
            if names:
                await self.redis.delete(*(self._seq_key(namespace, n) for n in names))

        await self._call(delete_all())
        return True

    # -- the journal -------------------------------------------------------------

    async def _write_journal(self) -> None:
        from redis.exceptions import RedisError

        queue = self.journal.queue
        last = False
        while not last:
            batch = [await queue.get()]
            while len(batch) < JOURNAL_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            if None in batch:  # close(): the server is stopping
                batch, last = batch[: batch.index(None)], True
            redact = not self.journal.keep_secrets
            try:
                by_namespace: dict[str, list[str]] = {}
                for fields in batch:
                    data = JournalEntry(*fields, redact, self.replica).as_json()
                    if not NAMESPACE.fullmatch(data["namespace"]):
                        data["namespace"] = DEFAULT_NAMESPACE  # a bad one was refused with a 400
                    by_namespace.setdefault(data["namespace"], []).append(json.dumps(data, separators=(",", ":")))
                async with self.redis.pipeline(transaction=False) as pipe:
                    for namespace, entries in by_namespace.items():
                        keys = list(self._journal_keys(namespace))
                        await self._append(keys=keys, args=[self.journal.size, *entries], client=pipe)
                    await pipe.execute()
            except (TimeoutError, RedisError, OSError) as exc:
                self._failed(exc)
                self.journal.dropped += len(batch)
            except Exception:  # a bug must not stop the writer for good
                log.exception("journal writer")
                self.journal.dropped += len(batch)

    async def requests(self, namespace: str, filters: dict[str, Any], redact: bool) -> list:
        filters = dict(filters)
        after = filters.pop("after", None)
        limit = filters.pop("limit", None)
        key, _ = self._journal_keys(namespace)
        rows = await self._call(self.redis.xrange(key, min=f"(0-{after}" if after else "-", max="+"))
        found = []
        for stream_id, fields in rows:
            data = json.loads(fields["e"])
            data["id"] = int(stream_id.partition("-")[2])
            if matches(data, **filters):
                found.append(StoredEntry(data["id"], data))
                if limit is not None and len(found) >= limit:
                    break
        return found

    async def clear_journal(self, namespace: str) -> None:
        await self._call(self.redis.delete(self._journal_keys(namespace)[0]))

    async def reset(self) -> None:
        """Every namespace's sequences, journal, buckets and the clock in this Redis (``ThreadServer.reset``):
        a suite sharing a Redis with others keeps to its namespace's admin routes instead."""

        async def delete_all() -> None:
            keys = [key async for key in self.redis.scan_iter(match=KEY_PREFIX + "*", count=500)]
            state = [k for k in keys if k.endswith(":journal") or ":seq:" in k or ":bucket:" in k]
            if state:
                await self.redis.delete(*state, self.CLOCK_KEY)

        await self._call(delete_all())
        self.clock.reset()

    # -- rate limits, outages, the test clock ------------------------------------

    CLOCK_KEY = KEY_PREFIX + "clock:offset"

    def _bucket_key(self, namespace: str, what: str, name: str) -> str:
        return f"{KEY_PREFIX}{namespace}:bucket:{what}:{name}"

    def _idle_ms(self, window: float = 0.0) -> str:
        # Idle buckets expire like sequences (--sequence-ttl), never inside their window.
        return str(max(self.ttl_ms, int(window * 1000) + 1000))

    async def limit(self, namespace: str, name: str, limit: int, window: float, sliding: bool, spec: str):
        key = self._bucket_key(namespace, "limit", name)
        args = [repr(self.clock.raw_wall()), str(limit), repr(window), "1" if sliding else "0", spec,
                self._idle_ms(window)]  # fmt: skip
        got = await self._call(self._limit(keys=[key, key + ":log", self.CLOCK_KEY], args=args))
        if got[0] == "conflict":
            raise LimitConflict(
                f"bucket {name!r} is already limited to {got[1]!r}, not {spec!r}; "
                "reset it with DELETE /__mockstatus/buckets or name another with bucket="
            )
        allowed, remaining, reset, now = got
        return Verdict(allowed == "1", limit, int(remaining), float(reset), window), float(now)

    async def outage(self, namespace: str, name: str, duration: float) -> float:
        from .durations import format_seconds

        key = self._bucket_key(namespace, "outage", name)
        args = [repr(self.clock.raw_wall()), repr(duration), self._idle_ms(duration)]
        got = await self._call(self._outage(keys=[key, self.CLOCK_KEY], args=args))
        if got[0] == "conflict":
            raise LimitConflict(
                f"outage {name!r} already lasts {format_seconds(float(got[1]))}, not {format_seconds(duration)}; "
                "reset it with DELETE /__mockstatus/buckets or name another with bucket="
            )
        return float(got[1])

    async def buckets(self, namespace: str) -> dict[str, Any]:
        """The namespace's buckets and outages, as limits.Buckets.snapshot gives them."""
        prefix = f"{KEY_PREFIX}{namespace}:bucket:"

        async def read() -> dict[str, Any]:
            offset = float(await self.redis.get(self.CLOCK_KEY) or 0)
            now = self.clock.raw_wall() + offset
            limits: dict[str, Any] = {}
            outages: dict[str, Any] = {}
            async for key in self.redis.scan_iter(match=prefix + "*", count=500):
                what, _, name = key[len(prefix) :].partition(":")
                if what == "outage":
                    item = await self.redis.hgetall(key)
                    if item:
                        left = max(0.0, float(item["ends"]) - now)
                        outages[name] = {"duration": float(item["duration"]), "left": round(left, 3)}
                elif what == "limit" and not name.endswith(":log"):
                    item = await self.redis.hgetall(key)
                    if not item:
                        continue
                    limit, window = int(item["limit"]), float(item["window"])
                    if item["sliding"] == "1":
                        used = await self.redis.zcount(key + ":log", f"({now - window!r}", "+inf")
                        limits[name] = {"limit": item["spec"], "used": used, "remaining": limit - used}
                    else:
                        start = float(item["start"])
                        used = int(item["count"]) if now < start + window else 0
                        left = start + window - now if used else window
                        limits[name] = {
                            "limit": item["spec"], "used": used, "remaining": limit - used, "reset": round(left, 3),
                        }  # fmt: skip
            return {"limits": limits, "outages": outages}

        return await self._call(read())

    async def reset_buckets(self, namespace: str) -> None:
        prefix = f"{KEY_PREFIX}{namespace}:bucket:"

        async def delete_all() -> None:
            keys = [key async for key in self.redis.scan_iter(match=prefix + "*", count=500)]
            if keys:
                await self.redis.delete(*keys)

        await self._call(delete_all())

    async def advance_clock(self, seconds: float) -> float:
        """Move every replica's test clock (the offset is the store's); return the offset."""
        self.clock.offset = float(await self._call(self.redis.incrbyfloat(self.CLOCK_KEY, seconds)))
        return self.clock.offset

    async def reset_clock(self) -> None:
        await self._call(self.redis.delete(self.CLOCK_KEY))
        self.clock.reset()

    async def health(self) -> Health:
        details: dict[str, Any] = {"store": self.shown, "journal_dropped": self.journal.dropped}
        try:
            await self._call(self.redis.ping())
        except StoreError as exc:
            return Health(str(exc), details)
        return Health(None, details)


def create(settings, journal_args: tuple, journal_kwargs: dict) -> MemoryStore | RedisStore:
    if settings.state == "memory":
        return MemoryStore(settings, Journal(*journal_args, **journal_kwargs))
    return RedisStore(settings, StoreJournal(*journal_args, **journal_kwargs))
