"""Soak: a bounded load where every reply is checked, then the server's memory and files.

    .venv/bin/python benchmarks/soak.py [--requests 200000] [--connections 200] [--seed 1]

Starts ``mockstatus serve`` as a subprocess (uvloop, as users run it) and sends
``--requests`` requests from ``--connections`` concurrent clients (plain
asyncio sockets).  The mix: every catalog code with GET and HEAD (the interim
1xx, the 101 switch with a raw echo, 408's close, 444's empty reply and 600's
header-less body included), unlisted codes, small delays (1-20 ms), retry
sequences (one per client, cycling ``503*2,200``), weighted lists, POST
bodies, and every ``?fault=``.  Each reply is checked against what it asked
for: the exact status line and reason, interim responses, the body (exact
text for GET, none for HEAD, 204 and 304), and for each fault its particular
failure (RST, FIN without a byte, 64 non-HTTP bytes, a broken header block, a
body cut short, a body ended by the close; a stall that ends at --max-delay
(50 ms here), the first N bytes then RST or FIN, an upload cut, a reply before
the upload, a keep-alive connection closed behind its reply, the Nth reply on
a connection with or without Connection: close).

The server is measured from /proc: after a warm-up pass over the whole mix
(baseline), after half the load and at the end, each time with every client
connection closed.  It passes when no request failed, the open file
descriptors are back to the baseline, RSS after the load is within the
tolerance of the baseline and did not keep growing in the second half, and
the server wrote nothing to stderr (no traceback).  tests/test_soak.py runs
a short version of it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import client_loop_factory, start_listening  # noqa: E402

from mockstatus.catalog import FAULTS, load_catalog  # noqa: E402

TIMEOUT = 10.0  # per request: longer means the server hung
RSS_TOLERANCE_KIB = 8 * 1024  # after vs. baseline (the allocator keeps some arenas)
SECOND_HALF_TOLERANCE_KIB = 4 * 1024  # growth from half to end: a leak grows with the load
UNLISTED = (299, 479, 555, 799, 999)
# The faults around a reply (do_stage_fault); the others break the reply itself.
STAGE_FAULTS = frozenset(FAULTS[FAULTS.index("stall") :])
SEQUENCE = (503, 503, 200)
WEIGHTED = ((200, 1), (503, 3), (418, 1))


class Mismatch(Exception):
    pass


@dataclasses.dataclass
class Reply:
    status_line: bytes
    status: int
    headers: dict[str, str]
    body: bytes
    interim: list[bytes]


async def read_head(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    line, *lines = head[:-4].split(b"\r\n")
    headers = {}
    for item in lines:
        name, sep, value = item.partition(b":")
        if not sep:
            raise Mismatch(f"not a header line: {item[:60]!r}")
        headers[name.decode("latin-1").lower()] = value.strip().decode("latin-1")
    return line, headers


async def read_reply(reader: asyncio.StreamReader, method: str) -> Reply:
    interim = []
    while True:
        line, headers = await read_head(reader)
        status = int(line.split(b" ", 2)[1])
        if 100 <= status < 200 and status != 101:
            interim.append(line)
            continue
        break
    body = b""
    if method != "HEAD" and status not in (101, 204, 304):
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        else:
            body = await reader.read()  # read until close
    return Reply(line, status, headers, body, interim)


def request(method: str, target: str, extra: str = "", body: bytes = b"") -> bytes:
    head = f"{method} {target} HTTP/1.1\r\nHost: soak\r\n{extra}"
    if body:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


class Client:
    """One simulated client: a connection it reuses while replies keep it open."""

    def __init__(self, host: str, port: int, name: str, rng: random.Random, plan: Plan, stats: Stats) -> None:
        self.host, self.port, self.name, self.rng, self.plan, self.stats = host, port, name, rng, plan, stats
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.sequence_calls = 0

    async def connection(self):
        if self.writer is None or self.writer.is_closing() or self.reader.at_eof():
            await self.close()
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self.reader, self.writer

    async def fresh(self):
        await self.close()
        return await self.connection()

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.reader = self.writer = None

    async def run(self, count: int) -> None:
        for _ in range(count):
            kind = self.plan.pick(self.rng)
            try:
                await asyncio.wait_for(getattr(self, "do_" + kind)(), TIMEOUT)
                self.stats.ok[kind] += 1
            except Exception as exc:  # counted and shown, never hidden
                self.stats.fail(kind, exc)
                await self.close()
        await self.close()

    # -- one request of each kind ---------------------------------------------------------------

    async def do_code(self) -> None:
        code, method = self.plan.next_code()
        self.stats.codes.add(code)
        info = self.plan.catalog.get(code)
        if info.kind == "upgrade":
            return await self.upgrade(code)
        if info.kind in ("empty", "headerless"):
            reader, writer = await self.fresh()
            writer.write(request(method, f"/status/{code}"))
            data = await reader.read()
            expected = b"" if info.kind == "empty" else self.plan.text(code)
            if data != expected:
                raise Mismatch(f"{code}: expected {expected[:40]!r}, got {data[:80]!r}")
            self.stats.lines[f"{code} ({info.kind})"] += 1
            return await self.close()
        reader, writer = await self.connection()
        writer.write(request(method, f"/status/{code}"))
        reply = await read_reply(reader, method)
        final = code
        if info.kind == "interim":
            if reply.interim[:1] != [self.plan.status_line(code)]:
                raise Mismatch(f"{code}: interim {reply.interim!r}")
            final = info.then or 200
        self.check(reply, final, method)
        if info.kind == "close":
            if reply.headers.get("connection") != "close" or await reader.read() != b"":
                raise Mismatch(f"{code}: not closed")
            await self.close()

    def check(self, reply: Reply, code: int, method: str, body: bytes | None = None) -> None:
        expected = self.plan.status_line(code)
        if reply.status_line != expected:
            raise Mismatch(f"expected {expected!r}, got {reply.status_line!r}")
        self.stats.lines[expected.decode()] += 1
        want = self.plan.body(code, method) if body is None else body
        if reply.body != want:
            raise Mismatch(f"{code}: body {reply.body[:60]!r}, expected {want[:60]!r}")

    async def upgrade(self, code: int) -> None:
        reader, writer = await self.fresh()
        writer.write(request("GET", f"/status/{code}", "Connection: Upgrade\r\nUpgrade: soak-echo\r\n"))
        line, headers = await read_head(reader)
        if line != self.plan.status_line(101) or headers.get("upgrade") != "soak-echo":
            raise Mismatch(f"101: {line!r} {headers}")
        payload = self.rng.randbytes(32)
        writer.write(payload)
        if await reader.readexactly(32) != payload:
            raise Mismatch("101: the echo differs")
        self.stats.lines["101 (echo)"] += 1
        await self.close()

    async def do_delay(self) -> None:
        code = self.rng.choice(self.plan.normal)
        ms = self.rng.randint(1, 20)
        reader, writer = await self.connection()
        began = time.monotonic()
        writer.write(request("GET", f"/status/{code}?delay={ms}ms"))
        reply = await read_reply(reader, "GET")
        if time.monotonic() - began < ms / 1000:
            raise Mismatch(f"delay={ms}ms answered early")
        if not reply.headers.get("server-timing", "").startswith("delay;dur="):
            raise Mismatch("no Server-Timing")
        self.check(reply, code, "GET")

    async def do_sequence(self) -> None:
        reader, writer = await self.connection()
        method = self.rng.choice(("GET", "HEAD"))
        writer.write(request(method, f"/sequence/{self.name}/503*2,200?cycle=1"))
        reply = await read_reply(reader, method)
        step = self.sequence_calls % len(SEQUENCE)
        self.sequence_calls += 1
        if reply.headers.get("x-mockstatus-step") != str(step + 1):
            raise Mismatch(f"sequence step {reply.headers.get('x-mockstatus-step')}, expected {step + 1}")
        self.check(reply, SEQUENCE[step], method)

    async def do_weighted(self) -> None:
        reader, writer = await self.connection()
        spec = ",".join(f"{code}:{weight}" for code, weight in WEIGHTED)
        writer.write(request("GET", f"/status/{spec}"))
        reply = await read_reply(reader, "GET")
        if reply.status not in dict(WEIGHTED) or reply.headers.get("x-mockstatus-choice") != str(reply.status):
            raise Mismatch(f"weighted: {reply.status_line!r} {reply.headers.get('x-mockstatus-choice')}")
        self.check(reply, reply.status, "GET")

    async def do_post(self) -> None:
        reader, writer = await self.connection()
        body = self.rng.randbytes(self.rng.randint(1, 4096))
        writer.write(request("POST", "/status/201", body=body))
        self.check(await read_reply(reader, "POST"), 201, "POST")

    async def do_fault(self) -> None:
        fault = self.plan.next_fault()
        if fault in STAGE_FAULTS:
            await self.do_stage_fault(fault)
            return
        code = self.rng.choice(self.plan.normal)
        method = self.rng.choice(("GET", "HEAD"))
        reader, writer = await self.fresh()
        writer.write(request(method, f"/status/{code}?fault={fault}"))
        try:
            data = await reader.read()
            how = "close"
        except ConnectionResetError:
            data, how = b"", "reset"
        await self.close()
        line = self.plan.status_line(code)
        text = self.plan.body(code, method)
        head, _, body = data.partition(b"\r\n\r\n")
        if fault == "reset":
            ok = data == b"" and how == "reset"
        elif fault == "empty":
            ok = data == b"" and how == "close"
        elif fault == "garbage":
            ok = len(data) == 64 and min(data) >= 0x80
        elif fault == "malformed":
            ok = data.startswith(line + b"\r\n") and b"this line is not a header" in data
        elif fault == "truncate":
            length = re.search(rb"\r\nContent-Length: (\d+)\r\n", head + b"\r\n")
            ok = head.startswith(line + b"\r\n") and length is not None and body == text[: len(text) // 2]
            ok = ok and int(length.group(1)) == len(self.plan.body(code, "GET")) and (len(body) < len(text) or not text)
        else:  # no-length
            ok = head.startswith(line + b"\r\n") and b"\r\nContent-Length:" not in head
            ok = ok and b"\r\nConnection: close" in head and body == text
        if not ok:
            raise Mismatch(f"fault={fault} on {code} {method}: {data[:120]!r} ({how})")
        self.stats.lines[f"fault={fault}"] += 1

    async def read_all(self, reader: asyncio.StreamReader) -> tuple[bytes, str]:
        """Everything until the server ends the connection, and how; what a reset
        destroyed before it was read is lost (asyncio raises before handing it out)."""
        data = b""
        try:
            while chunk := await reader.read(65536):
                data += chunk
        except ConnectionResetError:
            return data, "reset"
        return data, "close"

    def whole(self, data: bytes, code: int, method: str, connection: str | None = None) -> bool:
        """``data`` is the whole reply to ``method /status/code``, with this Connection header."""
        head, sep, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"\r\nContent-Length: (\d+)\r\n", head + b"\r\n")
        ok = sep and head.startswith(self.plan.status_line(code) + b"\r\n") and body == self.plan.body(code, method)
        full = len(self.plan.body(code, "GET"))  # HEAD: the length of the GET body (RFC 9110 §9.3.2)
        ok = ok and (code in (204, 304) or (length is not None and int(length.group(1)) == full))
        said = re.search(rb"\r\nConnection: ([^\r]*)", head)
        return bool(ok) and (said.group(1).decode() if said else None) == connection

    async def do_stage_fault(self, fault: str) -> None:
        """The faults around a reply: each one's bytes, and how the connection ends."""
        code = self.rng.choice(self.plan.normal)
        method = self.rng.choice(("GET", "HEAD"))
        line = self.plan.status_line(code)
        reader, writer = await self.fresh()
        asked = fault
        if fault in ("reset-after", "close-after"):
            count = self.rng.choice((0, 5, 20, 60, 100_000))
            asked = f"{fault}:{count}"
            writer.write(request(method, f"/status/{code}?fault={asked}"))
            data, how = await self.read_all(reader)
            ok = how == ("reset" if fault == "reset-after" else "close") and len(data) <= count
            ok = ok and (line + b"\r\n")[:count].startswith(data[: len(line) + 2])
            if how == "close" and len(data) < count:  # shorter than N: all of it went out
                ok = ok and self.whole(data, code, method)
        elif fault in ("close-during-upload", "reset-during-upload"):
            writer.write(request("POST", f"/status/{code}?fault={fault}", body=b"0123456789"))
            data, how = await self.read_all(reader)
            ok = data == b"" and how == ("reset" if fault.startswith("reset") else "close")
        elif fault == "early-response":
            writer.write(request("POST", f"/status/{code}?fault={fault}", "Content-Length: 10\r\n"))
            data, how = await self.read_all(reader)  # the body was never sent
            ok = how == "close" and self.whole(data, code, "POST", "close")
        elif fault in ("stall", "stall-body"):
            writer.write(request(method, f"/status/{code}?fault={fault}"))
            data, how = await self.read_all(reader)
            if fault == "stall":
                ok = data == b"" and how == "close"
            else:
                text = self.plan.body(code, method)
                head, _, body = data.partition(b"\r\n\r\n")
                ok = how == "close" and head.startswith(line + b"\r\n") and body == text[: len(text) // 2]
        elif fault == "stale-keepalive":
            asked = "stale-keepalive:20ms"
            writer.write(request(method, f"/status/{code}?fault={asked}"))
            reply = await read_reply(reader, method)
            data, how = await self.read_all(reader)
            ok = reply.status_line == line and "connection" not in reply.headers and (data, how) == (b"", "close")
            ok = ok and reply.body == self.plan.body(code, method)
        else:  # close-after-requests
            asked = self.rng.choice(("close-after-requests:2", "close-after-requests:2!"))
            said = []
            for _ in range(2):
                writer.write(request(method, f"/status/{code}?fault={asked}"))
                reply = await read_reply(reader, method)
                said.append(reply.headers.get("connection"))
                ok = reply.status_line == line and reply.body == self.plan.body(code, method)
            data, how = await self.read_all(reader)
            ok = ok and said == [None, None if asked.endswith("!") else "close"] and (data, how) == (b"", "close")
        await self.close()
        if not ok:
            raise Mismatch(f"fault={asked} on {code} {method}: {data[:120]!r} ({how})")
        self.stats.lines[f"fault={fault}"] += 1


class Plan:
    """What to ask for: every catalog code in turn, and the other kinds mixed in."""

    KINDS = (("code", 10), ("delay", 2), ("sequence", 2), ("weighted", 1), ("post", 1), ("fault", 1))

    def __init__(self) -> None:
        self.catalog = load_catalog(None)
        self.codes = [info.code for info in self.catalog] + list(UNLISTED)
        self.normal = [info.code for info in self.catalog if info.kind == "normal"]
        items = [(code, method) for code in self.codes for method in ("GET", "HEAD")]
        self._codes = iter(())
        self._items = items
        self._faults = iter(())
        self._lines = {}
        self._texts = {}
        self.kinds = [kind for kind, weight in self.KINDS for _ in range(weight)]

    def pick(self, rng: random.Random) -> str:
        return rng.choice(self.kinds)

    def next_code(self) -> tuple[int, str]:
        for item in self._codes:
            return item
        self._codes = iter(self._items)
        return next(self._codes)

    def next_fault(self) -> str:
        for fault in self._faults:
            return fault
        self._faults = iter(FAULTS)
        return next(self._faults)

    def status_line(self, code: int) -> bytes:
        if code not in self._lines:
            self._lines[code] = f"HTTP/1.1 {code} {self.catalog.get(code).reason}".encode()
        return self._lines[code]

    def body(self, code: int, method: str) -> bytes:
        """The body a reply carries: none for HEAD (RFC 9110 §9.3.2), 204, 304 and 205."""
        return b"" if method == "HEAD" or code in (204, 205, 304) else self.text(code)

    def text(self, code: int) -> bytes:
        if code not in self._texts:
            info = self.catalog.get(code)
            self._texts[code] = (info.body if info.body is not None else f"{code} {info.reason}\n").encode()
        return self._texts[code]


class Stats:
    def __init__(self) -> None:
        self.ok: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self.lines: collections.Counter[str] = collections.Counter()
        self.codes: set[int] = set()
        self.examples: list[str] = []

    def fail(self, kind: str, exc: BaseException) -> None:
        self.failed[kind] += 1
        if len(self.examples) < 10:
            self.examples.append(f"{kind}: {type(exc).__name__}: {exc}")

    @property
    def total(self) -> int:
        return sum(self.ok.values()) + sum(self.failed.values())


# --- the server and /proc -------------------------------------------------------------------------


def sample(pid: int) -> dict[str, int]:
    found = {"fds": len(os.listdir(f"/proc/{pid}/fd"))}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


async def settle(pid: int, fds: int | None, timeout: float = 5.0) -> dict[str, int]:
    """Wait until the server has closed what the clients closed, then sample."""
    deadline = time.monotonic() + timeout
    await asyncio.sleep(0.2)
    while True:
        now = sample(pid)
        if fds is None or now["fds"] <= fds or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.05)


