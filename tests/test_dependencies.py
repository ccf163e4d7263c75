"""The declared aiohttp range, and what a server does outside it."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import aiohttp

from mockstatus.dependencies import aiohttp_problem, aiohttp_range

ROOT = Path(__file__).resolve().parent.parent


def declared() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (line,) = [d for d in project["dependencies"] if d.startswith("aiohttp")]
    return line


def test_range_is_a_floor_and_the_next_major():
    floor, ceiling = re.fullmatch(r"aiohttp>=([0-9.]+),<([0-9]+)", declared()).groups()
    assert int(ceiling) == int(floor.split(".")[0]) + 1


def test_installed_aiohttp_is_inside_the_range_and_accepted():
    assert aiohttp_range() is not None
    assert aiohttp_problem() is None, aiohttp.__version__


def fake_aiohttp_metadata(where: Path, version: str) -> Path:
    """A dist-info that makes importlib.metadata report another aiohttp release
    (the real module still imports: only the declared version differs)."""
    info = where / f"aiohttp-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: aiohttp\nVersion: {version}\n")
    return where


def serve_beside(path: Path) -> subprocess.CompletedProcess:
    """``mockstatus serve`` with ``path`` first on sys.path (where the fake metadata is)."""
    code = f"import sys; sys.path.insert(0, {str(path)!r}); from mockstatus.cli import main; sys.exit(main(['serve', '--port', '0']))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)


def test_serve_with_an_aiohttp_below_the_floor_is_one_line_and_exit_2(tmp_path):
    floor = ".".join(map(str, aiohttp_range()[0]))
    old = "3.9.5" if floor != "3.9.5" else "3.8.6"
    done = serve_beside(fake_aiohttp_metadata(tmp_path, old))
    assert done.returncode == 2, done
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines == [
        f"mockstatus: error: aiohttp {old} is installed; mockstatus {importlib.metadata.version('mockstatus')} needs {declared()}"
    ]


def test_serve_with_the_next_major_is_refused_too(tmp_path):
    done = serve_beside(fake_aiohttp_metadata(tmp_path, "4.0.0"))
    assert done.returncode == 2 and "aiohttp 4.0.0 is installed" in done.stderr and len(done.stderr.splitlines()) == 1
