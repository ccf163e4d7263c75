"""The pytest plugin (``mockstatus`` fixtures), run inside real pytest sessions.

Each test writes a small test suite into a temporary directory and runs it
with pytest's own ``pytester``: the plugin is loaded the way a user's suite
loads it, through the ``pytest11`` entry point.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import aiohttp  # noqa: F401 - imported before pytester runs, see below
import httpx  # noqa: F401
import pytest
import requests
import urllib3  # noqa: F401

import mockstatus.runner  # noqa: F401 - the same: the server's modules, imported once

pytest_plugins = ["pytester"]

# pytester's in-process runs drop the modules they imported when they finish;
# a client library first imported inside one would later be half re-imported
# (requests then fails with "You can only merge into CookieJar"; a second copy
# of mockstatus.server gives the app a key its handlers do not know).
# Importing them here, before any run, keeps one copy of each.

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tests" / "examples"


@pytest.fixture
def pytester(pytester):
    # pytest-asyncio warns in every run without it.
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_the_plugin_is_registered_through_the_entry_point(pytester):
    pytester.makepyfile(
        """
        def test_fixture_is_there(mockstatus):
            assert mockstatus.base_url.startswith("http://127.0.0.1:")
        """
    )
    result = pytester.runpytest("--trace-config", "-q")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*mockstatus*pytest_plugin*"])


SYNC_CLIENTS = """
    import subprocess
    import urllib.request

    import requests
    import urllib3


    def test_requests(mockstatus):
        response = requests.get(mockstatus.url("/status/418"))
        assert (response.status_code, response.reason) == (418, "I'm a teapot")
        assert mockstatus.requests()[0]["path"] == "/status/418"


    def test_urllib3(mockstatus):
        response = urllib3.PoolManager().request("GET", mockstatus.url("/status/503"), retries=False)
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"


    def test_curl_in_a_subprocess(mockstatus):
        out = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", mockstatus.url("/status/204")],
            capture_output=True, text=True, check=True,
        ).stdout
        assert out == "204"
        assert [e["status"] for e in mockstatus.requests()] == [204]


    def test_urllib_from_the_standard_library(mockstatus):
        with urllib.request.urlopen(mockstatus.url("/status/200")) as response:
            assert response.status == 200
"""

ASYNC_CLIENTS = """
    import aiohttp
    import httpx
    import pytest


    {marker}
    async def test_httpx_async_client(mockstatus):
        async with httpx.AsyncClient(base_url=mockstatus.base_url) as client:
            response = await client.get("/status/429")
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "1"
        assert mockstatus.requests(path="/status/429")[0]["status"] == 429


    {marker}
    async def test_aiohttp_client(mockstatus):
        async with aiohttp.ClientSession() as session:
            async with session.get(mockstatus.url("/sequence/s/503,200")) as first:
                assert first.status == 503
            async with session.get(mockstatus.url("/sequence/s/503,200")) as second:
                assert second.status == 200
        assert [e["step"] for e in mockstatus.requests(sequence="s")] == [1, 2]