async def load(host: str, port: int, requests: int, connections: int, seed: int, plan: Plan, stats: Stats) -> None:
    share, extra = divmod(requests, connections)
    clients = [
        # Each load gets its own sequence names: a client counts its steps from the first.
        Client(host, port, f"soak-{seed}-{index}", random.Random(seed * 100_003 + index), plan, stats)
        for index in range(connections)
    ]
    await asyncio.gather(*(client.run(share + (1 if index < extra else 0)) for index, client in enumerate(clients)))


@dataclasses.dataclass
class Result:
    requests: int
    connections: int
    ok: int
    failed: int
    seconds: float
    baseline: dict[str, int]
    half: dict[str, int]
    final: dict[str, int]
    lines: collections.Counter
    kinds: collections.Counter
    examples: list[str]
    stderr: str
    missing: list[int]

    @property
    def rss_growth(self) -> int:
        return self.final["VmRSS"] - self.baseline["VmRSS"]

    @property
    def second_half_growth(self) -> int:
        return self.final["VmRSS"] - self.half["VmRSS"]

    @property
    def passed(self) -> bool:
        return (
            self.failed == 0
            and self.ok == self.requests
            and self.final["fds"] == self.baseline["fds"]
            and self.rss_growth <= RSS_TOLERANCE_KIB
            and self.second_half_growth <= SECOND_HALF_TOLERANCE_KIB
            and not self.stderr.strip()
            and not self.missing
        )


