"""mockstatus uses aiohttp through its documented public API only.

Read from the package's source (the AST, not a regex over text), so a new
line that reaches into aiohttp fails here before it can break on a patch
release of aiohttp:

* modules: ``aiohttp``, ``aiohttp.web`` and ``aiohttp.abc`` only (no
  ``web_protocol``, ``http_parser``, ``http_exceptions``, ``streams``,
  ``helpers``...), and no imported name that starts with an underscore;
* subclasses: only aiohttp's documented extension points (a response type,
  an access logger);
* no underscore attribute read on anything but ``self``/``cls``: not an
  aiohttp object's, and not one of our own objects' either;
* no parsing of aiohttp's or llhttp's messages: ``http_exceptions`` is refused
  above, and an ``except`` of an aiohttp exception never reads what it caught.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mockstatus"
SOURCES = sorted(PACKAGE.rglob("*.py"))
PUBLIC_MODULES = {"aiohttp", "aiohttp.web", "aiohttp.abc"}
EXTENSION_POINTS = {"StreamResponse", "Response", "AbstractAccessLogger"}


def aiohttp_names(tree: ast.Module) -> set[str]:
    """Local names bound to aiohttp modules or objects in one module."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.startswith("aiohttp")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aiohttp"):
            names |= {a.asname or a.name for a in node.names}
    return names


def problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = []
    local = aiohttp_names(tree)
    where = path.relative_to(PACKAGE.parent)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("aiohttp") and alias.name not in PUBLIC_MODULES:
                    found.append(f"{where}:{node.lineno} imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aiohttp"):
            if node.module not in PUBLIC_MODULES:
                found.append(f"{where}:{node.lineno} imports from {node.module}")
            found += [f"{where}:{node.lineno} imports {a.name}" for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.ClassDef):
            for base in node.bases:
                text = ast.unparse(base)
                root = text.split(".")[0]
                if root in local and text.split(".")[-1] not in EXTENSION_POINTS:
                    found.append(f"{where}:{node.lineno} class {node.name} subclasses {text}")
        elif isinstance(node, ast.Attribute):
            private = node.attr.startswith("_") and not node.attr.startswith("__")
            if private and ast.unparse(node.value) not in ("self", "cls"):
                found.append(f"{where}:{node.lineno} reads {ast.unparse(node)}")
        elif isinstance(node, ast.ExceptHandler) and node.type is not None and node.name:
            caught = ast.unparse(node.type)
            if any(part.split(".")[0] in local for part in caught.strip("()").split(", ")):
                for inner in ast.walk(ast.Module(body=node.body, type_ignores=[])):
                    if isinstance(inner, ast.Name) and inner.id == node.name:
                        found.append(f"{where}:{inner.lineno} reads the aiohttp exception {caught} it caught")
                        break
    return found


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(PACKAGE.parent)) for p in SOURCES])
def test_module_uses_only_the_public_api_of_aiohttp(path):
    assert problems(path) == []


def test_the_checks_catch_what_they_look_for(tmp_path):
    """Each rule fires on a line that breaks it (so an empty result above means something)."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from aiohttp import web\n"
        "from aiohttp.web_protocol import RequestHandler\n"
        "from aiohttp.http_exceptions import BadHttpMethod\n"
        "import aiohttp.http_parser\n"
        "from aiohttp import _private\n"
        "class H(web.RequestHandler): pass\n"
        "class R(web.StreamResponse): pass\n"
        "def f(request):\n"
        "    request._transport_peername\n"
        "    try:\n"
        "        pass\n"
        "    except web.HTTPException as exc:\n"
        "        print(exc.text)\n"
    )
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path
    try:
        found = problems(bad)
    finally:
        PACKAGE = saved
    assert [line.split(" ", 1)[1] for line in found] == [
        "imports from aiohttp.web_protocol",
        "imports from aiohttp.http_exceptions",
        "imports aiohttp.http_parser",
        "imports _private",
        "class H subclasses web.RequestHandler",
        "reads request._transport_peername",
        "reads the aiohttp exception web.HTTPException it caught",
    ]
