"""Held connections: N concurrent requests waiting in a long delay; print the server's memory.

    .venv/bin/python benchmarks/held_connections.py [--connections 10000] [--delay 60s]

Starts ``mockstatus`` itself as a subprocess (uvloop, its open-files limit
raised), opens N connections with plain asyncio sockets (a cheap client:
``open_connection`` and one written request each), each asking for
``/status/200?delay=<delay>``.  With ``--baseline`` it first does the same
to a bare aiohttp handler that only sleeps (benchmarks/hello_aiohttp.py,
``/held``): what aiohttp and uvloop alone cost per held request, which no
server built on them can go below.  While they are all held it samples the
server's RSS from /proc/<pid>/status and times ``/status/200`` on a new
connection; when the delay is over it checks that every request got its
200 no earlier than asked.  Prints the peak RSS (VmHWM), KiB per held
connection and the /status/200 latency.  Targets (issue 4): 10,000 held with
RSS <= 150 MiB and /status/200 answered in < 50 ms meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import client_loop_factory, start_hello_aiohttp, start_listening  # noqa: E402

from mockstatus.durations import format_seconds, parse_duration  # noqa: E402

REQUEST = "GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n"
PROBE = b"GET /status/200 HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
BASELINE_PROBE = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


def raise_nofile(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(needed, soft)
    if target < needed:
        raise SystemExit(f"need {needed} open files, the hard limit is {hard}: raise it (ulimit -Hn) first")
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def file_limit(files: int):
    def limit() -> None:  # runs in the child before exec
        resource.setrlimit(resource.RLIMIT_NOFILE, (files, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    return limit


def start_server(files: int) -> tuple[subprocess.Popen, str, int]:
    process, _, host, port = start_listening(preexec_fn=file_limit(files))
    return process, host, port


def start_baseline(files: int) -> tuple[subprocess.Popen, str, int]:
    process, port = start_hello_aiohttp(preexec_fn=file_limit(files))
    return process, "127.0.0.1", port


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) in KiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


async def probe(host: str, port: int, request: bytes = PROBE) -> float:
    """Seconds from connect to the complete header block of a 200 on a new connection."""
    began = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    elapsed = time.perf_counter() - began
    writer.close()
    if not head.startswith(b"HTTP/1.1 200 "):
        raise SystemExit(f"probe got {head[:40]!r}")
    return elapsed


async def run(
    host: str, port: int, pid: int, count: int, path: str, delay: float, parallel_connects: int, probe_request: bytes
):
    request = REQUEST.format(path=path).encode()
    gate = asyncio.Semaphore(parallel_connects)
    written = 0
    all_written = asyncio.Event()
    outcomes: list[tuple[bool, float]] = []
    writers = []

    async def hold() -> None:
        nonlocal written
        async with gate:
            reader, writer = await asyncio.open_connection(host, port)
        writers.append(writer)
        sent = time.perf_counter()  # before the write: the server may read it before we look at the clock
        writer.write(request)
        written += 1
        if written == count:
            all_written.set()
        head = await reader.readuntil(b"\r\n\r\n")
        outcomes.append((head.startswith(b"HTTP/1.1 200 "), time.perf_counter() - sent))
        writer.close()

    baseline = memory_kib(pid)["VmRSS"]
    began = time.perf_counter()
    tasks = [asyncio.ensure_future(hold()) for _ in range(count)]
    await all_written.wait()
    connect_phase = time.perf_counter() - began
    first_due = began + delay  # no reply may come before this
    # Let the server read the last requests, then sample while they are held.
    await asyncio.sleep(min(1.0, delay / 4))
    probes = []
    samples = []
    while time.perf_counter() < first_due - 1.0 and not outcomes:
        samples.append(memory_kib(pid)["VmRSS"])
        probes.append(await probe(host, port, probe_request))
        await asyncio.sleep(0.5)
    held_while_probing = count - len(outcomes)
    await asyncio.gather(*tasks)
    peak = memory_kib(pid)
    return {
        "baseline": baseline,
        "samples": samples,
        "peak": peak["VmHWM"],
        "connect_phase": connect_phase,
        "probes": probes,
        "held": held_while_probing,
        "outcomes": outcomes,
        "total": time.perf_counter() - began,
    }


def measure(label: str, started, path: str, probe_request: bytes, args, delay: float, loop_factory) -> dict:
    """Hold ``args.connections`` requests for ``path`` on one server; print what it cost."""
    process, host, port = started
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(probe(host, port, probe_request))  # warm the server up once
            result = runner.run(
                run(host, port, process.pid, args.connections, path, delay, args.parallel_connects, probe_request)
            )
    finally:
        process.terminate()
        process.wait(30)

    outcomes = result["outcomes"]
    result["ok"] = sum(1 for good, _ in outcomes if good)
    result["early"] = sum(1 for _, waited in outcomes if waited < delay)
    probes_ms = [p * 1000 for p in result["probes"]]
    result["probes_ms"] = probes_ms
    result["per_held"] = (result["peak"] - result["baseline"]) / args.connections
    print(f"{label}: {args.connections} x {path} ({format_seconds(delay)}), server pid {process.pid}")
    print(
        f"  all requests written in {result['connect_phase']:.2f} s; {result['held']} held at once while probing; "
        f"done in {result['total']:.1f} s"
    )
    soonest = min(waited for _, waited in outcomes) - delay
    print(
        f"  replies: {result['ok']} x 200 of {len(outcomes)}; answered before the delay: {result['early']} "
        f"(soonest {soonest * 1000:+.2f} ms from the delay)"
    )
    print(
        f"  server RSS: {result['baseline'] / MIB:.1f} MiB idle, peak (VmHWM) {result['peak'] / MIB:.1f} MiB, "
        f"{result['per_held']:.2f} KiB per held connection"
    )
    if result["samples"]:
        print(f"  RSS while held (sampled {len(result['samples'])}x): max {max(result['samples']) / MIB:.1f} MiB")
    if probes_ms:
        print(
            f"  a 200 on a new connection meanwhile ({len(probes_ms)} probes): "
            f"median {statistics.median(probes_ms):.2f} ms, max {max(probes_ms):.2f} ms"
        )
    return result


MIB = 1024  # KiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000, help="connections to hold (default 10000)")
    parser.add_argument("--delay", default="60s", help="delay each one waits (default 60s)")
    parser.add_argument("--parallel-connects", type=int, default=256, help="connects in flight at once (default 256)")
    parser.add_argument(
        "--baseline", action="store_true", help="first measure a bare aiohttp handler that only sleeps, for comparison"
    )
    args = parser.parse_args()
    delay = parse_duration(args.delay)
    files = raise_nofile(args.connections + 256)

    loop_factory = client_loop_factory()
    floor = None
    if args.baseline:
        floor = measure(
            "bare aiohttp (hello_aiohttp.py)", start_baseline(files), f"/held?delay={delay}",
            BASELINE_PROBE, args, delay, loop_factory,
        )  # fmt: skip
    result = measure(
        "mockstatus", start_server(files), f"/status/200?delay={args.delay}", PROBE, args, delay, loop_factory
    )
    if floor is not None:
        print(
            f"mockstatus's own cost per held connection, beyond bare aiohttp's: "
            f"{result['per_held'] - floor['per_held']:.2f} KiB"
        )
    if args.connections >= 10_000:
        held_all = result["held"] >= 10_000
        rss_ok = held_all and result["peak"] <= 150 * MIB
        per_held_ok = held_all and result["per_held"] <= 11
        rss_verdict = "met" if rss_ok else "MISSED"
        per_held_verdict = "met" if per_held_ok else "MISSED"
    else:
        rss_verdict = per_held_verdict = f"not checked ({args.connections} connections)"
    latency_ok = bool(result["probes_ms"]) and max(result["probes_ms"]) < 50
    print(
        f"targets: RSS <= 150 MiB with 10,000 held: {rss_verdict}; <= 11 KiB per held connection: {per_held_verdict}; "
        f"/status/200 < 50 ms meanwhile: {'met' if latency_ok else 'MISSED'}"
    )
    return 0 if result["ok"] == args.connections and not result["early"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
