"""The examples in README.md and docs/*.md, run against a live server.

How a README example is marked (an HTML comment, invisible on GitHub, right
before a fenced block):

``<!-- example -->``
    A ``console`` block.  Each ``$ `` line is a command, ``curl ...`` or
    ``mockstatus ...`` (optionally after ``NAME=value`` env assignments; no
    pipes).  ``localhost:8080`` / ``127.0.0.1:8080`` mean the test server.
    The lines after a command, up to the next ``$ ``, are its output: the first
    one must be the first line printed (the status line for ``curl -i``), the
    others must follow in this order; ``...`` stands for lines left out, and a
    line ending in `` ...`` only has to start with the text before it.  The
    command must exit 0, or 2 when it shows ``mockstatus: error:``.
``<!-- example file: NAME -->``
    The block is a file that examples use (written to ``NAME`` in the
    examples' working directory).
``<!-- example config: NAME -->``
    Like ``example``, with the server started with ``--config NAME``.

The per-code table is checked too: every ``Name: value`` it shows is a header
the code sends, and every "no `Name`" is one it does not send.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# README first, then the docs pages: each page's examples, in the order it shows them.
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"^<!-- example(?: (file|config): (\S+))? -->$")
ADDRESSES = ("localhost:8080", "127.0.0.1:8080")


@dataclasses.dataclass
class Block:
    line: int  # 1-based line of the opening fence
    kind: str  # "example", "file" or "config"
    name: str | None
    text: str
    page: str = "README.md"  # the file, relative to the repository

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def marked_blocks() -> list[Block]:
    blocks = []
    for path in PAGES:
        page = str(path.relative_to(ROOT))
        lines = path.read_text(encoding="utf-8").splitlines()
        for index, line in enumerate(lines):
            match = MARKER.match(line.strip())
            if not match:
                continue
            start = index + 1
            assert start < len(lines) and lines[start].startswith("```"), f"{page}:{index + 1}: marker without a block"
            end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("```"))
            text = "\n".join(lines[start + 1 : end])
            blocks.append(Block(start + 1, match.group(1) or "example", match.group(2), text, page))
    return blocks


BLOCKS = marked_blocks()
EXAMPLES = [b for b in BLOCKS if b.kind in ("example", "config")]
FILES = {b.name: b.text + "\n" for b in BLOCKS if b.kind == "file"}


def commands(block: Block) -> list[tuple[str, list[str]]]:
    """(command, expected output lines) pairs."""
    found: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            found.append((line[2:], []))
        else:
            assert found, f"{block.where}: output before the first command"
            found[-1][1].append(line)
    assert found, f"{block.where}: an example without a command"
    return found


def run_command(command: str, server, cwd: Path) -> subprocess.CompletedProcess:
    address = f"{server.host}:{server.port}"
    words = shlex.split(command)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKSTATUS_")}
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    assert "|" not in words, f"no pipes in README examples: {command}"
    words = [_at(word, address) for word in words]
    if words[0] == "curl":
        if shutil.which("curl") is None:
            if os.environ.get("CI") == "true":
                pytest.fail("curl is missing; .ci/run installs it", pytrace=False)
            pytest.skip("curl is not installed (apt-get install curl)")
        argv = words
    elif words[0] == "mockstatus":
        argv = [sys.executable, "-m", "mockstatus", *words[1:]]
        env.setdefault("MOCKSTATUS_PORT", str(server.port))  # `mockstatus health` asks this server
    else:
        raise AssertionError(f"unsupported command in a README example: {command}")
    return subprocess.run(argv, capture_output=True, cwd=cwd, env=env, timeout=30)


def _at(text: str, address: str) -> str:
    for placeholder in ADDRESSES:
        text = text.replace(placeholder, address)
    return text


def matches(got: str, shown: str) -> bool:
    return got.startswith(shown[:-4]) if shown.endswith(" ...") else got == shown


def assert_output(command: str, expected: list[str], output: str, address: str) -> None:
    got = output.replace("\r\n", "\n").split("\n")
    wanted = [_at(line, address) for line in expected if line.strip() != "..."]
    if not wanted:
        return
    assert matches(got[0], wanted[0]), f"$ {command}\nfirst line: {got[0]!r}, README shows {wanted[0]!r}"
    position = 1
    for line in wanted[1:]:
        while position < len(got) and not matches(got[position], line):
            position += 1
        assert position < len(got), f"$ {command}\nREADME shows {line!r}; not found (in order) in:\n{output}"
        position += 1


@pytest.fixture
def workdir(tmp_path):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("block", EXAMPLES, ids=[b.where for b in EXAMPLES])
def test_readme_example(block, mockstatus, make_mockstatus, workdir):
    server = make_mockstatus(config=str(workdir / block.name)) if block.kind == "config" else mockstatus
    for command, expected in commands(block):
        done = run_command(command, server, workdir)
        output = done.stdout.decode("utf-8") + done.stderr.decode("utf-8")
        failed = "mockstatus: error:" in "\n".join(expected)
        assert done.returncode == (2 if failed else 0), f"$ {command}\nexit {done.returncode}\n{output}"
        assert_output(command, expected, output, f"{server.host}:{server.port}")


def test_examples_are_marked():
    """The sections that promise examples have them (a marker lost in an edit would skip them silently)."""
    sections = {b.where for b in EXAMPLES}
    assert len(EXAMPLES) >= 6 and len(sections) == len(EXAMPLES)
    for block in BLOCKS:
        if block.kind == "config":
            assert block.name in FILES, f"{block.where}: config {block.name} has no file block"


# --- the per-code table ---------------------------------------------------------------

HEADER = re.compile(r"`([A-Za-z][A-Za-z0-9-]*): ([^`]+)`")
ABSENT = re.compile(r"\bno `([A-Za-z][A-Za-z0-9-]*)`")


def semantics_rows() -> list[tuple[list[int], str]]:
    section = (ROOT / "docs" / "codes.md").read_text(encoding="utf-8")
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 2 and re.fullmatch(r"[0-9]{3}(, [0-9]{3})*", cells[0]):
            rows.append(([int(code) for code in cells[0].split(", ")], cells[1]))
    return rows


ROWS = semantics_rows()


def test_the_table_has_the_issues_rows():
    codes = {code for row_codes, _ in ROWS for code in row_codes}
    assert {201, 204, 205, 300, 301, 302, 303, 304, 305, 307, 308, 401, 405, 407, 416, 426, 429, 503} <= codes


@pytest.mark.parametrize("codes,text", ROWS, ids=[", ".join(map(str, c)) for c, _ in ROWS])
def test_per_code_table_matches_the_server(mockstatus, codes, text):
    shown = HEADER.findall(text)
    absent = ABSENT.findall(text)
    assert shown or absent, text
    for code in codes:
        response = requests.get(mockstatus.url(f"/status/{code}"), allow_redirects=False, timeout=5)
        assert response.status_code == code
        for name, value in shown:
            assert value in [v.strip() for v in response.raw.headers.getlist(name)], (code, name, value)
        for name in absent:
            assert name not in response.headers, (code, name)
