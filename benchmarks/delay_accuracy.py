"""Delay accuracy: fire N concurrent ``?delay=`` requests and print the overshoot.

    .venv/bin/python benchmarks/delay_accuracy.py [--requests 1000] [--delay 1s] [--rounds 1]

Starts ``mockstatus`` itself as a subprocess (uvloop, as in production), opens
the client's connections first (one warm-up request each, kept alive), then
starts every delayed request at once with aiohttp's client and prints the
median, p99 and max of (observed - requested).  "Observed" runs from the
client's ``session.get()`` call to the arrival of the response headers: what
a client's own timer sees, connection set-up excluded.  The client's own work
is included: its requests go out over some tens of milliseconds, so all
replies fall due within that window and queue, in the server and in the
client, on the same two cores.  Target (issue 4): p99 overshoot <= 15 ms.

With ``--baseline`` it first measures a bare aiohttp handler that only
sleeps (``asyncio.sleep``; benchmarks/hello_aiohttp.py, ``/held``) with the
same harness: the floor this harness and machine set, which mockstatus's
figures are read against.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import client_loop_factory, start_hello_aiohttp, start_listening  # noqa: E402

from mockstatus.durations import format_seconds, parse_duration  # noqa: E402


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


async def measure(base_url: str, count: int, delay_text: str, delay: float, rounds: int, *, bare: bool = False):
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=120)
    timeout = aiohttp.ClientTimeout(total=delay + 60)
    # No cookie jar: less work per reply in the client, which shares the CPU with the server.
    jar = aiohttp.DummyCookieJar()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, cookie_jar=jar) as session:
        # Warm-up: open `count` keep-alive connections so the measured requests reuse them.
        async def warm() -> None:
            async with session.get(base_url + ("/held?delay=0.05" if bare else "/status/200?delay=50ms")) as response:
                await response.read()

        await asyncio.gather(*(warm() for _ in range(count)))

        url = f"{base_url}/held?delay={delay}" if bare else f"{base_url}/status/200?delay={delay_text}"
        expected_timing = "" if bare else f"delay;dur={delay * 1000:.0f}"

        async def one() -> tuple[float, float]:
            called = time.perf_counter()
            async with session.get(url) as response:
                arrived = time.perf_counter()
                assert response.status == 200, response.status
                timing = response.headers.get("Server-Timing", "")
                assert timing == expected_timing, timing
                await response.read()
            return called, arrived

        # The client's collector pausing while replies arrive would count as
        # server lateness: collect, then freeze what exists (the session, the
        # connections) so the collections that do happen are short.
        gc.collect()
        gc.freeze()
        results = []
        for _ in range(rounds):
            results.append(await asyncio.gather(*(one() for _ in range(count))))
            await asyncio.sleep(0.2)
    return results


def report(label: str, overshoots_ms: list[float]) -> float:
    p99 = percentile(overshoots_ms, 0.99)
    print(
        f"  {label:<10} median {statistics.median(overshoots_ms):6.2f} ms   p99 {p99:6.2f} ms   "
        f"max {max(overshoots_ms):6.2f} ms   min {min(overshoots_ms):6.2f} ms"
    )
    return p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="concurrent delayed requests (default 1000)")
    parser.add_argument("--delay", default="1s", help="requested delay (default 1s)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the burst on the same connections (default 1)")
    parser.add_argument(
        "--baseline", action="store_true", help="first measure a bare aiohttp handler that only sleeps (the floor)"
    )
    args = parser.parse_args()
    delay = parse_duration(args.delay)

    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it
    except (ImportError, ValueError, OSError):
        pass
    loop_factory = client_loop_factory()

    floor = None
    if args.baseline:
        process, port = start_hello_aiohttp()
        try:
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                bare_rounds = runner.run(
                    measure(f"http://127.0.0.1:{port}", args.requests, args.delay, delay, args.rounds, bare=True)
                )
        finally:
            process.terminate()
            process.wait(10)
        print(f"harness floor: a bare aiohttp handler (asyncio.sleep), {args.requests} x {format_seconds(delay)}")
        bare = [(arrived - called - delay) * 1000 for results in bare_rounds for called, arrived in results]
        print(f"  answered early: {sum(1 for o in bare if o < 0)}")
        floor = report("all rounds", bare)

    process, base_url, _, _ = start_listening()
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            rounds = runner.run(measure(base_url, args.requests, args.delay, delay, args.rounds))
    finally:
        process.terminate()
        process.wait(10)

    print(
        f"delay accuracy: {args.requests} concurrent requests of delay={args.delay} ({format_seconds(delay)}), "
        f"aiohttp client, {os.cpu_count()} CPUs shared by client and server"
    )
    every = []
    for number, results in enumerate(rounds, 1):
        overshoots = [(arrived - called - delay) * 1000 for called, arrived in results]
        every.extend(overshoots)
        spread = (max(c for c, _ in results) - min(c for c, _ in results)) * 1000
        early = sum(1 for o in overshoots if o < 0)
        print(
            f"  round {number}: all answered 200 with Server-Timing delay;dur={delay * 1000:.0f}; "
            f"the client started them over {spread:.1f} ms; answered early: {early}"
        )
        p99 = report("overshoot", overshoots)
    if len(rounds) > 1:
        p99 = report("all rounds", every)
    print(f"  target p99 <= 15 ms: {'met' if p99 <= 15 else 'MISSED'} ({p99:.2f} ms)")
    if floor is not None:
        print(f"  p99 beyond the harness floor's: {p99 - floor:+.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
