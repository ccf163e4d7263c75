"""Every benchmark, one command: ``make bench`` (or ``.venv/bin/python benchmarks/run.py``).

Runs, one after another, each starting its own server:
  throughput.py       wrk against /status/200, /status/204, /status/418 (JSON) and
                      /status/200,503 and HTTPS /status/200, beside a bare aiohttp
                      hello-world in the same run
  delay_accuracy.py   1,000 concurrent delay=1s requests: overshoot median/p99/max
  held_connections.py 10,000 connections held in a 60 s delay: peak RSS, KiB each,
                      /status/200 latency meanwhile
  startup.py          process start to healthy, and the in-thread fixture's start
  instructions.py     CPU instructions per /status/200 under valgrind, beside aiohttp
                      (a figure load does not move; needs valgrind)
  shared_state.py     /status/200 and a sequence request with --state memory and with
                      --state redis:// (a redis-server of its own)
  soak.py             200,000 mixed requests from 200 connections, every reply checked;
                      the server's RSS and open fds back to the baseline

``--quick`` shortens each (fewer requests, shorter runs) for a smoke check;
the README's figures come from the full run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = (
    ("throughput.py", []),
    ("delay_accuracy.py", []),
    ("held_connections.py", []),
    ("startup.py", []),
    ("instructions.py", []),
    ("shared_state.py", []),
    ("soak.py", []),
)
QUICK = (
    ("throughput.py", ["--duration", "2"]),
    ("delay_accuracy.py", ["--requests", "200", "--delay", "300ms"]),
    ("held_connections.py", ["--connections", "1000", "--delay", "3s"]),
    ("startup.py", ["--runs", "3"]),
    ("instructions.py", ["--requests", "300"]),
    ("shared_state.py", ["--duration", "2"]),
    ("soak.py", ["--requests", "20000", "--connections", "100"]),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke check")
    parser.add_argument("only", nargs="*", help="run only these scripts (e.g. throughput startup)")
    args = parser.parse_args()
    failed = 0
    for script, script_args in QUICK if args.quick else FULL:
        if args.only and script.removesuffix(".py") not in args.only:
            continue
        print(f"\n== {script} {' '.join(script_args)}".rstrip(), flush=True)
        failed |= subprocess.run([sys.executable, str(HERE / script), *script_args]).returncode
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
