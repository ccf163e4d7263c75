"""CPU instructions per request, counted by valgrind's callgrind: a figure a
loaded machine does not move, unlike req/s.

For each server (a bare aiohttp hello-world, aiohttp sending the bytes of
``/status/200``, and mockstatus), one client sends sequential keep-alive
``GET`` requests with the same head, as a client repeats it; the counters are
reset after a warm-up, dumped after the run, and the user-space instruction
total is divided by the count.  Needs ``valgrind`` (``apt-get install
valgrind``); each server runs about 50 times slower under it.

    .venv/bin/python benchmarks/instructions.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, free_port  # noqa: E402

WARM_UP = 100


def head(path: str, port: int) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: python-requests/2.32.3\r\n"
        "Accept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n"
    ).encode()


def exchange(sock: socket.socket, request: bytes, count: int) -> None:
    for _ in range(count):
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        top, _, body = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", top).group(1))
        while len(body) < length:
            body += sock.recv(65536)


def count(label: str, command: list[str], path: str, requests: int) -> int:
    port = free_port()
    with tempfile.TemporaryDirectory() as out:
        dump = Path(out) / "callgrind.out"
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={dump}.%p", *command, str(port)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    sock = socket.create_connection(("127.0.0.1", port))
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            request = head(path, port)
            with sock:
                exchange(sock, request, WARM_UP)
                subprocess.run(["callgrind_control", "--zero", str(server.pid)], capture_output=True, check=True)
                exchange(sock, request, requests)
                subprocess.run(["callgrind_control", "--dump", str(server.pid)], capture_output=True, check=True)
            (dumped,) = [p for p in Path(out).iterdir() if p.name.endswith(".1")]
            total = int(re.search(r"^totals: (\d+)", dumped.read_text(), re.M).group(1))
        finally:
            server.kill()
            server.wait()
    per_request = total // requests
    print(f"{label:40} {per_request / 1000:8.0f}k", flush=True)
    return per_request


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    python = sys.executable
    print(f"{'server':40} {'instructions per request':>10}")
    count("aiohttp hello-world", [python, "benchmarks/hello_aiohttp.py"], "/", args.requests)
    count("aiohttp, same bytes as /status/200", [python, "benchmarks/hello_aiohttp.py"], "/same/200", args.requests)
    count("mockstatus /status/200", [python, "-m", "mockstatus", "serve", "--port"], "/status/200", args.requests)
    return 0


if __name__ == "__main__":
    sys.exit(main())
