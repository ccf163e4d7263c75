"""Shared fixtures.

The servers come from the project's own pytest plugin (mockstatus/pytest_plugin.py):
``mockstatus`` is the session's server, reset before each test; ``make_mockstatus``
starts one with its own settings or catalog overlay, and ``make_mockstatus_session``
does so for module-scoped fixtures.  Here: ``wheel_venv`` and ``no_server_errors``.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What a wheel is built from: the paths pyproject.toml needs.  The Dockerfile's
# builder stage copies the same ones (tests/test_docker.py checks that).
WHEEL_SOURCES = ("LICENSE", "pyproject.toml", "README.md", "mockstatus", "config")


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _build_wheel_venv(where: Path) -> None:
    src = where / "src"
    src.mkdir(parents=True)
    for name in WHEEL_SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    # Built from a copy, so concurrent builds never write build/ or *.egg-info into the checkout.
    _run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(where / "dist"), str(src)],
        "pip wheel",
    )
    _run([sys.executable, "-m", "venv", str(where / "venv")], "python -m venv")
    (wheel,) = (where / "dist").glob("mockstatus-*.whl")
    _run([str(where / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], "pip install <wheel>")


@pytest.fixture(scope="session")
def wheel_venv(tmp_path_factory):
    """The project as a user or the Docker image gets it: a wheel, installed with
    plain ``pip install <wheel>`` into a fresh venv (no editable install, no test tools).

    Built once per run; xdist workers share the build under a file lock.  Returns a
    namespace with ``wheel``, ``venv``, ``bin`` (the venv's bin/) and ``python``.
    """
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    where = root / "wheel_venv"
    with open(root / "wheel_venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (where / "ok").exists():
            shutil.rmtree(where, ignore_errors=True)
            _build_wheel_venv(where)
            (where / "ok").touch()
    (wheel,) = (where / "dist").glob("mockstatus-*.whl")
    bin_dir = where / "venv" / "bin"
    return types.SimpleNamespace(wheel=wheel, venv=where / "venv", bin=bin_dir, python=bin_dir / "python")


@pytest.fixture
def no_server_errors(caplog):
    """Fail the test if the server logged an error or a traceback.

    Bad input must get a 4xx, never a crash in the log (issue #2, #9); modules
    that send it use this with ``pytestmark = pytest.mark.usefixtures(...)``.
    """
    caplog.set_level(logging.DEBUG, logger="mockstatus")
    caplog.set_level(logging.WARNING)
    yield
    records = caplog.get_records("setup") + caplog.get_records("call")
    loud = [
        r for r in records
        if r.name.startswith(("aiohttp", "mockstatus", "asyncio")) and (r.levelno >= logging.ERROR or r.exc_info)
    ]  # fmt: skip
    assert not loud, [r.getMessage() for r in loud]


@pytest.fixture
def asyncio_loop_server():
    """A server on the standard library's event loop (serve_in_thread uses uvloop)."""
    from mockstatus.runner import start
    from mockstatus.settings import Settings

    loop = asyncio.new_event_loop()
    assert type(loop).__module__.startswith("asyncio")
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    running = asyncio.run_coroutine_threadsafe(start(Settings(host="127.0.0.1", port=0)), loop).result(10)
    yield running
    asyncio.run_coroutine_threadsafe(running.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


LISTENING = re.compile(r"^mockstatus listening on http://127\.0\.0\.1:(\d+)$")


class ServeProcess:
    """``mockstatus serve --port 0`` as a real process: signals, exit codes, file limits."""

    def __init__(self, *flags: str, env: dict | None = None, files: int | None = None) -> None:
        def limit_files() -> None:
            if files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))

        if env is None:
            env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKSTATUS_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mockstatus", "serve", "--port", "0", *flags],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=limit_files,
        )  # fmt: skip
        line = self.proc.stdout.readline().strip()
        match = LISTENING.match(line)
        assert match, (line, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.port = int(match.group(1))

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def sigterm(self) -> float:
        self.proc.send_signal(signal.SIGTERM)
        return time.monotonic()

    def wait(self, timeout: float = 10) -> tuple[int, float]:
        code = self.proc.wait(timeout)
        return code, time.monotonic()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc.stdout.close()
        self.proc.stderr.close()


@pytest.fixture
def process():
    """A factory: ``process(*flags, env=None, files=None)`` starts a ServeProcess, killed after the test."""
    started: list[ServeProcess] = []

    def start(*flags: str, **kwargs) -> ServeProcess:
        started.append(ServeProcess(*flags, **kwargs))
        return started[-1]

    yield start
    for proc in started:
        proc.stop()