"""


def test_sync_clients_reach_the_session_server(pytester):
    pytester.makepyfile(SYNC_CLIENTS)
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=4)


@pytest.mark.parametrize(
    ("mode", "marker"),
    [("auto", ""), ("strict", "@pytest.mark.asyncio")],
    ids=["asyncio_mode=auto", "asyncio_mode=strict"],
)
def test_async_clients_reach_the_session_server(pytester, mode, marker):
    # The server has its own loop in its own thread, so a test's loop (from
    # pytest-asyncio, which pytest-aiohttp builds on) only ever holds clients.
    pytester.makeini(f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(ASYNC_CLIENTS.format(marker=marker))
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=2)


def test_each_test_starts_with_an_empty_journal_and_no_sequences(pytester):
    pytester.makepyfile(
        """
        import requests

        def test_first_leaves_state_behind(mockstatus):
            assert requests.get(mockstatus.url("/sequence/pay/503,200")).status_code == 503
            assert requests.get(mockstatus.url("/status/404")).status_code == 404
            assert len(mockstatus.requests()) == 2

        def test_second_sees_none_of_it(mockstatus):
            assert mockstatus.requests() == []
            assert requests.get(mockstatus.url("/__mockstatus/sequences")).json() == {"sequences": {}}
            # The sequence starts over, and a different code list is no conflict.
            assert requests.get(mockstatus.url("/sequence/pay/500,200")).status_code == 500

        def test_same_server_for_the_whole_session(mockstatus_server, mockstatus):
            assert mockstatus is mockstatus_server
        """
    )
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=3)


def test_reset_inside_a_test(mockstatus):
    requests.get(mockstatus.url("/sequence/r/503,200"))
    mockstatus.reset()
    assert mockstatus.requests() == []
    assert requests.get(mockstatus.url("/sequence/r/503,200")).headers["X-Mockstatus-Step"] == "1"


def test_requests_filters_by_status_like_the_journal_route(mockstatus):
    for code in (503, 503, 200):
        requests.get(mockstatus.url(f"/status/{code}"), timeout=5)
    assert [e["status"] for e in mockstatus.requests(status=503)] == [503, 503]
    assert [e["status"] for e in mockstatus.requests(status="200", method="get")] == [200]


def test_an_unknown_filter_is_a_type_error_in_the_tests_own_frame(mockstatus):
    with pytest.raises(
        TypeError, match=r"unknown filter 'code'; allowed: path, method, sequence, since, status"
    ) as caught:
        mockstatus.requests(code=503)
    # Raised in this thread, by requests() itself: no frame from the server's thread.
    assert caught.traceback[-1].name == "requests" and caught.traceback[-2].name == caught.traceback[0].name
    with pytest.raises(TypeError, match=r"bad status '5xx'"):
        mockstatus.requests(status="5xx")


def test_wait_for_requests_returns_once_a_background_request_arrived(mockstatus):
    url = mockstatus.url("/status/202?from=thread")
    timer = threading.Timer(0.1, lambda: requests.post(url, timeout=5))
    timer.start()
    try:
        found = mockstatus.wait_for_requests(method="POST", timeout=5)
    finally:
        timer.join()
    assert [(e["method"], e["path"], e["query"], e["status"]) for e in found] == [
        ("POST", "/status/202", "from=thread", 202)
    ]


def test_wait_for_requests_fails_naming_what_did_arrive(mockstatus):
    requests.get(mockstatus.url("/status/200?x=1"), timeout=5)
    with pytest.raises(AssertionError) as caught:
        mockstatus.wait_for_requests(count=2, timeout=0.2, status=200)
    assert str(caught.value) == (
        "waited 0.2s for 2 request(s) matching status=200; 1 matched, 1 in the journal:\n  GET /status/200?x=1 -> 200"
    )


def test_host_is_the_bare_address_and_url_brackets_ipv6(make_mockstatus):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = make_mockstatus(host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    assert server.host == "::1"
    assert server.url("/status/418") == f"http://[::1]:{server.port}/status/418"
    with socket.create_connection((server.host, server.port), timeout=5):
        pass
    assert requests.get(server.url("/status/418"), timeout=5).status_code == 418


def test_mockstatus_config_override_with_a_dict(pytester):
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def mockstatus_config():
            return {
                "codes": {
                    418: {"reason": "Short And Stout", "headers": {"X-Tea": "earl grey"}},
                    299: {"reason": "Our Own Code", "body": "ours"},
                },
                "server": {"journal_size": 2},
            }
        """
    )
    pytester.makepyfile(
        """
        import requests

        def test_overlay_is_served(mockstatus):
            teapot = requests.get(mockstatus.url("/status/418"))
            assert (teapot.status_code, teapot.reason, teapot.headers["X-Tea"]) == (418, "Short And Stout", "earl grey")
            ours = requests.get(mockstatus.url("/status/299"))
            assert (ours.reason, ours.text) == ("Our Own Code", "ours")
            requests.get(mockstatus.url("/status/200"))
            # server: journal_size from the same dict
            assert [e["path"] for e in mockstatus.requests()] == ["/status/299", "/status/200"]
        """
    )
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=1)


