"""The package's layout by job: the kinds table, the heartbeat flag, the layers' imports, the README's module map."""

from __future__ import annotations

import ast
import re
import socket
import time
from pathlib import Path

import httpx
import pytest

from mockstatus.catalog import FAULTS, KIND_NAMES, ConfigError, load_catalog
from mockstatus.kinds import KINDS
from mockstatus.page import browser_view, wire_badges
from mockstatus.runner import serve_in_thread

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mockstatus"


# --- kinds.KINDS ------------------------------------------------------------------------


def test_the_kinds_table_covers_every_kind_the_catalog_accepts():
    assert tuple(KINDS) == KIND_NAMES


@pytest.mark.parametrize("name", KIND_NAMES)
def test_every_kind_that_breaks_or_ends_the_connection_says_so(name):
    kind = KINDS[name]
    assert kind.closes == (name in FAULTS or name in ("close", "headerless"))
    assert kind.fast == (name == "normal")
    assert kind.final == (name != "interim")


def test_the_page_reads_badges_and_browser_views_from_the_table():
    catalog = load_catalog()
    for info in catalog:
        kind = KINDS[info.kind]
        if kind.badge is not None:
            assert kind.badge in wire_badges(info)
        assert browser_view(info) == ("proxy" if info.code == 407 else kind.browser)


# --- the heartbeat flag -----------------------------------------------------------------


def test_102_is_the_shipped_heartbeat_code():
    assert [info.code for info in load_catalog() if info.heartbeat] == [102]


