"""Helpers shared by the benchmark scripts: free ports, starting servers, waiting for health."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 10.0, interval: float = 0.002) -> float:
    """Poll ``url`` until it answers 200; return the seconds waited."""
    start = time.perf_counter()
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return time.perf_counter() - start
        except OSError:
            pass
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"{url} did not answer within {timeout}s")
        time.sleep(interval)


def start_mockstatus(port: int, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mockstatus", "serve", "--port", str(port), *args],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen,
    )  # fmt: skip


def start_listening(*flags: str, **popen) -> tuple[subprocess.Popen, str, str, int]:
    """``mockstatus serve --port 0`` as a subprocess; returns it, its base URL, host and port
    (read from the "mockstatus listening on http://HOST:PORT" line it prints)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mockstatus", "serve", "--port", "0", *flags],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, **popen,
    )  # fmt: skip
    line = process.stdout.readline()
    match = re.search(r"(http://([^:/\s]+):(\d+))", line)
    if match is None:
        process.kill()
        stderr = process.stderr.read() if process.stderr else ""
        raise SystemExit(f"server did not start: {line!r} {stderr}".rstrip())
    return process, match.group(1), match.group(2), int(match.group(3))


def start_hello_aiohttp(**popen) -> tuple[subprocess.Popen, int]:
    """benchmarks/hello_aiohttp.py (the bare aiohttp baselines) on a free port, answering; returns it and the port."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "hello_aiohttp.py"), str(port)], **popen)
    try:
        wait_http(f"http://127.0.0.1:{port}/")
    except RuntimeError:
        process.kill()
        raise
    return process, port


def client_loop_factory():
    """uvloop's event loop for a benchmark's client when it is installed, else asyncio's (None)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional off Linux/macOS
        return None
    return uvloop.new_event_loop


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def ensure_wrk() -> str | None:
    """wrk from Debian (apt package ``wrk``); installed here when running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
        if not shutil.which("wrk"):
            subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
        return shutil.which("wrk")
    print("wrk is not installed: run `sudo apt-get install wrk` (Debian/Ubuntu) and try again", file=sys.stderr)
    return None
