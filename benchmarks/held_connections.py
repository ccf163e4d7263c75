"""Held connections: N concurrent requests waiting in a long delay; print the server's memory.

    .venv/bin/python benchmarks/held_connections.py [--connections 10000] [--delay 60s]

Starts ``mockstatus`` itself as a subprocess (uvloop, its open-files limit
raised), opens N connections with plain asyncio sockets (a cheap client:
``open_connection`` and one written request each), each asking for
``/status/200?delay=<delay>``.  While they are all held it samples the
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

from _common import start_listening  # noqa: E402

from mockstatus.durations import format_seconds, parse_duration  # noqa: E402

REQUEST = "GET /status/200?delay={delay} HTTP/1.1\r\nHost: bench\r\n\r\n"
PROBE = b"GET /status/200 HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


def raise_nofile(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(needed, soft)
    if target < needed:
        raise SystemExit(f"need {needed} open files, the hard limit is {hard}: raise it (ulimit -Hn) first")
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def start_server(files: int) -> tuple[subprocess.Popen, str, int]:
    def limit() -> None:  # runs in the child before exec
        resource.setrlimit(resource.RLIMIT_NOFILE, (files, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    process, _, host, port = start_listening(preexec_fn=limit)
    return process, host, port


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak) in KiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


async def probe(host: str, port: int) -> float:
    """Seconds from connect to the complete header block of /status/200 on a new connection."""
    began = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(PROBE)
    head = await reader.readuntil(b"\r\n\r\n")
    elapsed = time.perf_counter() - began
    writer.close()
    if not head.startswith(b"HTTP/1.1 200 "):
        raise SystemExit(f"probe got {head[:40]!r}")
    return elapsed


async def run(host: str, port: int, pid: int, count: int, delay_text: str, delay: float, parallel_connects: int):
    request = REQUEST.format(delay=delay_text).encode()
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
        probes.append(await probe(host, port))
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=10_000, help="connections to hold (default 10000)")
    parser.add_argument("--delay", default="60s", help="delay each one waits (default 60s)")
    parser.add_argument("--parallel-connects", type=int, default=256, help="connects in flight at once (default 256)")
    args = parser.parse_args()
    delay = parse_duration(args.delay)
    files = raise_nofile(args.connections + 256)

    try:
        import uvloop

        loop_factory = uvloop.new_event_loop
    except ImportError:
        loop_factory = None

    process, host, port = start_server(files)
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(probe(host, port))  # warm the server up once
            result = runner.run(
                run(host, port, process.pid, args.connections, args.delay, delay, args.parallel_connects)
            )
    finally:
        process.terminate()
        process.wait(30)

    outcomes = result["outcomes"]
    ok = sum(1 for good, _ in outcomes if good)
    early = sum(1 for _, waited in outcomes if waited < delay)
    probes_ms = [p * 1000 for p in result["probes"]]
    mib = 1024
    grown = result["peak"] - result["baseline"]
    print(
        f"held connections: {args.connections} x /status/200?delay={args.delay} ({format_seconds(delay)}), server pid {process.pid}"
    )
    print(
        f"  all requests written in {result['connect_phase']:.2f} s; {result['held']} held at once while probing; "
        f"done in {result['total']:.1f} s"
    )
    soonest = min(waited for _, waited in outcomes) - delay
    print(
        f"  replies: {ok} x 200 of {len(outcomes)}; answered before the delay: {early} "
        f"(soonest {soonest * 1000:+.2f} ms from the delay)"
    )
    print(
        f"  server RSS: {result['baseline'] / mib:.1f} MiB idle, peak (VmHWM) {result['peak'] / mib:.1f} MiB, "
        f"{grown / args.connections:.2f} KiB per held connection"
    )
    if result["samples"]:
        print(f"  RSS while held (sampled {len(result['samples'])}x): max {max(result['samples']) / mib:.1f} MiB")
    if probes_ms:
        print(
            f"  /status/200 on a new connection meanwhile ({len(probes_ms)} probes): "
            f"median {statistics.median(probes_ms):.2f} ms, max {max(probes_ms):.2f} ms"
        )
    if args.connections >= 10_000:
        rss_ok = result["peak"] <= 150 * mib and result["held"] >= 10_000
        rss_verdict = "met" if rss_ok else "MISSED"
    else:
        rss_verdict = f"not checked ({args.connections} connections)"
    latency_ok = bool(probes_ms) and max(probes_ms) < 50
    print(
        f"  target RSS <= 150 MiB with 10,000 held: {rss_verdict}; "
        f"target /status/200 < 50 ms: {'met' if latency_ok else 'MISSED'}"
    )
    return 0 if ok == args.connections and not early else 1


if __name__ == "__main__":
    raise SystemExit(main())
