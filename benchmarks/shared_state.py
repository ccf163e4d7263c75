"""Throughput with the state in memory and in Redis: /status/200 (never touches the store) and a
sequence request (one store round trip each), in one run.

    python benchmarks/shared_state.py [--duration 5] [--connections 64]

Uses wrk against one server process per store, and a redis-server of its own
(Debian's, on a free port, no persistence) for ``--state redis://``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time

from _common import ensure_wrk, free_port, start_listening, stop, wait_http
from throughput import wrk

CASES = (
    ("/status/200", "/status/200"),
    ("/sequence/b/200,204?cycle=true", "/sequence/b/200,204?cycle=true"),
)


def start_redis(where: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*argv, "--dir", where], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
        if time.monotonic() > deadline:
            raise SystemExit("redis-server did not start")
        time.sleep(0.05)
    return process, port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    binary = ensure_wrk()
    if binary is None or shutil.which("redis-server") is None:
        print("needs wrk and redis-server (apt-get install wrk redis-server)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as where:
        redis, redis_port = start_redis(where)
        try:
            results = {}
            for state in ("memory", f"redis://127.0.0.1:{redis_port}/0"):
                process, base, _, _ = start_listening("--state", state)
                try:
                    wait_http(base + "/__mockstatus/health")
                    for label, path in CASES:
                        results[(state, label)] = wrk(binary, base + path, None, args.duration, args.connections)
                finally:
                    stop(process)
        finally:
            stop(redis)
    print(f"{'case':36} {'state':8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for (state, label), figures in results.items():
        shown = state.partition(":")[0]
        print(f"{label:36} {shown:8} {figures['rps']:9.0f} {figures['p50']:8.2f} {figures['p99']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
