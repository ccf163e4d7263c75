"""The Makefile as a newcomer meets it: the Python check, a venv made by a wrong
Python, and ``make run`` on a fresh copy of the repository."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def make(*args: str, cwd: Path = ROOT, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOCKSTATUS_", "VIRTUAL_ENV", "MAKE"))}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)  # fmt: skip


def test_a_missing_python_is_one_line_and_exit_2(tmp_path):
    done = make("python", "PYTHON=/nonexistent/python3", f"VENV={tmp_path / 'venv'}")
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if not line.startswith("make:")]
    assert lines == [
        "mockstatus needs Python 3.11 or newer; /nonexistent/python3 is missing: run make PYTHON=python3.12 python"
    ]
    assert not (tmp_path / "venv").exists()


def test_a_venv_made_by_a_wrong_python_is_rebuilt(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    old = venv / "bin" / "python"
    old.write_text("#!/bin/sh\nexit 1\n")  # what a Python 3.10 answers to the version check
    old.chmod(0o755)
    done = make("python", f"VENV={venv}")
    assert done.returncode == 0, done.stderr
    assert f"rebuilding {venv}: it was made by another Python" in done.stdout
    check = subprocess.run([str(venv / "bin" / "python"), "-c", "import sys; print(sys.version_info >= (3, 11))"],
                           capture_output=True, text=True, timeout=30)  # fmt: skip
    assert check.stdout.strip() == "True"


@pytest.mark.slow
def test_make_run_on_a_fresh_copy_serves_in_one_step_without_warnings(tmp_path):
    """Only what serving needs is installed (no test tools), and nothing warns."""
    copy = tmp_path / "repo"
    copy.mkdir()
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOCKSTATUS_", "VIRTUAL_ENV", "MAKE"))}
    proc = subprocess.Popen(["make", "--no-print-directory", "run", "ARGS=--port 0"], cwd=copy, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)  # fmt: skip
    output: list[str] = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
            if not ready:
                break
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if line.startswith("mockstatus listening on"):
                break
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    text = "".join(output)
    assert output and output[-1].startswith("mockstatus listening on http://127.0.0.1:"), text
    # pip's own notes about this machine's pip.conf (a configured local index
    # that lacks a package) are the machine's, not the project's.
    ours = [line for line in output if not line.startswith("WARNING: Location 'file://")
            and not line.startswith("warning: location 'file://")]  # fmt: skip
    assert not [line for line in ours if "warn" in line.lower() or "deprecat" in line.lower()], text
    installed = subprocess.run([str(copy / ".venv" / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                               capture_output=True, text=True, timeout=60).stdout.lower()  # fmt: skip
    assert "mockstatus==" in installed
    assert not [
        tool for tool in ("pytest", "playwright", "hypothesis", "httpx", "ruff") if f"\n{tool}==" in "\n" + installed
    ]