def soak(requests: int, connections: int, seed: int = 1, warmup: int | None = None) -> Result:
    plan = Plan()
    # A stall lasts --max-delay: short here, so it is one more reply among many.
    process, _, host, port = start_listening("--max-delay", "50ms", stderr=subprocess.PIPE)
    loop_factory = client_loop_factory()
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(_soak(process.pid, host, port, requests, connections, seed, warmup, plan))
    finally:
        process.terminate()
        try:
            _, stderr = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        _STDERR[0] = stderr


_STDERR = [""]


async def _soak(pid, host, port, requests, connections, seed, warmup, plan) -> Result:
    # Warm-up: the whole mix once per client and every code twice over, so every
    # precomputed reply, sequence and code path exists before the baseline.
    warm_stats = Stats()
    warm = warmup if warmup is not None else max(len(plan._items) * 2, connections * 20)
    await load(host, port, warm, connections, seed + 7, plan, warm_stats)
    baseline = await settle(pid, None)
    stats = Stats()
    began = time.perf_counter()
    first = requests // 2
    await load(host, port, first, connections, seed, plan, stats)
    half = await settle(pid, baseline["fds"])
    await load(host, port, requests - first, connections, seed + 1, plan, stats)
    seconds = time.perf_counter() - began
    final = await settle(pid, baseline["fds"])
    if warm_stats.failed:
        stats.examples[:0] = ["(warm-up) " + e for e in warm_stats.examples]
    return Result(
        requests=requests, connections=connections, ok=sum(stats.ok.values()),
        failed=sum(stats.failed.values()) + sum(warm_stats.failed.values()), seconds=seconds,
        baseline=baseline, half=half, final=final, lines=stats.lines, kinds=stats.ok + stats.failed,
        examples=stats.examples, stderr="", missing=sorted(set(plan.codes) - stats.codes),
    )  # fmt: skip