@pytest.mark.parametrize(
    "entry,fragment",
    [({"heartbeat": "yes"}, "codes.103.heartbeat: expected true or false"),
     ({"kind": "close", "heartbeat": True}, "codes.103.heartbeat: only an interim code is repeated")],
    ids=["not-a-bool", "not-interim"],
)  # fmt: skip
def test_bad_heartbeat(entry, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_catalog({"codes": {103: entry}})


def test_an_overlay_that_makes_102_an_upgrade_drops_its_heartbeat():
    assert load_catalog({"codes": {102: {"kind": "upgrade"}}}).get(102).heartbeat is False


@pytest.mark.parametrize("kind", ["normal", "close", "truncate", "reset", "headerless"])
def test_a_final_kind_on_a_1xx_is_a_one_line_config_error(kind):
    with pytest.raises(ConfigError) as caught:
        load_catalog({"codes": {150: {"reason": "Hold On", "kind": kind}}})
    assert str(caught.value) == (
        f"config: codes.150.kind: {kind} would send 150 as a final reply, and a 1xx is never final; "
        "allowed for a 1xx: interim, upgrade"
    )


def test_a_1xx_without_a_kind_in_a_user_file_is_interim(tmp_path):
    path = tmp_path / "codes.yaml"
    path.write_text("codes:\n  150:\n    reason: Hold On\n    then: 202\n")
    info = load_catalog(str(path)).get(150)
    assert (info.kind, info.then) == ("interim", 202)
    with serve_in_thread(str(path)) as server:
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            sock.sendall(b"GET /status/150 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        # httpx (h11) skips an interim reply: the client sees the final one, and does not hang.
        assert httpx.get(server.url("/status/150"), timeout=5).status_code == 202
    assert received.startswith(b"HTTP/1.1 150 Hold On\r\n\r\nHTTP/1.1 202 Accepted\r\n"), received


def test_any_interim_code_can_have_heartbeats():
    with serve_in_thread({"codes": {150: {"reason": "Still Here", "kind": "interim", "heartbeat": True}}}) as server:
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            sock.sendall(b"GET /status/150?delay=250ms&interval=100ms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            received = b""
            deadline = time.monotonic() + 5
            while chunk := sock.recv(65536):
                received += chunk
                assert time.monotonic() < deadline
    heads = received.split(b"\r\n\r\n")
    assert heads[:3] == [b"HTTP/1.1 150 Still Here"] * 3
    assert heads[3].startswith(b"HTTP/1.1 200 OK\r\n")


# --- the layers -------------------------------------------------------------------------


def package_imports() -> dict[str, set[str]]:
    """Each module's imports of other package modules (not those under TYPE_CHECKING)."""
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                node.body = []
        found = edges.setdefault(path.stem, set())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                found.update([node.module] if node.module else [alias.name for alias in node.names])
    return {name: {m for m in found if (PACKAGE / f"{m}.py").exists()} for name, found in edges.items()}


def test_the_package_has_no_import_cycles():
    edges = package_imports()
    edges["__init__"].discard("runner")  # the lazy re-export of serve_in_thread
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name not in done:
            for other in sorted(edges.get(name, ())):
                visit(other, (*path, name))
            done.add(name)

    for name in sorted(edges):
        visit(name, ())


@pytest.mark.parametrize(
    "module,never",
    [("catalog", "settings"), ("protocol", "handlers"), ("kinds", "delivery"), ("bodies", "wire"),
     ("errors", "handlers"), ("wire", "kinds")],
)  # fmt: skip
def test_lower_layers_do_not_import_upper_ones(module, never):
    assert never not in package_imports()[module]


def test_the_readme_names_every_module():
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text[text.index("## Code layout") :]
    named = set(re.findall(r"^\| `[^|]*", section, re.M))
    modules = {name for row in named for name in re.findall(r"`(\w+)\.py`", row)}
    assert modules == {path.stem for path in PACKAGE.glob("*.py")} - {"__init__"}


# --- the handlers that begin themselves -------------------------------------------------


def test_handlers_that_are_not_wrapped_call_begin_first_thing():
    """protocol.tracked leaves these unwrapped: each must tell its connection it
    started before anything else, or the layer never learns its reply is done."""
    from mockstatus.app import BEGIN_THEMSELVES

    assert BEGIN_THEMSELVES
    for handler in BEGIN_THEMSELVES:
        source = Path(handler.__code__.co_filename).read_text(encoding="utf-8")
        function = next(
            node for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.AsyncFunctionDef) and node.name == handler.__name__
        )  # fmt: skip
        body = [
            node for node in function.body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        ]
        first = body[0]
        assert isinstance(first, ast.Expr) and isinstance(first.value, ast.Call), handler.__name__
        call = first.value
        assert ast.unparse(call) == "begin(request)", (handler.__name__, ast.unparse(call))


def test_every_catalog_code_has_a_plain_route(make_mockstatus):
    """/status/NNN for a catalog code is matched without a pattern; other paths still reach the pattern route."""
    from mockstatus.app import make_app

    server = make_mockstatus()
    app = make_app(catalog=server.catalog)
    plain = {resource.canonical for resource in app.router.resources() if "pattern" not in resource.get_info()}
    assert {f"/status/{info.code}" for info in server.catalog} <= plain
    for path, status in (
        ("/status/418", 418),
        ("/status/418/below", 418),
        ("/status/200,200", 200),
        ("/status/99", 400),
    ):
        assert httpx.get(server.url(path)).status_code == status, path


def test_a_user_catalog_code_gets_its_plain_route(tmp_path, make_mockstatus):
    from mockstatus.app import make_app

    path = tmp_path / "mine.yaml"
    path.write_text('codes:\n  799:\n    reason: Custom Oddity\n    body: "odd\\n"\n', encoding="utf-8")
    server = make_mockstatus(config=str(path))
    resources = make_app(catalog=server.catalog).router.resources()
    assert "/status/799" in {resource.canonical for resource in resources if "pattern" not in resource.get_info()}
    reply = httpx.get(server.url("/status/799"))
    assert (reply.status_code, reply.reason_phrase, reply.text) == (799, "Custom Oddity", "odd\n")
    assert httpx.get(server.url("/ns/team/status/799")).status_code == 799  # the pattern route, namespaced
