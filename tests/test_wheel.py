"""A non-editable install serves the catalog: the wheel, in a fresh venv, outside the checkout.

The ``wheel_venv`` fixture (conftest.py) builds the wheel once per run with
``pip wheel --no-deps`` from a copy of the sources and installs it with plain
``pip install`` into a new venv without system site-packages (pip fetches
aiohttp and pyyaml from PyPI).  Everything here runs with that venv's Python
from a temporary directory, so nothing can come from the checkout.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

import pytest

from mockstatus.catalog import load_catalog

pytestmark = pytest.mark.slow  # builds a wheel and a venv (once per run, shared); still part of `make test`

ROOT = Path(__file__).resolve().parent.parent


def venv_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOCKSTATUS_", "PYTHON", "VIRTUAL_ENV"))}
    return env


def test_wheel_ships_the_catalog_as_package_data(wheel_venv):
    with zipfile.ZipFile(wheel_venv.wheel) as wheel:
        names = wheel.namelist()
        shipped = wheel.read("mockstatus/data/statuses.yaml")
    assert shipped == (ROOT / "config" / "statuses.yaml").read_bytes()
    assert not [n for n in names if n.startswith(("tests/", "config/"))]


def test_installed_package_is_not_the_checkout(wheel_venv, tmp_path):
    probe = "import mockstatus.catalog as c; print(c.__file__); print(c.default_catalog_path())"
    done = subprocess.run([str(wheel_venv.python), "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                          env=venv_env(), timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr
    module, catalog = done.stdout.split()
    venv = str(wheel_venv.venv.resolve())
    assert module.startswith(venv) and catalog.startswith(venv), done.stdout
    assert catalog.endswith("mockstatus/data/statuses.yaml")


def test_installed_server_answers_418(wheel_venv, tmp_path):
    proc = subprocess.Popen([str(wheel_venv.bin / "mockstatus"), "--port", "0"], cwd=tmp_path, env=venv_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "the installed server printed nothing"
        line = proc.stdout.readline().strip()
        assert line.startswith("mockstatus listening on http://127.0.0.1:"), line
        url = line.rsplit(" ", 1)[1]
        try:
            urllib.request.urlopen(url + "/status/418", timeout=5)
        except urllib.error.HTTPError as reply:
            assert (reply.code, reply.reason) == (418, "I'm a teapot")
            assert reply.headers["X-More-Info"] == "https://www.rfc-editor.org/rfc/rfc2324"
            assert reply.read() == b"I'm a teapot\n"
        else:
            raise AssertionError("/status/418 answered 2xx")
        with urllib.request.urlopen(url + "/__mockstatus/codes", timeout=5) as response:
            served = json.load(response)["codes"]
        assert served == [info.as_json() for info in load_catalog()]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_wheel_ships_the_license_and_declares_it_as_spdx(wheel_venv):
    with zipfile.ZipFile(wheel_venv.wheel) as wheel:
        names = wheel.namelist()
        (license_name,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        shipped = wheel.read(license_name)
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = wheel.read(metadata_name).decode()
    assert shipped == (ROOT / "LICENSE").read_bytes()
    assert "License-Expression: MIT" in metadata.splitlines()
    assert "License-File: LICENSE" in metadata.splitlines()
    # PEP 639: no License classifier beside the expression (setuptools warns about one).
    assert "Classifier: License ::" not in metadata


def test_sdist_ships_the_license_without_setuptools_warnings(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("LICENSE", "pyproject.toml", "README.md"):
        (src / name).write_bytes((ROOT / name).read_bytes())
    for name in ("mockstatus", "config"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    done = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--outdir", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Deprecat" not in done.stdout + done.stderr, (done.stdout + done.stderr)[-2000:]
    (sdist,) = (tmp_path / "dist").glob("mockstatus-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    assert any(name.endswith("/LICENSE") and name.count("/") == 1 for name in names), names
