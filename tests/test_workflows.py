"""The GitHub workflows and the composite action: their shape, and the action's
script run for real (it is what a CI job runs to get a healthy server)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from wire import free_port

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
ACTION = ROOT / ".github" / "actions" / "mockstatus"


def load(path: Path) -> dict:
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps(job: dict) -> list[dict]:
    return job["steps"]


def test_ci_runs_the_same_gate_and_a_python_matrix():
    ci = load(WORKFLOWS / "ci.yml")
    gate = " ".join(step.get("run", "") for step in steps(ci["jobs"]["gate"]))
    assert ".ci/run" in gate
    matrix = ci["jobs"]["python"]["strategy"]["matrix"]
    declared = "3.11"  # requires-python's floor
    assert declared in matrix["python"] and len(matrix["python"]) >= 3
    assert matrix["aiohttp"] == ["newest", "floor"]
    floor_step = next(s for s in steps(ci["jobs"]["python"]) if s.get("if") == "matrix.aiohttp == 'floor'")
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    floor = pyproject.split('"aiohttp>=', 1)[1].split(",", 1)[0]
    assert f"aiohttp=={floor}" in floor_step["run"]


def test_release_publishes_with_trusted_publishing_and_a_multi_arch_image_with_provenance():
    release = load(WORKFLOWS / "release.yml")
    assert release["on"] == {"push": {"tags": ["v*.*.*"]}}
    jobs = release["jobs"]
    assert jobs["pypi"]["permissions"] == {"id-token": "write"}
    assert any(s.get("uses", "").startswith("pypa/gh-action-pypi-publish@") for s in steps(jobs["pypi"]))
    assert not any("password" in s.get("with", {}) for s in steps(jobs["pypi"]))  # no token: trusted publishing
    push = next(s for s in steps(jobs["image"]) if s.get("uses", "").startswith("docker/build-push-action@"))
    assert push["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert push["with"]["provenance"] == "mode=max" and push["with"]["sbom"] is True
    login = next(s for s in steps(jobs["image"]) if s.get("uses", "").startswith("docker/login-action@"))
    assert login["with"]["registry"] == "ghcr.io"


@pytest.mark.slow
def test_the_composite_action_starts_a_healthy_server_and_exports_its_url(tmp_path):
    action = load(ACTION / "action.yml")
    assert action["runs"]["using"] == "composite"
    [step] = action["runs"]["steps"]
    assert step["run"] == "${{ github.action_path }}/start.sh"
    port = free_port()
    env_file, output_file = tmp_path / "env", tmp_path / "output"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOCKSTATUS_", "VIRTUAL_ENV", "PYTHON"))}
    env.update(
        RUNNER_TEMP=str(tmp_path), GITHUB_ENV=str(env_file), GITHUB_OUTPUT=str(output_file),
        MOCKSTATUS_SPEC=str(ROOT), MOCKSTATUS_ACTION_PORT=str(port), MOCKSTATUS_ACTION_ARGS="--access-log",
        PATH=f"{Path(sys.executable).parent}:{env['PATH']}",
    )  # fmt: skip
    done = subprocess.run([str(ACTION / "start.sh")], env=env, capture_output=True, text=True, timeout=600)
    pid = int((tmp_path / "mockstatus-venv.pid").read_text())
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        url = f"http://127.0.0.1:{port}"
        assert env_file.read_text() == f"MOCKSTATUS_URL={url}\n"
        assert output_file.read_text() == f"url={url}\n"
        with urllib.request.urlopen(f"{url}/status/203", timeout=5) as reply:
            assert reply.status == 203
    finally:
        os.kill(pid, signal.SIGTERM)