def run(requests: int, connections: int, seed: int = 1, warmup: int | None = None) -> Result:
    result = soak(requests, connections, seed, warmup)
    result.stderr = _STDERR[0]
    return result


def report(result: Result) -> str:
    mib = 1024
    lines = [
        f"soak: {result.requests} requests from {result.connections} concurrent connections in {result.seconds:.1f} s "
        f"({result.requests / result.seconds:.0f} req/s, checked)",
        f"  ok {result.ok}, failed {result.failed}",
        "  kinds: " + ", ".join(f"{kind} {count}" for kind, count in sorted(result.kinds.items())),
        f"  distinct replies checked: {len(result.lines)} (status lines, faults, 101/444/600); "
        f"codes never asked for: {result.missing or 'none'}",
        f"  server RSS: baseline {result.baseline['VmRSS'] / mib:.1f} MiB, half {result.half['VmRSS'] / mib:.1f} MiB, "
        f"end {result.final['VmRSS'] / mib:.1f} MiB (peak {result.final['VmHWM'] / mib:.1f} MiB); "
        f"growth {result.rss_growth / mib:+.1f} MiB (second half {result.second_half_growth / mib:+.1f} MiB)",
        f"  server open fds: baseline {result.baseline['fds']}, half {result.half['fds']}, end {result.final['fds']}",
        f"  server stderr: {'empty' if not result.stderr.strip() else result.stderr.strip()[:500]}",
    ]
    lines += [f"  failure: {example}" for example in result.examples]
    lines.append("PASS" if result.passed else "FAIL")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result = run(args.requests, args.connections, args.seed)
    print(report(result))
    return 0 if result.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