def test_mockstatus_config_override_with_a_yaml_path(pytester):
    config = pytester.makefile(
        ".yaml",
        mockstatus="""
        codes:
          503:
            headers:
              Retry-After: "7"
          420:
            reason: Enhance Your Calm
        server:
          max_delay: 0.2
        """,
    )
    pytester.makeconftest(
        f"""
        import pytest

        @pytest.fixture(scope="session")
        def mockstatus_config():
            return {str(config)!r}
        """
    )
    pytester.makepyfile(
        """
        import requests

        def test_yaml_overlay_is_served(mockstatus):
            assert requests.get(mockstatus.url("/status/503")).headers["Retry-After"] == "7"
            assert requests.get(mockstatus.url("/status/420")).reason == "Enhance Your Calm"
            too_long = requests.get(mockstatus.url("/status/200?delay=1s"))
            assert too_long.status_code == 400 and "delay" in too_long.text
        """
    )
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=1)


def test_a_bad_mockstatus_config_fails_setup_with_the_config_error(pytester):
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def mockstatus_config():
            return {"codes": {"2_00": {"reason": "Nope"}}}
        """
    )
    pytester.makepyfile("def test_x(mockstatus):\n    pass\n\ndef test_y(mockstatus):\n    pass\n")
    result = pytester.runpytest("-q")
    result.assert_outcomes(errors=2)
    line = "mockstatus_config: config: codes: bad code '2_00': expected exactly three ASCII digits from 100 to 999"
    result.stdout.fnmatch_lines(["*ERROR at setup of test_x*", line, "*ERROR at setup of test_y*", line])
    # Once per test, one line each: no chained ConfigError, no traceback into mockstatus.
    # (the short summary repeats each error's message; with CI set, pytest prints it whole)
    assert result.stdout.lines.count(line) == 2  # one per test
    assert "During handling" not in result.stdout.str() and "Traceback" not in result.stdout.str()


def test_one_server_per_xdist_worker(pytester):
    record = pytester.path / "ports.jsonl"
    pytester.makepyfile(
        f"""
        import json, os
        import pytest
        import requests

        @pytest.mark.parametrize("n", range(8))
        def test_record_port(mockstatus, n):
            assert requests.get(mockstatus.url("/sequence/mine/503,200")).status_code == 503
            assert len(mockstatus.requests()) == 1  # reset per test, on this worker's server
            with open({str(record)!r}, "a") as out:
                out.write(json.dumps([os.environ["PYTEST_XDIST_WORKER"], os.getpid(), mockstatus.port]) + "\\n")
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(rows) == 8
    ports_by_worker: dict[str, set[int]] = {}
    for worker, _pid, port in rows:
        ports_by_worker.setdefault(worker, set()).add(port)
    assert sorted(ports_by_worker) == ["gw0", "gw1"]
    assert all(len(ports) == 1 for ports in ports_by_worker.values()), ports_by_worker  # one server per worker
    assert ports_by_worker["gw0"] != ports_by_worker["gw1"]


def test_make_mockstatus_starts_servers_with_their_own_settings_and_stops_them(pytester):
    pytester.makepyfile(
        """
        import socket

        import pytest
        import requests

        from mockstatus.catalog import ConfigError

        STARTED = []

        def test_each_call_is_another_server(make_mockstatus, mockstatus):
            small = make_mockstatus(max_body_size=1024)
            teapot = make_mockstatus({"codes": {418: {"reason": "Short And Stout"}}})
            assert len({mockstatus.port, small.port, teapot.port}) == 3
            assert requests.post(small.url("/status/201"), data=b"x" * 2048).status_code == 413
            assert requests.post(mockstatus.url("/status/201"), data=b"x" * 2048).status_code == 201
            assert requests.get(teapot.url("/status/418")).reason == "Short And Stout"
            assert requests.get(mockstatus.url("/status/418")).reason == "I'm a teapot"
            assert [e["status"] for e in small.requests()] == [413]
            STARTED.extend([(small.host, small.port), (teapot.host, teapot.port)])

        def test_a_bad_config_raises_at_the_call(make_mockstatus):
            with pytest.raises(ConfigError, match="bad code '2_00'"):
                make_mockstatus({"codes": {"2_00": {"reason": "Nope"}}})

        def test_they_stopped_when_their_test_ended(mockstatus):
            assert len(STARTED) == 2
            for address in STARTED:
                with pytest.raises(ConnectionRefusedError):
                    socket.create_connection(address, timeout=1).close()
        """
    )
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=3)


