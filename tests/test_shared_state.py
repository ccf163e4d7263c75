"""Shared-service mode: sequences and the journal in a real Redis (Debian's redis-server),
several replicas on one store, namespaces, and what a replica does while its store is away."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
import redis
import requests
from wire import free_port

ROOT = Path(__file__).resolve().parent.parent
REDIS_SERVER = shutil.which("redis-server")


class RedisServer:
    """A redis-server of the test's own on a free port: no persistence, in a tmp dir."""

    def __init__(self, where: Path) -> None:
        self.where = where
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        argv = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self.where)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(port=self.port, socket_timeout=1).ping():
                    return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)


@pytest.fixture
def redis_server(tmp_path):
    if REDIS_SERVER is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (.ci/run installs Debian's)")
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Replica:
    """``python -m mockstatus serve --port 0 --state ...``: a process of its own."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mockstatus", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        line = self.proc.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert found, f"no listening line: {line!r} {self.proc.stderr.read() if self.proc.poll() is not None else ''}"
        self.base_url = found.group(0)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=10)


@pytest.fixture
def replicas(redis_server):
    started = [Replica("--state", redis_server.url) for _ in range(3)]
    try:
        yield started
    finally:
        for replica in started:
            replica.stop()


def wait_for_journal(url: str, count: int, timeout: float = 10.0) -> dict:
    """The journal as one replica lists it, once ``count`` entries are there
    (another replica's writer sends its entries in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        body = requests.get(url, timeout=5).json()
        if body["count"] >= count or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


# --- the key test: three processes, one Redis -------------------------------------------


def test_sequence_503x100_then_200_across_three_replicas_and_one_journal(replicas):
    async def hammer() -> list[tuple[int, int]]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one(index: int) -> tuple[int, int]:
                base = replicas[index % 3].base_url
                async with session.get(f"{base}/sequence/x/503*100,200") as response:
                    await response.read()
                    return response.status, int(response.headers["X-Mockstatus-Step"])

            return await asyncio.gather(*(one(i) for i in range(300)))

    results = asyncio.run(hammer())
    assert Counter(status for status, _ in results) == {503: 100, 200: 200}
    # One atomic step per request across every replica: steps 1-100 once each, then the last step repeats.
    steps = Counter(step for _, step in results)
    assert all(steps[step] == 1 for step in range(1, 101)) and steps[101] == 200
    replica_ids = set()
    for replica in replicas:
        journal = wait_for_journal(f"{replica.base_url}/__mockstatus/requests?sequence=x", 300)
        assert journal["count"] == 300
        assert Counter(entry["status"] for entry in journal["requests"]) == {503: 100, 200: 200}
        replica_ids |= {entry["replica"] for entry in journal["requests"]}
    assert len(replica_ids) == 3
    # Every replica reads the one snapshot.
    for replica in replicas:
        snapshot = requests.get(f"{replica.base_url}/__mockstatus/sequences", timeout=5).json()["sequences"]
        assert snapshot["x"]["calls"] == 300 and snapshot["x"]["next_code"] == 200


def test_a_reset_on_one_replica_is_seen_by_all(replicas):
    first, second, _ = replicas
    assert requests.get(f"{first.base_url}/sequence/pay/503,200", timeout=5).status_code == 503
    assert requests.delete(f"{second.base_url}/__mockstatus/sequences/pay", timeout=5).status_code == 200
    assert requests.get(f"{first.base_url}/sequence/pay/503,200", timeout=5).status_code == 503


# --- the same semantics as one process ---------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/sequence/s/503*2,200", "/sequence/s/503*2,200?cycle=true", "/sequence/s/500,502,503?cycle=1", "/sequence/s/204"],
)
def test_steps_from_redis_are_the_steps_from_memory(path, redis_server, make_mockstatus):
    memory, shared = make_mockstatus(), make_mockstatus(state=redis_server.url)
    for _ in range(7):
        got = [requests.get(server.url(path), timeout=5) for server in (memory, shared)]
        assert got[0].status_code == got[1].status_code
        assert got[0].headers["X-Mockstatus-Step"] == got[1].headers["X-Mockstatus-Step"]
    snapshots = [requests.get(server.url("/__mockstatus/sequences"), timeout=5).json() for server in (memory, shared)]
    assert snapshots[0] == snapshots[1]


def test_conflict_409_says_what_memory_says(redis_server, make_mockstatus):
    messages = []
    for server in (make_mockstatus(), make_mockstatus(state=redis_server.url)):
        assert requests.get(server.url("/sequence/pay/503*2,200"), timeout=5).status_code == 503
        # The same codes spelt another way are no conflict.
        assert requests.get(server.url("/sequence/pay/503,503,200"), timeout=5).status_code == 503
        response = requests.get(server.url("/sequence/pay/500,200"), headers={"Accept": "application/json"}, timeout=5)
        assert response.status_code == 409
        messages.append(response.json())
    assert messages[0] == messages[1]


def test_an_idle_sequence_expires_after_sequence_ttl(redis_server, make_mockstatus):
    server = make_mockstatus(state=redis_server.url, sequence_ttl=90)
    requests.get(server.url("/sequence/idle/503,200"), timeout=5)
    ttl = redis_server.client().pttl("mockstatus:default:seq:idle")
    assert 85_000 < ttl <= 90_000


# --- namespaces --------------------------------------------------------------------------


@pytest.mark.parametrize("shared", [False, True], ids=["memory", "redis"])
def test_namespaces_isolate_sequences_journal_and_resets(shared, request, make_mockstatus):
    settings = {"state": request.getfixturevalue("redis_server").url} if shared else {}
    server = make_mockstatus(**settings)
    one, two = server.url("/sequence/pay/503,200", namespace="suite-a"), server.url("/sequence/pay/503,200")
    by_header = {"X-Mockstatus-Namespace": "suite-b"}
    assert requests.get(one, timeout=5).status_code == 503
    assert requests.get(one, timeout=5).status_code == 200
    # Another namespace (by header) and the default one each start at step 1.
    assert requests.get(two, headers=by_header, timeout=5).status_code == 503
    assert requests.get(two, timeout=5).status_code == 503
    assert requests.get(server.url("/status/418", namespace="suite-a"), timeout=5).status_code == 418

    def journal(namespace: str | None, count: int = 1) -> list[tuple[str, int]]:
        # With Redis, entries reach the store from a background writer: wait for them.
        query = f"?namespace={namespace}" if namespace else ""
        body = wait_for_journal(server.url("/__mockstatus/requests" + query), count)
        return [(entry["path"], entry["status"]) for entry in body["requests"]]

    assert journal("suite-a", 3) == [
        ("/sequence/pay/503,200", 503),
        ("/sequence/pay/503,200", 200),
        ("/status/418", 418),
    ]
    assert journal("suite-b") == [("/sequence/pay/503,200", 503)]
    assert journal(None) == [("/sequence/pay/503,200", 503)]
    # The path prefix also names the namespace for admin routes.
    prefixed = requests.get(server.url("/__mockstatus/sequences", namespace="suite-a"), timeout=5).json()
    assert prefixed["sequences"]["pay"]["calls"] == 2
    # A reset in one namespace leaves the others.
    assert requests.delete(server.url("/__mockstatus/sequences?namespace=suite-a"), timeout=5).status_code == 200
    assert requests.delete(server.url("/__mockstatus/requests?namespace=suite-a"), timeout=5).status_code == 200
    assert requests.get(one, timeout=5).status_code == 503
    assert requests.get(two, headers=by_header, timeout=5).status_code == 200
    assert journal("suite-b", 2) == [("/sequence/pay/503,200", 503), ("/sequence/pay/503,200", 200)]


@pytest.mark.parametrize(
    "how,value",
    [("header", "bad name!"), ("header", "x" * 65), ("path", "bad%20name"), ("query", "a/b")],
)
def test_bad_namespace_is_a_400_naming_it(how, value, mockstatus):
    if how == "header":
        response = requests.get(mockstatus.url("/sequence/a/503"), headers={"X-Mockstatus-Namespace": value})
    elif how == "path":
        response = requests.get(mockstatus.base_url + f"/ns/{value}/status/200")
    else:
        response = requests.get(mockstatus.url(f"/__mockstatus/sequences?namespace={value}"))
    assert response.status_code == 400
    shown = value.replace("%20", " ")
    assert f"bad namespace {shown!r}" in response.text and "1-64 of A-Z a-z 0-9" in response.text


def test_plugin_gives_each_test_a_namespace(mockstatus, mockstatus_namespace):
    assert requests.get(mockstatus.url("/sequence/n/503,200", namespace=mockstatus_namespace)).status_code == 503
    assert requests.get(mockstatus.url("/sequence/n/503,200")).status_code == 503
    assert [e["status"] for e in mockstatus.requests(namespace=mockstatus_namespace)] == [503]
    assert [e["path"] for e in mockstatus.requests()] == ["/sequence/n/503,200"]


# --- when the store goes away ------------------------------------------------------------


def test_redis_stopped_then_back_health_503_sequence_500_status_200(redis_server, make_mockstatus):
    server = make_mockstatus(state=redis_server.url)
    assert requests.get(server.url("/__mockstatus/health"), timeout=5).json()["status"] == "ok"
    assert requests.get(server.url("/sequence/r/503,200"), timeout=5).status_code == 503
    redis_server.stop()

    health = requests.get(server.url("/__mockstatus/health"), timeout=5)
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"
    assert f"state store {redis_server.url} failed" in health.json()["problem"]
    step = requests.get(server.url("/sequence/r/503,200"), timeout=5)
    assert step.status_code == 500
    assert step.headers["X-Mockstatus-Error"] == "state-store"
    assert f"state store {redis_server.url} failed" in step.text
    metrics = requests.get(server.url("/__mockstatus/metrics"), timeout=5).text
    assert float(re.search(r"^mockstatus_store_errors_total (\S+)$", metrics, re.M).group(1)) >= 2
    assert 'mockstatus_build_info{store="redis"' in metrics
    # Plain replies never touch the store.
    assert requests.get(server.url("/status/200"), timeout=5).status_code == 200
    assert requests.get(server.url("/status/503?delay=10ms"), timeout=5).status_code == 503

    redis_server.start()  # an empty Redis on the same port: the client reconnects by itself
    deadline = time.monotonic() + 5
    while requests.get(server.url("/__mockstatus/health"), timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "health did not recover"
        time.sleep(0.05)
    assert requests.get(server.url("/sequence/r/503,200"), timeout=5).status_code == 503
    assert requests.get(server.url("/sequence/r/503,200"), timeout=5).status_code == 200


def test_a_password_is_not_shown(redis_server, make_mockstatus):
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"  # nothing listens there
    server = make_mockstatus(state=url)
    health = requests.get(server.url("/__mockstatus/health"), timeout=5)
    assert health.status_code == 503 and "hunter2" not in health.text and ":***@" in health.text


def test_journal_filters_and_paging_from_redis_are_those_from_memory(redis_server, make_mockstatus):
    servers = make_mockstatus(), make_mockstatus(state=redis_server.url)
    for server in servers:
        for path in ("/status/200", "/status/503", "/sequence/j/503,200", "/sequence/j/503,200", "/status/503"):
            requests.post(server.url(path), data=b"hello", headers={"Authorization": "Bearer secret"}, timeout=5)
        wait_for_journal(server.url("/__mockstatus/requests"), 5)

    def listed(server, query: str) -> dict:
        body = requests.get(server.url("/__mockstatus/requests" + query), timeout=5).json()
        for entry in body["requests"]:
            for varying in ("time", "client", "replica", "headers"):
                entry.pop(varying)
        return body

    for query in ("", "?status=503", "?sequence=j", "?method=post&path=/status/503", "?limit=2", "?after=2&limit=2"):
        memory, shared = (listed(server, query) for server in servers)
        assert memory == shared, query
        assert memory["count"] > 0, query
    # Credentials are redacted before they are stored.
    entry = requests.get(servers[1].url("/__mockstatus/requests?limit=1"), timeout=5).json()["requests"][0]
    assert ["Authorization", "[redacted]"] in entry["headers"]
    bad = requests.get(servers[1].url("/__mockstatus/requests?limit=0"), timeout=5)
    assert bad.status_code == 400 and "bad limit '0'" in bad.text


def test_every_route_answers_under_a_namespace_prefix(mockstatus):
    base = mockstatus.base_url + "/ns/suite-a"
    assert requests.get(base + "/status/418").status_code == 418
    assert requests.get(base + "/").status_code == 200  # the browser page
    assert requests.get(base + "/__mockstatus/health").json()["status"] == "ok"
    refused = requests.post(base + "/__mockstatus/health")
    assert refused.status_code == 405 and refused.headers["Allow"] == "GET, HEAD"
    missing = requests.get(base + "/nowhere")
    assert missing.status_code == 404 and "'/ns/suite-a/nowhere'" in missing.text
    assert [e["namespace"] for e in mockstatus.requests(namespace="suite-a")] == ["suite-a"] * 3


# --- rate limits, outages and the test clock in the store --------------------------------


def test_a_limit_counts_once_across_replicas(redis_server, make_mockstatus):
    """limit=3/1m over two servers on one Redis: three requests pass in all, not three each."""
    servers = [make_mockstatus(state=redis_server.url) for _ in range(2)]
    got = [requests.get(servers[i % 2].url("/status/200?limit=3/1m"), timeout=5) for i in range(6)]
    assert [r.status_code for r in got] == [200, 200, 200, 429, 429, 429]
    assert [r.headers["RateLimit-Remaining"] for r in got] == ["2", "1", "0", "0", "0", "0"]
    assert got[3].headers["Retry-After"] == "60"
    listed = [requests.get(s.url("/__mockstatus/buckets"), timeout=5).json() for s in servers]
    for seen in listed:  # from either replica ("reset" is read a moment apart)
        assert {k: v for k, v in seen["limits"]["/status/200"].items() if k != "reset"} == {
            "limit": "3/1m", "used": 3, "remaining": 0,
        }  # fmt: skip


@pytest.mark.parametrize("shared", [False, True], ids=["memory", "redis"])
def test_limits_outages_and_conflicts_answer_as_memory_does(shared, request, make_mockstatus):
    settings = {"state": request.getfixturevalue("redis_server").url} if shared else {}
    server = make_mockstatus(**settings)

    def get(path: str, **headers) -> requests.Response:
        return requests.get(server.url(path), headers=headers, timeout=5)

    sliding = [get("/status/204?limit=2/1m&limit_mode=sliding").status_code for _ in range(3)]
    assert sliding == [204, 204, 429]
    assert get("/status/204?limit=3/1m").status_code == 409  # the bucket holds another limit
    outage = get("/status/200?outage=30s&bucket=down")
    assert (outage.status_code, outage.headers["Retry-After"]) == (503, "30")
    assert get("/status/200?outage=10s&bucket=down").status_code == 409
    # Another namespace has its own buckets.
    assert get("/status/200?outage=30s&bucket=down", **{"X-Mockstatus-Namespace": "other"}).status_code == 503
    assert get("/status/204?limit=2/1m&limit_mode=sliding", **{"X-Mockstatus-Namespace": "other"}).status_code == 204
    # The test clock moves every replica's limits and outages past their windows.
    requests.post(server.url("/__mockstatus/clock"), json={"advance": "61s"}, timeout=5).raise_for_status()
    assert get("/status/200?outage=30s&bucket=down").status_code == 200
    assert get("/status/204?limit=2/1m&limit_mode=sliding").status_code == 204
    listed = get("/__mockstatus/buckets").json()
    assert listed["outages"]["down"] == {"duration": 30.0, "left": 0.0}
    assert listed["limits"]["/status/204"]["used"] == 1
    assert requests.delete(server.url("/__mockstatus/buckets"), timeout=5).status_code == 200
    assert get("/__mockstatus/buckets").json() == {"limits": {}, "outages": {}}
    assert get("/__mockstatus/buckets?namespace=other").json()["outages"]["down"]["duration"] == 30.0


def test_the_test_clock_is_shared_by_replicas(redis_server, make_mockstatus):
    first, second = (make_mockstatus(state=redis_server.url) for _ in range(2))
    assert requests.get(first.url("/status/200?outage=1m&bucket=b"), timeout=5).status_code == 503
    first.advance_clock("2m")  # the plugin's helper, on one replica
    assert requests.get(second.url("/status/200?outage=1m&bucket=b"), timeout=5).status_code == 200
    assert requests.delete(second.url("/__mockstatus/clock"), timeout=5).json() == {"offset": 0.0}
    assert requests.get(first.url("/status/200?outage=1m&bucket=b"), timeout=5).status_code == 503


def test_a_limit_while_redis_is_down_is_a_500_naming_the_store(redis_server, make_mockstatus):
    server = make_mockstatus(state=redis_server.url)
    redis_server.stop()
    got = requests.get(server.url("/status/200?limit=5/1s"), timeout=5)
    assert got.status_code == 500 and got.headers["X-Mockstatus-Error"] == "state-store"
    assert f"state store {redis_server.url} failed" in got.text


def test_a_reset_clears_redis_buckets_and_the_clock_as_memory_does(redis_server, make_mockstatus):
    server = make_mockstatus(state=redis_server.url)
    assert requests.get(server.url("/status/200?limit=1/1m"), timeout=5).status_code == 200
    server.advance_clock("5s")
    server.reset()  # what the plugin does before each test
    assert redis_server.client().get("mockstatus:clock:offset") is None and server.state.clock.offset == 0
    assert requests.get(server.url("/status/200?limit=1/1m"), timeout=5).status_code == 200
