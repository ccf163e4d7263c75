"""The ``mockstatus`` command, run as real subprocesses.

Serving (console script and ``python -m``), signals, every setting as flag and
env var, one-line errors with exit 2, ``codes``, ``check-config``, ``health``,
and the README's settings table against ``mockstatus.settings.SETTINGS``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from wire import free_port

from mockstatus import __version__
from mockstatus.catalog import load_catalog
from mockstatus.cli import build_parser, resolve_settings
from mockstatus.settings import SETTINGS, SETTINGS_BY_NAME

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = str(Path(sys.executable).parent / "mockstatus")
ENTRY_POINTS = {"console-script": [SCRIPT], "python-m": [sys.executable, "-m", "mockstatus"]}
LISTENING = re.compile(r"^mockstatus listening on (http://127\.0\.0\.1:(\d+))$")


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any MOCKSTATUS_* a developer may have set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOCKSTATUS_")}
    env.update(extra)
    return env


def run(*args: str, env: dict | None = None, cwd=None, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mockstatus", *args],
        capture_output=True, text=True, env=clean_env(**(env or {})), cwd=cwd, timeout=timeout,
    )  # fmt: skip


def assert_one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[0].startswith("mockstatus: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


class Served:
    """A server process started from the command line; stopped by a signal."""

    def __init__(self, argv: list[str], env: dict | None = None, cwd=None) -> None:
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(**(env or {})), cwd=cwd
        )
        self.first_line = self._read_line(15)
        match = LISTENING.match(self.first_line)
        assert match, f"{self.first_line!r} {self.proc.stderr.read() if self.proc.poll() is not None else ''}"
        self.url, self.port = match.group(1), int(match.group(2))

    def _read_line(self, timeout: float) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        assert ready, "the server printed nothing"
        return self.proc.stdout.readline().rstrip("\n")

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10) -> tuple[int, str]:
        self.proc.send_signal(signum)
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def serve():
    started: list[Served] = []

    def start(argv, **kwargs) -> Served:
        served = Served(argv, **kwargs)
        started.append(served)
        return served

    yield start
    for served in started:
        served.kill()


# --- serving --------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=list(ENTRY_POINTS))
def test_serve_prints_its_url_and_stops_on_a_signal(serve, tmp_path, entry, signum):
    served = serve([*ENTRY_POINTS[entry], "--port", "0"], cwd=tmp_path)
    assert served.port != 0
    assert served.get("/status/418") == (418, "I'm a teapot\n")
    code, err = served.stop(signum)
    assert code == 0
    assert "Traceback" not in err and "Error" not in err, err


def test_serve_subcommand_with_env_settings(serve, tmp_path):
    served = serve([SCRIPT, "serve"], env={"MOCKSTATUS_PORT": "0", "MOCKSTATUS_MAX_BODY_SIZE": "10"}, cwd=tmp_path)
    request = urllib.request.Request(served.url + "/status/201", data=b"x" * 11, method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 413
    assert served.stop()[0] == 0


def test_precedence_in_a_real_process(serve, tmp_path):
    """flag > env > config: the printed URL shows which port won."""
    config_port, env_port = free_port(), free_port()
    config = tmp_path / "c.yaml"
    config.write_text(f"server:\n  port: {config_port}\n", encoding="utf-8")
    from_config = serve([SCRIPT, "--config", str(config)], cwd=tmp_path)
    assert from_config.port == config_port
    from_config.stop()
    from_env = serve([SCRIPT], env={"MOCKSTATUS_CONFIG": str(config), "MOCKSTATUS_PORT": str(env_port)}, cwd=tmp_path)
    assert from_env.port == env_port
    from_env.stop()
    from_flag = serve([SCRIPT, "--port", "0"], env={"MOCKSTATUS_CONFIG": str(config), "MOCKSTATUS_PORT": str(env_port)})
    assert from_flag.port not in (config_port, env_port)
    from_flag.stop()


def test_config_overlay_is_served(serve, tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text("codes:\n  799:\n    reason: Ours\n", encoding="utf-8")
    served = serve([SCRIPT, "--port", "0"], env={"MOCKSTATUS_CONFIG": str(config)}, cwd=tmp_path)
    assert served.get("/status/799") == (799, "799 Ours\n")
    served.stop()


def test_port_in_use_is_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        done = run("--port", str(busy.getsockname()[1]), cwd=tmp_path)
    assert_one_line_error(done, "cannot listen on 127.0.0.1:")


# --- every setting: flag, env var, config key ----------------------------------------------

# name: (env value, what it parses to), (flag value, what it parses to), a bad value or None if any text is valid
VALUES = {
    "host": (("0.0.0.0", "0.0.0.0"), ("::1", "::1"), "not a host"),
    "port": (("9090", 9090), ("9091", 9091), "80x"),
    "config": (("{file}", "{file}"), ("{other}", "{other}"), "/nonexistent/mockstatus.yaml"),
    "max_body_size": (("64k", 65536), ("2m", 2 * 1024 * 1024), "1q"),
    "max_request_line": (("4k", 4096), ("10000", 10000), "100"),
    "max_header_size": (("32k", 32768), ("8190", 8190), "lots"),
    "max_headers": (("64", 64), ("200", 200), "0"),
    "max_delay": (("2m", 120.0), ("90", 90.0), "forever"),
    "default_delay": (("250ms", 0.25), ("0", 0.0), "-1s"),
    "shutdown_grace": (("1.5", 1.5), ("3s", 3.0), "soon"),
    "journal_size": (("50", 50), ("60", 60), "0"),
    "journal_max_bytes": (("1m", 1024 * 1024), ("64k", 65536), "lots"),
    "journal_secrets": (("keep", "keep"), ("redact", "redact"), "show"),
    "max_sequences": (("7", 7), ("8", 8), "-3"),
    "max_buckets": (("9", 9), ("10", 10), "none"),
    "admin_token": (("s3cret", "s3cret"), ("other", "other"), ""),
    "allowed_redirect_hosts": (("Example.org, api.test", ("example.org", "api.test")), ("a.test", ("a.test",)), None),
    "allowed_hosts": (("Mock.test, b.test", ("mock.test", "b.test")), ("c.test", ("c.test",)), None),
    "upgrade_idle_timeout": (("5s", 5.0), ("1m", 60.0), "5 minutes"),
    "max_connections": (("100", 100), ("0", 0), "-1"),
    "header_timeout": (("2s", 2.0), ("500ms", 0.5), "later"),
    "body_timeout": (("3s", 3.0), ("250ms", 0.25), "soon"),
    "blackhole_port": (("9099", 9099), ("9098", 9098), "80x"),
    "log_format": (("json", "json"), ("text", "text"), "xml"),
    "access_log": (("true", True), (None, False), "maybe"),  # a switch: --no-access-log
    "strict_options": (("1", True), (None, False), "sometimes"),
    "https_port": (("8443", 8443), ("off", None), "443x"),
    "tls_hostnames": (("Mock.test, api.test", ("mock.test", "api.test")), ("a.test", ("a.test",)), None),
    "tls_ca_cert": (("ca.pem", "ca.pem"), ("other.pem", "other.pem"), None),
    "tls_ca_key": (("ca-key.pem", "ca-key.pem"), ("other-key.pem", "other-key.pem"), None),
    "tls_scenario_ports": (("9000", 9000), ("0", 0), "65530"),
    "state": (("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"), ("memory", "memory"), "mysql://db/1"),
    "sequence_ttl": (("30m", 1800.0), ("2h", 7200.0), "0s"),
}


def test_the_table_covers_every_option():
    assert set(VALUES) == set(SETTINGS_BY_NAME)


@pytest.mark.parametrize("option", SETTINGS, ids=lambda o: o.env)
def test_every_setting_has_an_env_var_and_the_flag_wins(option, tmp_path):
    files = {"file": tmp_path / "a.yaml", "other": tmp_path / "b.yaml"}
    for path in files.values():
        path.write_text("codes: {}\n", encoding="utf-8")
    (env_raw, env_parsed), (flag_raw, flag_parsed), _ = (
        tuple(v.format(**files) if isinstance(v, str) else v for v in pair) if isinstance(pair, tuple) else pair
        for pair in VALUES[option.name]
    )
    from_env, _ = resolve_settings(build_parser().parse_args([]), {option.env: env_raw})
    assert getattr(from_env, option.name) == env_parsed
    argv = [f"--no-{option.flag[2:]}"] if option.flag_kind == "switch" else [f"{option.flag}={flag_raw}"]
    from_both, _ = resolve_settings(build_parser().parse_args(argv), {option.env: env_raw})
    assert getattr(from_both, option.name) == flag_parsed


def test_help_lists_every_flag_and_env_var():
    done = run("serve", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for option in SETTINGS:
        assert option.flag in text and option.env in text, option.name


BAD = [(o, VALUES[o.name][2]) for o in SETTINGS if VALUES[o.name][2] is not None]


@pytest.mark.parametrize("option,bad", BAD, ids=[f"{o.flag} {b}" for o, b in BAD])
def test_bad_flag_value_exits_2_with_one_line(option, bad, tmp_path):
    # --flag=value: a value such as -1s would otherwise read as another flag.
    line = assert_one_line_error(
        run(f"{option.flag}={bad}", cwd=tmp_path), option.flag if option.name != "config" else bad
    )
    if option.flag_kind != "switch":
        assert repr(bad) in line or bad in line


@pytest.mark.parametrize("option,bad", BAD, ids=[f"{o.env}={b}" for o, b in BAD])
def test_bad_env_value_exits_2_with_one_line(option, bad, tmp_path):
    expected = bad if option.name == "config" else option.env
    line = assert_one_line_error(run(env={option.env: bad}, cwd=tmp_path), expected)
    assert repr(bad) in line or bad in line


@pytest.mark.parametrize(
    "text,fragment",
    [("server:\n  port: 80x\n", "server: port"), ("server:\n  nope: 1\n", "unknown setting 'nope'"),
     ("codes:\n  200:\n\treason: OK\n", ":3: YAML syntax error")],
    ids=["bad-value", "unknown-key", "yaml-syntax"],
)  # fmt: skip
def test_bad_config_exits_2_with_one_line(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    assert_one_line_error(run("--config", str(path), cwd=tmp_path), str(path), fragment)
    assert_one_line_error(run(cwd=tmp_path, env={"MOCKSTATUS_CONFIG": str(path)}), str(path), fragment)


@pytest.mark.parametrize(
    "argv,fragment",
    [(["--bogus"], "unrecognized arguments: --bogus"), (["--port"], "expected one argument"),
     (["codes", "--bogus"], "--bogus"), (["check-config"], "path"), (["frobnicate"], "invalid choice")],
    ids=["--bogus", "--port-without-value", "codes-bogus", "check-config-without-path", "unknown-command"],
)  # fmt: skip
def test_bad_usage_exits_2_with_one_line(argv, fragment, tmp_path):
    assert_one_line_error(run(*argv, cwd=tmp_path), fragment)


def test_version():
    done = run("--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"mockstatus {__version__}")


# --- codes, check-config, health -------------------------------------------------------


def test_codes_table():
    done = run("codes")
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["code", "reason", "kind", "standard", "source"]
    catalog = load_catalog()
    assert len(lines) == 1 + len(catalog)
    for line, info in zip(lines[1:], catalog):
        assert line.startswith(f"{info.code:<5}{info.reason}")
        assert info.kind in line and info.source in line


def test_codes_json_is_the_catalog():
    done = run("codes", "--json")
    assert done.returncode == 0
    assert json.loads(done.stdout) == [info.as_json() for info in load_catalog()]


def test_codes_with_an_overlay(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("codes:\n  799:\n    reason: Ours\n", encoding="utf-8")
    assert "799  Ours" in run("codes", "--config", str(path)).stdout
    assert "799  Ours" in run("codes", env={"MOCKSTATUS_CONFIG": str(path)}).stdout


def test_codes_into_a_closed_pipe():
    done = subprocess.run(
        f"{sys.executable} -m mockstatus codes | head -1", shell=True, capture_output=True, text=True, env=clean_env()
    )
    assert done.stdout.startswith("code")
    assert "Traceback" not in done.stderr and "Broken pipe" not in done.stderr


def test_check_config_good(tmp_path):
    path = tmp_path / "good.yaml"
    path.write_text("codes:\n  799:\n    reason: Ours\nserver:\n  port: 9000\n", encoding="utf-8")
    done = run("check-config", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{path}: ok ({len(load_catalog()) + 1} codes)"


def test_check_config_shipped_catalog():
    assert run("check-config", str(ROOT / "config" / "statuses.yaml")).returncode == 0


@pytest.mark.parametrize(
    "text,fragment",
    [("codes:\n  2000: {reason: X}\n", "bad code 2000"), ("codes:\n  200:\n    colour: red\n", "codes.200.colour"),
     ("codes: [\n", ":2: YAML syntax error")],
    ids=["bad-code", "unknown-key", "yaml-syntax"],
)  # fmt: skip
def test_check_config_bad(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    assert_one_line_error(run("check-config", str(path)), str(path), fragment)


def test_health_of_a_live_server(mockstatus):
    done = run("health", mockstatus.base_url)
    assert (done.returncode, done.stdout.strip()) == (0, f"healthy: {mockstatus.base_url}/__mockstatus/health")


def test_health_from_env(mockstatus):
    assert run("health", env={"MOCKSTATUS_PORT": str(mockstatus.port)}).returncode == 0


@pytest.mark.parametrize("timeout", ["2s", "1500ms", "1", "0.5"])
def test_health_timeout_takes_the_duration_syntax(mockstatus, timeout):
    assert run("health", mockstatus.base_url, "--timeout", timeout).returncode == 0


@pytest.mark.parametrize("timeout", ["2x", "0", "-1s"])
def test_bad_health_timeout_is_one_line(timeout):
    assert_one_line_error(run("health", f"--timeout={timeout}"), "--timeout", f"bad timeout {timeout!r}")


def test_health_wait_asks_again_until_a_server_started_later_answers(tmp_path):
    """What a CI step does right after starting the server in the background."""
    port = free_port()
    waiting = subprocess.Popen([sys.executable, "-m", "mockstatus", "health", f"http://127.0.0.1:{port}", "--wait", "20s"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())  # fmt: skip
    time.sleep(0.3)  # the health check has been refused at least once by now
    assert waiting.poll() is None
    server = subprocess.Popen([sys.executable, "-m", "mockstatus", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env())  # fmt: skip
    try:
        out, err = waiting.communicate(timeout=30)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert (waiting.returncode, out.strip(), err) == (0, f"healthy: http://127.0.0.1:{port}/__mockstatus/health", "")


def test_health_wait_gives_up_with_the_last_error():
    port = free_port()
    started = time.monotonic()
    done = run("health", f"http://127.0.0.1:{port}", "--wait", "300ms", "--timeout", "100ms")
    assert done.returncode == 1 and time.monotonic() - started < 10
    assert done.stderr.startswith(f"unhealthy: http://127.0.0.1:{port}/__mockstatus/health: ")
    assert len(done.stderr.splitlines()) == 1


def test_top_level_help_lists_the_commands_first_then_flags_with_defaults():
    done = run("--help")
    assert done.returncode == 0
    text = done.stdout
    assert text.splitlines()[0] == "usage: mockstatus [COMMAND] [options]"
    commands = text.index("commands:")
    for name in ("serve", "codes", "check-config", "health"):
        assert commands < text.index(f"    {name} ") < text.index("--host")
    flat = " ".join(text.split())
    for option in SETTINGS:
        assert f"(default {option.shown_default}; env {option.env})" in flat, option.name
    assert "(default 300s; env MOCKSTATUS_MAX_DELAY)" in flat and "(default off; env MOCKSTATUS_ACCESS_LOG)" in flat


@pytest.mark.parametrize(
    "host, line",
    [
        ("127.0.0.1", r"http://127\.0\.0\.1:(\d+)"),
        ("0.0.0.0", r"http://0\.0\.0\.0:(\d+) \(all IPv4 interfaces; from this machine: http://127\.0\.0\.1:\1\)"),
        ("::", r"http://\[::\]:(\d+) \(all IPv6 interfaces; from this machine: http://\[::1\]:\1\)"),
    ],
    ids=["host/127.0.0.1", "host/0.0.0.0", "host/::"],
)
def test_start_up_line_names_the_real_address(host, line):
    if ":" in host and not socket.has_ipv6:
        pytest.skip("no IPv6")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mockstatus", "--host", host, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
    )  # fmt: skip
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 15)
        first = proc.stdout.readline().rstrip("\n") if ready else ""
        if not first and ":" in host:
            pytest.skip(f"cannot listen on {host}: {proc.stderr.read() if proc.poll() is not None else ''}")
        match = re.fullmatch("mockstatus listening on " + line, first)
        assert match, first
        # The address it names is one a client on this machine reaches.
        target = "::1" if ":" in host else "127.0.0.1"
        socket.create_connection((target, int(match.group(1))), timeout=5).close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


def test_start_up_line_names_every_socket():
    from mockstatus.runner import listening_line

    with socket.socket() as four, socket.socket(socket.AF_INET6) as six:
        four.bind(("127.0.0.1", 0))
        try:
            six.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback")
        line = listening_line([four, six])
        assert line == (
            f"mockstatus listening on http://127.0.0.1:{four.getsockname()[1]} and http://[::1]:{six.getsockname()[1]}"
        )


def test_health_of_a_dead_server():
    started = time.monotonic()
    done = run("health", f"http://127.0.0.1:{free_port()}", "--timeout", "1")
    assert done.returncode == 1
    assert done.stderr.startswith("unhealthy: ") and "Traceback" not in done.stderr
    assert time.monotonic() - started < 10


def test_health_of_something_that_is_not_mockstatus(mockstatus):
    # A server that answers, but not with mockstatus's health JSON.
    assert run("health", mockstatus.url("/status/503")).returncode == 1


# --- the docs' settings table --------------------------------------------------------


def readme_settings_rows() -> list[list[str]]:
    """The settings table the docs build makes (docs/_hooks/generated.py), as rows."""
    spec = importlib.util.spec_from_file_location("docs_generated", ROOT / "docs" / "_hooks" / "generated.py")
    generated = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generated)
    for page in ("configuration.md", "docker.md"):
        assert "<!-- settings-table -->" in (ROOT / "docs" / page).read_text(encoding="utf-8"), page
    rows = [line for line in generated.settings_table().splitlines() if line.startswith("| `--")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def unquote(cell: str) -> str:
    return cell.strip().strip("`")


def test_readme_settings_table_lists_exactly_the_options():
    rows = readme_settings_rows()
    assert [re.findall(r"`([^`]+)`", r[0])[0] for r in rows] == [o.flag for o in SETTINGS]
    for row, option in zip(rows, SETTINGS):
        flag, env, key, default, meaning = row
        assert unquote(env) == option.env
        assert unquote(key) == option.name
        assert meaning
        if option.default in (None, ()):
            assert default.startswith("(") and default.endswith(")"), default  # "(none)", "(any host)"
        else:
            assert option.parse(unquote(default)) == option.default, (option.name, default)


def test_settings_fields_are_exactly_the_options_with_their_defaults():
    """One table (settings.SETTINGS) feeds flags, env vars, the config file and the defaults."""
    import dataclasses

    from mockstatus.settings import SETTINGS, Settings

    assert [field.name for field in dataclasses.fields(Settings)] == [option.name for option in SETTINGS]
    assert all(getattr(Settings(), option.name) == option.default for option in SETTINGS)


@pytest.mark.parametrize(
    ("config", "flags", "fragment"),
    [
        ("codes:\n  504:\n    delay: 10m\n", [], "codes.504.delay: 600s is above --max-delay 300s"),
        ("codes:\n  504:\n    delay: 2s\n", ["--max-delay", "1s"], "codes.504.delay: 2s is above --max-delay 1s"),
        ("", ["--default-delay", "5s", "--max-delay", "1s"], "--default-delay 5s is above --max-delay 1s"),
    ],
    ids=["bad/catalog-delay-above-default-max", "bad/catalog-delay-above-flag", "bad/default-delay-above-max"],
)
def test_configured_delay_above_max_delay_exits_2(tmp_path, config, flags, fragment):
    path = tmp_path / "over.yaml"
    path.write_text(config)
    result = subprocess.run(
        [sys.executable, "-m", "mockstatus", "serve", "--port", "0", "--config", str(path), *flags],
        capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert result.returncode == 2
    assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