def test_make_mockstatus_session_serves_until_the_session_ends(pytester):
    record = pytester.path / "address.json"
    pytester.makeconftest(
        f"""
        import json

        import pytest

        @pytest.fixture(scope="module")
        def guarded(make_mockstatus_session):
            server = make_mockstatus_session(admin_token="s3cret")
            with open({str(record)!r}, "a") as out:
                out.write(json.dumps([server.host, server.port]) + "\\n")
            return server
        """
    )
    pytester.makepyfile(
        test_first="""
        import requests

        SEEN = []

        def test_one(guarded):
            assert requests.get(guarded.url("/__mockstatus/requests")).status_code == 401
            SEEN.append(guarded)

        def test_same_server_in_the_module(guarded):
            assert SEEN == [guarded]
        """,
        test_second="""
        import socket

        import test_first

        def test_the_first_modules_server_still_runs(guarded):
            (earlier,) = test_first.SEEN
            assert guarded is not earlier
            socket.create_connection((earlier.host, earlier.port), timeout=1).close()
        """,
    )
    result = pytester.runpytest("-q")
    result.assert_outcomes(passed=3)
    addresses = [json.loads(line) for line in record.read_text().splitlines()]
    assert len(addresses) == 2  # one per module
    for host, port in addresses:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, port), timeout=1).close()


def test_serve_in_thread_without_pytest():
    script = textwrap.dedent(
        """
        import socket, urllib.request, mockstatus

        with mockstatus.serve_in_thread({"codes": {418: {"reason": "Outside"}}}) as server:
            try:
                urllib.request.urlopen(server.url("/status/418"))
            except urllib.error.HTTPError as exc:
                print(exc.code, exc.reason, len(server.requests()))
            address = (server.host, server.port)
        try:
            socket.create_connection(address, timeout=1).close()
            print("still listening")
        except ConnectionRefusedError:
            print("stopped")
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n") == ["418 Outside 1", "stopped", ""]


# --- the docs' how-to is code that runs ---------------------------------------------------


def _readme_section() -> str:
    return (ROOT / "docs" / "pytest.md").read_text(encoding="utf-8")


BLOCK = re.compile(r"```python\n(.*?)```", re.S)
# The docs name each example file in a code span at the start of a line (a link
# would point outside the docs site).
LINK = re.compile(r"^`(tests/examples/test_\w+\.py)`:", re.M)


def test_readme_links_every_example_file():
    linked = set(LINK.findall(_readme_section()))
    shipped = {f"tests/examples/{path.name}" for path in EXAMPLES.glob("test_*.py")}
    assert len(shipped) >= 4
    assert linked == shipped


def test_readme_example_excerpts_are_the_files_code():
    examples = _readme_section().split("### Examples that run", 1)[1]
    checked = set()
    # Each python block is quoted from the example file linked last before it.
    for piece in re.split(r"(?=^`tests/examples/test_)", examples, flags=re.M)[1:]:
        path = LINK.search(piece).group(1)
        source = (ROOT / path).read_text(encoding="utf-8")
        blocks = BLOCK.findall(piece)
        assert blocks, f"no excerpt under {path}"
        for code in blocks:
            assert code in source, f"a README excerpt under {path} is not that file's code:\n{code}"
        checked.add(path)
    assert checked == set(LINK.findall(examples))


def test_readme_plugin_snippets_run(pytester):
    usage, conftest, factory = BLOCK.findall(_readme_section().split("### Without pytest")[0])
    pytester.makeconftest(conftest)
    pytester.makepyfile(
        usage
        + factory
        + textwrap.dedent(
            """
            def test_the_overlay_from_the_readme_conftest(mockstatus):
                assert requests.get(mockstatus.url("/status/418")).headers["X-Tea"] == "earl grey"
            """
        )
    )
    pytester.runpytest("-q").assert_outcomes(passed=3)


def test_readme_serve_in_thread_snippet_runs():
    without = _readme_section().split("### Without pytest", 1)[1]
    script = BLOCK.search(without).group(1)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "'path': '/status/418'" in out.stdout and "'status': 418" in out.stdout


def test_readme_wait_for_requests_snippet_runs(pytester):
    text = (ROOT / "docs" / "sequences.md").read_text(encoding="utf-8")
    journal = text.split("## The request journal", 1)[1].split("\n## ", 1)[0]
    [snippet] = BLOCK.findall(journal)
    pytester.makepyfile(snippet)
    pytester.runpytest("-q").assert_outcomes(passed=1)
