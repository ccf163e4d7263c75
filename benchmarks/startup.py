"""Start-up time: process start to a healthy answer, and the in-thread fixture's start.

python benchmarks/startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from _common import ROOT, free_port, start_mockstatus, stop, wait_http


def process_start(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        port = free_port()
        began = time.perf_counter()
        process = start_mockstatus(port)
        try:
            wait_http(f"http://127.0.0.1:{port}/__mockstatus/health", interval=0.001)
            times.append(time.perf_counter() - began)
        finally:
            stop(process)
    return times


def fixture_start(runs: int) -> tuple[float, list[float]]:
    """The first start in a fresh interpreter (imports included), then warm starts."""
    sys.path.insert(0, str(ROOT))
    began = time.perf_counter()
    from mockstatus.runner import serve_in_thread

    first_server = serve_in_thread()
    wait_http(first_server.url("/__mockstatus/health"), interval=0.001)
    first = time.perf_counter() - began
    first_server.stop()
    warm = []
    for _ in range(runs):
        began = time.perf_counter()
        server = serve_in_thread()
        wait_http(server.url("/__mockstatus/health"), interval=0.001)
        warm.append(time.perf_counter() - began)
        server.stop()
    return first, warm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    proc = process_start(args.runs)
    first, warm = fixture_start(args.runs)
    print(f"{'start-up':<44}{'median':>9}{'max':>9}")
    print(
        f"{'process start -> healthy (python -m mockstatus)':<44}{statistics.median(proc) * 1000:>7.0f}ms{max(proc) * 1000:>7.0f}ms"
    )
    print(f"{'fixture start, first in a fresh interpreter':<44}{first * 1000:>7.0f}ms{first * 1000:>7.0f}ms")
    print(
        f"{'fixture start, warm (serve_in_thread)':<44}{statistics.median(warm) * 1000:>7.0f}ms{max(warm) * 1000:>7.0f}ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
