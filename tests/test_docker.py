"""The Docker image and the compose sidecar (issue #6), tested without a Docker engine.

Two halves:
- the files themselves: ``Dockerfile`` (a small parser for the instructions it
  uses) and ``docker-compose.yml`` (pyyaml) hold what a CI sidecar needs;
- what the image would run, for real: the wheel built from the sources the
  builder stage copies, installed with plain ``pip install <wheel>`` in a fresh
  venv (fixture ``wheel_venv``), started with the Dockerfile's ENTRYPOINT/CMD and
  ENV as parsed from the file, the compose ``environment:`` on top and the config
  mount mapped to a host directory.  The healthcheck commands are the ones in the
  files, run with the container's environment, as ``docker exec`` would.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest
import yaml
from wire import free_port, read_to_end

from mockstatus.settings import SETTINGS, SETTINGS_BY_NAME

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
CHANGED_REASON = "Service Unavailable (from the mounted file)"


# --- a small Dockerfile parser: the instructions this Dockerfile uses -----------


@dataclasses.dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    flags: dict[str, str]  # leading --name=value options (--from, --mount, --interval, ...)
    args: str  # the rest, continuation lines joined
    line: int

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON array of CMD/ENTRYPOINT/RUN, or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except ValueError:
            return None  # Docker runs a malformed array as a shell command
        return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


@dataclasses.dataclass
class Stage:
    base: str  # the FROM image with global ARGs substituted
    name: str | None
    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for instruction in self.all("ENV"):
            env.update(parse_env_args(instruction.args))
        return env


def logical_lines(text: str):
    """(first line number, joined text): comments dropped, backslash continuations joined."""
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and pending):
            continue  # comments (and blank lines) inside a continuation are skipped too
        if not stripped:
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        yield start, " ".join(part for part in pending if part)
        pending = []
    if pending:
        yield start, " ".join(pending)


def split_flags(args: str) -> tuple[dict[str, str], str]:
    flags: dict[str, str] = {}
    rest = args
    while rest.startswith("--"):
        token, _, rest = rest.partition(" ")
        name, _, value = token[2:].partition("=")
        flags[name] = value
        rest = rest.lstrip()
    return flags, rest


def parse_env_args(args: str) -> dict[str, str]:
    tokens = shlex.split(args)
    if tokens and "=" not in tokens[0]:  # legacy ``ENV KEY value with spaces``
        return {tokens[0]: " ".join(tokens[1:])}
    return dict(token.split("=", 1) for token in tokens)


def substitute(text: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m.group(1) or m.group(2), ""), text)


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line, joined in logical_lines(text):
        keyword, _, args = joined.partition(" ")
        keyword = keyword.upper()
        flags, rest = (
            split_flags(args.strip())
            if keyword in ("FROM", "COPY", "ADD", "RUN", "HEALTHCHECK")
            else ({}, args.strip())
        )
        instruction = Instruction(keyword, flags, rest, line)
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(substitute(words[0], global_args), name, [instruction]))
        elif not stages:
            assert keyword == "ARG", f"line {line}: only ARG may come before the first FROM, got {keyword}"
            key, _, default = rest.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append(instruction)
    return global_args, stages


def healthcheck_argv(instruction: Instruction) -> list[str]:
    kind, _, command = instruction.args.partition(" ")
    assert kind == "CMD", f"HEALTHCHECK {instruction.args!r}: expected HEALTHCHECK [options] CMD ..."
    argv = Instruction("CMD", {}, command, instruction.line).exec_form
    return argv if argv is not None else ["/bin/sh", "-c", command]


def compose_test_argv(test) -> list[str]:
    """Compose healthcheck ``test:`` -> the argv Docker runs in the container."""
    if isinstance(test, str):
        return ["/bin/sh", "-c", test]
    if test[0] == "CMD":
        return list(test[1:])
    assert test[0] == "CMD-SHELL", f"healthcheck test {test!r}: expected CMD or CMD-SHELL"
    return ["/bin/sh", "-c", test[1]]


GO_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|ms|s|m|h)")
GO_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def docker_duration(text: str) -> float:
    """Docker and compose durations are Go durations: 5s, 0.25s, 250ms, 1m30s."""
    parts = GO_DURATION.findall(str(text))
    assert parts and "".join(n + u for n, u in parts) == str(text), f"{text!r} is not a Go duration"
    return sum(float(number) * GO_UNITS[unit] for number, unit in parts)


GLOBAL_ARGS, STAGES = parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))
FINAL = STAGES[-1]
IMAGE_ENV = FINAL.env()
COMPOSE_FILE = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
SERVICE = COMPOSE_FILE["services"]["mockstatus"]
EXAMPLE_NAME, EXAMPLE = next((n, s) for n, s in COMPOSE_FILE["services"].items() if n != "mockstatus")


def image_argv() -> list[str]:
    entrypoint, cmd = FINAL.last("ENTRYPOINT"), FINAL.last("CMD")
    return (entrypoint.exec_form if entrypoint else []) + (cmd.exec_form if cmd else [])


def wheel_build_sources() -> set[str]:
    """The paths pyproject.toml needs to build the wheel, derived from it."""
    tool = PYPROJECT["tool"]["setuptools"]
    package_dirs = tool.get("package-dir", {})
    needed = {"pyproject.toml", PYPROJECT["project"]["readme"], *PYPROJECT["project"].get("license-files", ())}
    for package in tool["packages"]:
        needed.add(package_dirs.get(package, package.replace(".", "/")).split("/")[0])
    return needed


def context_copies(stage: Stage) -> dict[str, str]:
    """COPY instructions from the build context: source -> destination."""
    copies = {}
    for instruction in stage.all("COPY"):
        if "from" in instruction.flags:
            continue
        *sources, dest = instruction.args.split()
        for source in sources:
            copies[source.rstrip("/")] = dest
    return copies


def dockerignore_pattern(pattern: str) -> re.Pattern:
    """Go filepath.Match plus ``**`` (as Docker reads .dockerignore): ``*`` stops at ``/``."""
    out = ""
    for token in re.findall(r"\*\*/|\*\*|\*|\?|\[[^\]]*\]|[^*?\[]+", pattern):
        if token == "**/":
            out += "(?:.*/)?"
        elif token == "**":
            out += ".*"
        elif token == "*":
            out += "[^/]*"
        elif token == "?":
            out += "[^/]"
        elif token.startswith("["):
            out += token
        else:
            out += re.escape(token)
    return re.compile(out)


def dockerignore_excludes(path: str) -> bool:
    """A pattern excludes a path or any of its parents; later ``!`` lines re-include."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        matcher = dockerignore_pattern(pattern.lstrip("!").strip("/"))
        if any(matcher.fullmatch(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def test_extra_names() -> set[str]:
    return {
        re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()
        for requirement in PYPROJECT["project"]["optional-dependencies"]["test"]
    }


test_extra_names.__test__ = False  # a helper, not a test


# --- the Dockerfile ----------------------------------------------------------


def test_base_image_is_pinned_to_an_exact_python_patch_release():
    bases = {stage.base for stage in STAGES}
    assert len(bases) == 1, f"builder and final stage should share one base, got {bases}"
    (base,) = bases
    assert re.fullmatch(r"python:3\.11\.\d+-slim-(bookworm|trixie)(@sha256:[0-9a-f]{64})?", base), base


def test_two_stages_builder_makes_the_wheel_from_what_pyproject_needs():
    assert len(STAGES) == 2 and STAGES[0].name == "builder", [(s.name, s.base) for s in STAGES]
    builder = STAGES[0]
    copied = context_copies(builder)
    needed = wheel_build_sources()
    assert needed <= set(copied), f"builder must COPY {sorted(needed - set(copied))}"
    assert not set(copied) - needed, f"builder copies more than the wheel needs: {sorted(set(copied) - needed)}"
    # The shared wheel_venv fixture builds from the same paths.
    from conftest import WHEEL_SOURCES

    assert set(WHEEL_SOURCES) == needed
    (wheel_run,) = [r for r in builder.all("RUN") if " pip wheel " in f" {r.args} "]
    words = shlex.split(wheel_run.args)
    assert "--no-deps" in words and words[-1] == "."
    assert "-e" not in words and "--editable" not in words


@pytest.mark.parametrize("path", sorted(wheel_build_sources()))
def test_dockerignore_keeps_what_the_builder_copies(path):
    assert (ROOT / path).exists()
    assert not dockerignore_excludes(path)
    if (ROOT / path).is_dir():
        for file in sorted((ROOT / path).rglob("*")):
            if file.is_file() and "__pycache__" not in file.parts:
                assert not dockerignore_excludes(file.relative_to(ROOT).as_posix()), file


@pytest.mark.parametrize(
    "path", [".venv/bin/python", ".git/HEAD", "tests/test_docker.py", "mockstatus/__pycache__/x.pyc"]
)
def test_dockerignore_keeps_local_state_out(path):
    assert dockerignore_excludes(path)


LOCK = ROOT / "requirements" / "image.lock"


def locked() -> dict[str, str]:
    """name -> version of every package requirements/image.lock pins."""
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)", LOCK.read_text(encoding="utf-8"), re.M)
    return {name.lower().replace("_", "-"): version for name, version in pins}


def test_final_stage_installs_the_hash_locked_dependencies_then_the_wheel_alone():
    assert not context_copies(FINAL), "the final stage must not copy sources from the build context"
    installs = [r for r in FINAL.all("RUN") if "pip install" in r.args]
    assert len(installs) == 2, [r.args for r in installs]
    lock_run, run = installs
    words = shlex.split(lock_run.args.replace("\\\n", " "))
    assert "--require-hashes" in words and words[words.index("-r") + 1] == "/tmp/image.lock"
    mount = dict(item.split("=", 1) for item in lock_run.flags["mount"].split(","))
    assert (mount["source"], mount["target"]) == ("requirements/image.lock", "/tmp/image.lock")
    command = run.args.split("&&")[0]
    words = shlex.split(command)
    assert "--no-deps" in words  # every dependency came from the lock
    targets = [w for w in words[words.index("install") + 1 :] if not w.startswith("-")]
    assert targets and all(t.endswith(".whl") for t in targets), targets
    assert not {"-e", "--editable", "-r", "--requirement"} & set(words)
    # The wheel comes from the builder stage (a bind mount, so it is not a layer).
    mount = dict(item.split("=", 1) for item in run.flags["mount"].split(","))
    assert mount["from"] == STAGES[0].name
    assert all(t.startswith(mount["target"].rstrip("/") + "/") for t in targets)


def test_the_lock_pins_every_runtime_dependency_with_hashes():
    """What the wheel (and its redis extra) needs is locked, each pin with hashes, no test tool."""
    pins = locked()
    project = PYPROJECT["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["redis"]]
    for requirement in wanted:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")
        assert name in pins, f"{name} is not in requirements/image.lock"
    text = LOCK.read_text(encoding="utf-8")
    blocks = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text.split("\n\n", 1)[-1])
    for block in blocks:
        if "==" in block.split("\n", 1)[0]:
            assert "--hash=sha256:" in block, block.split("\n", 1)[0]
    assert not test_extra_names() - {"redis"} & set(pins), "the lock has test tools"
    # The lock satisfies the declared ranges (pyproject's floors included).
    from packaging.requirements import Requirement

    for requirement in map(Requirement, wanted):
        assert requirement.specifier.contains(pins[requirement.name.lower()]), (
            requirement,
            pins[requirement.name.lower()],
        )


def test_final_stage_has_no_test_tools():
    tools = test_extra_names()
    assert {"pytest", "playwright"} <= tools  # the names really come from pyproject
    text = " ".join(r.args for r in FINAL.all("RUN")).lower()
    found = {tool for tool in tools if re.search(rf"(?<![\w.-]){re.escape(tool)}(?![\w.-])", text)}
    assert not found, f"final stage mentions test tools: {found}"
    assert "[test]" not in text


def test_installed_wheel_brings_no_test_tools(wheel_venv):
    listed = subprocess.run(
        [str(wheel_venv.python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    installed = {item["name"].lower().replace("_", "-") for item in json.loads(listed.stdout)}
    assert "mockstatus" in installed and "aiohttp" in installed
    assert not installed & test_extra_names(), installed & test_extra_names()


def test_runs_as_a_numeric_non_root_user_created_in_the_image():
    user = FINAL.last("USER")
    assert user is not None, "the final stage needs a USER"
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit() and int(uid) != 0, f"USER {user.args}: numeric and not 0, so runAsNonRoot can check it"
    assert not gid or (gid.isdigit() and int(gid) != 0)
    creates = " ".join(r.args for r in FINAL.all("RUN"))
    assert re.search(rf"useradd [^&]*--uid {uid}\b", creates), "the USER's uid should exist in /etc/passwd"
    # USER comes after the install (which needs root) and before the command.
    lines = {i.keyword: i.line for i in FINAL.instructions}
    assert FINAL.all("RUN")[-1].line < user.line < lines["CMD"]


def test_listens_on_all_interfaces_on_the_exposed_port():
    assert IMAGE_ENV["MOCKSTATUS_HOST"] == "0.0.0.0"
    (expose,) = FINAL.all("EXPOSE")
    assert expose.args.split() == [IMAGE_ENV["MOCKSTATUS_PORT"], IMAGE_ENV["MOCKSTATUS_HTTPS_PORT"]] == ["8080", "8443"]
    known = {option.env: option for option in SETTINGS}
    for name, value in IMAGE_ENV.items():
        if name.startswith("MOCKSTATUS_"):
            assert name in known, f"ENV {name} is not a setting"
            known[name].parse(value)  # a value the server accepts


def test_entrypoint_and_cmd_are_exec_form_running_the_console_script():
    for keyword in ("ENTRYPOINT", "CMD"):
        instruction = FINAL.last(keyword)
        if instruction is not None:
            assert instruction.exec_form is not None, (
                f"{keyword} {instruction.args}: use the JSON form so SIGTERM reaches mockstatus"
            )
    argv = image_argv()
    assert argv == ["mockstatus", "serve"]
    assert PYPROJECT["project"]["scripts"]["mockstatus"] == "mockstatus.cli:main"
    stop = FINAL.last("STOPSIGNAL")
    assert stop is None or stop.args in ("SIGTERM", "15")


def test_healthcheck_runs_mockstatus_health_with_short_timings():
    check = FINAL.last("HEALTHCHECK")
    assert check is not None
    argv = healthcheck_argv(check)
    assert argv[:2] == ["mockstatus", "health"], argv
    assert Instruction("CMD", {}, check.args.partition(" ")[2], 0).exec_form is not None, "exec form: no shell needed"
    probe_timeout = float(argv[argv.index("--timeout") + 1]) if "--timeout" in argv else 2.0
    assert docker_duration(check.flags["timeout"]) > probe_timeout
    assert docker_duration(check.flags["start-interval"]) <= 0.5
    assert docker_duration(check.flags["interval"]) <= 10
    assert docker_duration(check.flags["start-period"]) <= 30
    installs = " ".join(r.args for r in FINAL.all("RUN"))
    assert not re.search(r"\b(curl|wget)\b", installs + " ".join(argv)), "the check must not need curl or wget"


# --- docker-compose.yml --------------------------------------------------------


def test_compose_builds_this_dockerfile_and_publishes_the_image_port():
    build = SERVICE["build"]
    context = build if isinstance(build, str) else build["context"]
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (COMPOSE.parent / context / dockerfile).resolve() == DOCKERFILE
    assert "profiles" not in SERVICE, "mockstatus starts with a plain `docker compose up`"
    published = [str(p).split(":") for p in SERVICE["ports"]]
    assert published == [["8080", IMAGE_ENV["MOCKSTATUS_PORT"]], ["8443", IMAGE_ENV["MOCKSTATUS_HTTPS_PORT"]]]


def test_compose_mounts_config_read_only_where_MOCKSTATUS_CONFIG_points():
    config = SERVICE["environment"]["MOCKSTATUS_CONFIG"]
    (volume,) = SERVICE["volumes"]
    source, target, mode = volume.split(":")
    assert mode == "ro"
    assert os.path.dirname(config) == target.rstrip("/")
    host_file = (COMPOSE.parent / source / os.path.basename(config)).resolve()
    assert host_file == ROOT / "config" / "statuses.yaml"
    known = {option.env for option in SETTINGS}
    assert set(SERVICE["environment"]) <= known


def test_compose_healthcheck_is_the_dockerfile_one():
    check = SERVICE["healthcheck"]
    dockerfile = FINAL.last("HEALTHCHECK")
    assert compose_test_argv(check["test"]) == healthcheck_argv(dockerfile)
    for key, flag in (
        ("interval", "interval"),
        ("timeout", "timeout"),
        ("start_period", "start-period"),
        ("start_interval", "start-interval"),
    ):
        assert docker_duration(check[key]) == docker_duration(dockerfile.flags[flag]), key
    assert check["retries"] == int(dockerfile.flags["retries"])


def test_compose_stop_grace_outlasts_the_shutdown_grace():
    grace = SETTINGS_BY_NAME["shutdown_grace"].default
    assert docker_duration(SERVICE["stop_grace_period"]) > grace


def test_example_consumer_waits_for_healthy_under_a_profile():
    assert EXAMPLE["profiles"] == ["example"]
    assert EXAMPLE["depends_on"] == {"mockstatus": {"condition": "service_healthy"}}
    # The same image as mockstatus' base: one pull, and only the standard library.
    assert EXAMPLE["image"] == STAGES[0].base
    assert EXAMPLE["command"][:2] == ["python", "-c"]
    assert EXAMPLE["environment"]["BASE_URL"] == f"http://mockstatus:{IMAGE_ENV['MOCKSTATUS_PORT']}"
    assert "$" not in EXAMPLE["command"][2], "compose would interpolate it"


# --- running what the image runs -----------------------------------------------


@pytest.fixture(scope="module")
def mounted_config(tmp_path_factory):
    """A copy of the compose volume's source with one reason phrase changed."""
    source, target, _ = SERVICE["volumes"][0].split(":")
    copy = tmp_path_factory.mktemp("mount") / "config"
    shutil.copytree(COMPOSE.parent / source, copy)
    catalog = copy / "statuses.yaml"
    data = yaml.safe_load(catalog.read_text(encoding="utf-8"))
    assert data["codes"][503]["reason"] == "Service Unavailable"
    data["codes"][503]["reason"] = CHANGED_REASON
    catalog.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return copy, target


@pytest.fixture(scope="module")
def container_env(wheel_venv, mounted_config):
    """What the container's processes see: image ENV, then compose environment,
    a free port for MOCKSTATUS_PORT, the mount mapped to the host copy, and the
    venv's bin/ first on PATH (where the image has /usr/local/bin)."""
    copy, target = mounted_config
    env = {"PATH": f"{wheel_venv.bin}{os.pathsep}/usr/bin:/bin", **IMAGE_ENV, **SERVICE["environment"]}
    env["MOCKSTATUS_PORT"] = str(free_port())
    env["MOCKSTATUS_HTTPS_PORT"] = str(free_port())
    env["MOCKSTATUS_CONFIG"] = str(copy / os.path.relpath(env["MOCKSTATUS_CONFIG"], target))
    return env


def resolve(argv: list[str], env: dict[str, str]) -> list[str]:
    found = shutil.which(argv[0], path=env["PATH"])
    assert found, f"{argv[0]} not on the container PATH {env['PATH']}"
    return [found, *argv[1:]]


class Container:
    """The image's ENTRYPOINT+CMD as one process, no shell in between (exec form)."""

    output = ""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = int(env["MOCKSTATUS_PORT"])
        self.process = subprocess.Popen(
            resolve(image_argv(), env), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"server did not start: {self.output}")
                time.sleep(0.02)

    def get(self, path: str) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        connection.close()
        return response

    def get_body(self, path: str) -> bytes:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        connection.request("GET", path)
        body = connection.getresponse().read()
        connection.close()
        return body

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.output, _ = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.output, _ = self.process.communicate()
        return self.process.returncode


@pytest.fixture(scope="module")
def container(container_env):
    running = Container(container_env)
    yield running
    running.stop()


HEALTHCHECKS = {
    "compose-healthcheck": lambda: compose_test_argv(SERVICE["healthcheck"]["test"]),
    "Dockerfile-HEALTHCHECK": lambda: healthcheck_argv(FINAL.last("HEALTHCHECK")),
}


def run_healthcheck(name: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(resolve(HEALTHCHECKS[name](), env), env=env, capture_output=True, text=True, timeout=10)


def test_the_image_command_is_the_installed_wheel_not_the_checkout(wheel_venv, container_env):
    (command, *_) = resolve(image_argv(), container_env)
    assert Path(command).parent == wheel_venv.bin
    where = subprocess.run(
        [str(wheel_venv.python), "-c", "import mockstatus; print(mockstatus.__file__)"],
        capture_output=True, text=True, check=True, cwd=wheel_venv.venv,
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(wheel_venv.venv)


@pytest.mark.parametrize("name", list(HEALTHCHECKS))
def test_healthcheck_passes_against_the_running_server(container, name):
    done = run_healthcheck(name, container.env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith(f"healthy: http://127.0.0.1:{container.port}/")


def test_healthcheck_ignores_proxy_variables(container):
    # Docker copies the client's proxy settings into containers; the check must not use them.
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    env = {**container.env, "http_proxy": dead_proxy, "HTTP_PROXY": dead_proxy, "no_proxy": "", "NO_PROXY": ""}
    done = run_healthcheck("Dockerfile-HEALTHCHECK", env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_mounted_config_is_served(container):
    changed = container.get("/status/503")
    assert (changed.status, changed.reason) == (503, CHANGED_REASON)
    assert changed.getheader("Retry-After") == "1"  # the rest of the mounted entry is intact
    unchanged = container.get("/status/200")
    assert (unchanged.status, unchanged.reason) == (200, "OK")


def test_example_consumer_command_passes_against_the_server(container):
    # -I -S: no site-packages at all, so it uses only what a bare python image has.
    argv = [sys.executable, "-I", "-S", *EXAMPLE["command"][1:]]
    env = {**EXAMPLE["environment"], "BASE_URL": f"http://127.0.0.1:{container.port}"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "200 -> 200 OK | Retry-After: None",
        f"503 -> 503 {CHANGED_REASON} | Retry-After: 1",
    ]


def test_the_image_serves_https_verified_against_its_served_ca(container, tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_bytes(container.get_body("/__mockstatus/ca.pem"))
    port = container.env["MOCKSTATUS_HTTPS_PORT"]
    context = ssl.create_default_context(cafile=str(ca))
    connection = http.client.HTTPSConnection("localhost", int(port), timeout=5, context=context)
    connection.request("GET", "/status/201")
    assert connection.getresponse().status == 201
    connection.close()


def test_tls_example_consumer_trusts_the_mounted_ca(container_env, tmp_path):
    services = COMPOSE_FILE["services"]
    server, consumer = services["mockstatus-tls"], services["tls-example"]
    assert server["profiles"] == consumer["profiles"] == ["tls-example"]
    assert consumer["depends_on"] == {"mockstatus-tls": {"condition": "service_healthy"}}
    assert server["healthcheck"] == SERVICE["healthcheck"]
    # The CA as the comment above the service makes it, mapped to where the mounts put it.
    tls = tmp_path / "tls"
    tls.mkdir()
    made = subprocess.run(
        resolve(["mockstatus", "ca", "--out", str(tls / "ca.pem")], container_env),
        env=container_env, capture_output=True, text=True, timeout=20,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    (mount,) = server["volumes"]
    source, target, _ = mount.split(":")
    assert source == "./tls"
    env = {
        **container_env,
        **server["environment"],
        "MOCKSTATUS_PORT": str(free_port()),
        "MOCKSTATUS_HTTPS_PORT": str(free_port()),
    }
    for name in ("MOCKSTATUS_TLS_CA_CERT", "MOCKSTATUS_TLS_CA_KEY"):
        env[name] = str(tls / os.path.relpath(env[name], target))
    running = Container(env)
    try:
        (ca_mount,) = consumer["volumes"]
        ca_source, ca_target, _ = ca_mount.split(":")
        assert (ca_source, ca_target) == ("./tls/ca.pem", consumer["environment"]["CA_FILE"])
        argv = [sys.executable, "-I", "-S", *consumer["command"][1:]]
        consumer_env = {
            "CA_FILE": str(tls / "ca.pem"),
            # The service name is in the leaf (MOCKSTATUS_TLS_HOSTNAMES); here it is localhost's.
            "HTTPS_URL": f"https://localhost:{env['MOCKSTATUS_HTTPS_PORT']}",
        }
        assert (
            consumer["environment"]["HTTPS_URL"] == f"https://{server['environment']['MOCKSTATUS_TLS_HOSTNAMES']}:8443"
        )
        done = subprocess.run(argv, env=consumer_env, capture_output=True, text=True, timeout=20)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.splitlines() == ["https 200 OK"]
    finally:
        running.stop()


def test_example_consumer_fails_when_a_status_is_wrong(container):
    # The assertion in the example is live: point it at a server path that answers 404.
    argv = [sys.executable, "-I", "-S", *EXAMPLE["command"][1:]]
    env = {"BASE_URL": f"http://127.0.0.1:{container.port}/nowhere"}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=20)
    assert done.returncode != 0 and "AssertionError" in done.stderr


def test_sigterm_lets_the_inflight_reply_finish_and_exits_0_within_the_grace(container_env):
    env = {**container_env, "MOCKSTATUS_PORT": str(free_port()), "MOCKSTATUS_HTTPS_PORT": str(free_port())}
    server = Container(env)
    assert server.get("/status/503").reason == CHANGED_REASON  # the mount, in this process too
    replies: list[tuple[bytes, str]] = []
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(b"GET /status/200?delay=300ms HTTP/1.1\r\nHost: sidecar\r\nConnection: close\r\n\r\n")
    answered: list[float] = []

    def read() -> None:
        replies.append(read_to_end(sock))
        answered.append(time.monotonic())

    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(0.1)  # the request is being delayed now
    grace = SETTINGS_BY_NAME["shutdown_grace"].parse(
        env.get("MOCKSTATUS_SHUTDOWN_GRACE", SETTINGS_BY_NAME["shutdown_grace"].default)
    )
    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        returncode = server.process.wait(timeout=grace)
    finally:
        server.stop()
        reader.join(5)
        sock.close()
    assert returncode == 0, server.output
    assert replies and replies[0][0].startswith(b"HTTP/1.1 200 OK\r\n") and replies[0][1] == "close", replies
    assert answered[0] > signalled, "the reply should have been in flight when SIGTERM came"
    # A stopped server: both healthchecks fail.
    for name in HEALTHCHECKS:
        done = run_healthcheck(name, env)
        assert done.returncode != 0, (name, done.stdout)
        assert "unhealthy" in done.stderr + done.stdout


# --- the README section ----------------------------------------------------------


def readme_section() -> str:
    return (ROOT / "docs" / "docker.md").read_text(encoding="utf-8")


def readme_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", readme_section(), re.S)


def readme_yaml(key: str):
    found = [doc for doc in map(yaml.safe_load, readme_blocks("yaml")) if key in doc]
    assert len(found) == 1, f"expected one yaml block with {key!r}"
    return found[0]


def test_readme_names_the_pinned_base_image():
    assert f"`{STAGES[0].base}`" in readme_section()


def test_docs_name_what_the_image_and_compose_set_and_show_every_setting():
    section = readme_section()
    assert "<!-- settings-table -->" in section  # filled in from SETTINGS when the docs are built
    image_values = {**IMAGE_ENV, **SERVICE["environment"]}
    for env, value in image_values.items():
        if env.startswith("MOCKSTATUS_"):
            assert f"`{env}={value}`" in section, env


def test_readme_compose_snippet_is_the_compose_service():
    assert readme_yaml("services") == {"services": {"mockstatus": SERVICE}}


def test_readme_docker_commands_match_the_files():
    commands = " ".join(readme_blocks("console")).replace("\\\n", " ")
    image = SERVICE["image"]
    assert f"docker build -t {image} ." in commands
    runs = [shlex.split(line.split("#")[0]) for line in commands.splitlines() if line.startswith("docker run")]
    assert runs and all(run[-1] == image or run[-2] == image for run in runs)
    assert ["-p", SERVICE["ports"][0]] == runs[0][3:5]
    mount = next(run for run in runs if "-v" in run)
    assert mount[mount.index("-v") + 1] == "$PWD/" + SERVICE["volumes"][0].removeprefix("./")
    assert mount[mount.index("-e") + 1] == f"MOCKSTATUS_CONFIG={SERVICE['environment']['MOCKSTATUS_CONFIG']}"


def blocks_with(key: str, inner: str) -> list:
    return [doc for doc in map(yaml.safe_load, readme_blocks("yaml")) if isinstance(doc, dict) and key in doc
            and inner in json.dumps(doc)]  # fmt: skip


def test_readme_github_actions_snippet():
    (workflow,) = blocks_with("jobs", "services")
    (job,) = workflow["jobs"].values()
    service = job["services"]["mockstatus"]
    assert service["ports"] == [f"8080:{IMAGE_ENV['MOCKSTATUS_PORT']}"]
    for name, value in service["env"].items():
        assert name in {option.env for option in SETTINGS}, f"{name} is not a setting"
        SETTINGS_BY_NAME[name.removeprefix("MOCKSTATUS_").lower()].parse(value)
    assert any("http://localhost:8080/status/" in step.get("run", "") for step in job["steps"])


def test_readme_gitlab_ci_snippet():
    (pipeline,) = blocks_with("test", "services")
    (service,) = pipeline["test"]["services"]
    assert service["alias"] == "mockstatus"
    for name, value in service["variables"].items():
        assert name in {option.env for option in SETTINGS}, f"{name} is not a setting"
        SETTINGS_BY_NAME[name.removeprefix("MOCKSTATUS_").lower()].parse(value)
    assert pipeline["test"]["image"] == STAGES[0].base  # has python, which the script uses
    assert f"http://mockstatus:{IMAGE_ENV['MOCKSTATUS_PORT']}/status/" in " ".join(pipeline["test"]["script"])


def test_every_mockstatus_command_in_the_ci_snippets_is_one_the_cli_takes():
    """The registry-free snippets start the server and wait for it with these commands."""
    from mockstatus.cli import build_parser

    text = " ".join(readme_blocks("yaml"))
    found = re.findall(r"\(?(mockstatus (?:serve|health)[^&\n)]*)", text)
    assert any(c.startswith("mockstatus health") and "--wait" in c for c in found), found
    assert any(c.startswith("mockstatus serve") for c in found), found
    for command in found:
        build_parser().parse_args(shlex.split(command)[1:])  # SystemExit(2) on a flag it does not take
