"""Retry sequences: ``/sequence/{name}/{codes}`` and ``/__mockstatus/sequences``."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import h11
import pytest
import requests
from wire import connect, h11_responses, read_until_close, request_bytes


def get(server, path: str, **kwargs) -> requests.Response:
    return requests.get(server.url(path), allow_redirects=False, timeout=5, **kwargs)


def positions(server) -> dict:
    return requests.get(server.url("/__mockstatus/sequences"), timeout=5).json()["sequences"]


# --- the n-th request gets the n-th code, with all of that code's semantics ---------------


def test_nth_request_gets_nth_code_with_its_semantics(mockstatus):
    path = "/sequence/pay/503,302,401,204,200"
    replies = [get(mockstatus, path) for _ in range(5)]

    assert [r.status_code for r in replies] == [503, 302, 401, 204, 200]
    assert [r.headers["X-Mockstatus-Step"] for r in replies] == ["1", "2", "3", "4", "5"]
    assert {r.headers["X-Mockstatus-Sequence"] for r in replies} == {"pay"}
    unavailable, found, unauthorized, no_content, ok = replies
    assert (unavailable.reason, unavailable.headers["Retry-After"]) == ("Service Unavailable", "1")
    assert found.headers["Location"] == "/status/200"
    assert unauthorized.headers["WWW-Authenticate"] == 'Basic realm="mockstatus"'
    assert no_content.content == b"" and "Content-Length" not in no_content.headers
    assert ok.text == "200 OK\n"


def test_repeat_count_expands(mockstatus):
    assert [get(mockstatus, "/sequence/r/503*3,200").status_code for _ in range(4)] == [503, 503, 503, 200]


def test_after_the_last_step_the_last_code_repeats(mockstatus):
    replies = [get(mockstatus, "/sequence/end/503,200") for _ in range(5)]
    assert [r.status_code for r in replies] == [503, 200, 200, 200, 200]
    assert [r.headers["X-Mockstatus-Step"] for r in replies] == ["1", "2", "2", "2", "2"]


def test_cycle_starts_over(mockstatus):
    replies = [get(mockstatus, "/sequence/loop/503*2,200?cycle=1") for _ in range(7)]
    assert [r.status_code for r in replies] == [503, 503, 200, 503, 503, 200, 503]
    assert [r.headers["X-Mockstatus-Step"] for r in replies] == ["1", "2", "3", "1", "2", "3", "1"]


def test_options_apply_to_the_step_they_arrive_with(mockstatus):
    path = "/sequence/opts/503,503,503,200"
    first = get(mockstatus, path + "?retry_after=0")
    began = time.perf_counter()
    second = get(mockstatus, path + "?delay=0.1")
    waited = time.perf_counter() - began
    with pytest.raises(requests.ConnectionError):
        get(mockstatus, path + "?fault=reset")
    last = get(mockstatus, path)

    assert (first.status_code, first.headers["Retry-After"]) == (503, "0")
    assert (second.status_code, second.headers["Retry-After"]) == (503, "1")
    assert waited >= 0.1
    assert second.headers["Server-Timing"] == "delay;dur=100"
    assert last.status_code == 200
    journal = mockstatus.requests(sequence="opts")
    assert [(e["step"], e["status"], e["delay"]) for e in journal] == [
        (1, 503, 0.0), (2, 503, 0.1), (3, 503, 0.0), (4, 200, 0.0),
    ]  # fmt: skip


def test_catalog_delay_of_a_code_applies_on_its_step(make_mockstatus):
    server = make_mockstatus({"codes": {504: {"delay": "0.1s"}}})
    began = time.perf_counter()
    slow = get(server, "/sequence/gw/504,200")
    waited = time.perf_counter() - began
    fast = get(server, "/sequence/gw/504,200")
    assert (slow.status_code, fast.status_code) == (504, 200)
    assert waited >= 0.1
    assert [e["delay"] for e in server.requests(sequence="gw")] == [0.1, 0.0]


def test_interim_step_sends_the_1xx_then_a_final_reply(mockstatus):
    with connect(mockstatus) as sock:
        request = h11.Request(method="GET", target="/sequence/hints/103,404", headers=[("Host", "mockstatus.test")])
        interim, final, _ = h11_responses(sock, request)
    assert [r.status_code for r in interim] == [103]
    assert (b"link", b"</style.css>; rel=preload; as=style") in list(interim[0].headers)
    assert final.status_code == 200
    assert (b"x-mockstatus-step", b"1") in list(final.headers)
    assert get(mockstatus, "/sequence/hints/103,404").status_code == 404


def test_headerless_step_sends_only_body_bytes(mockstatus):
    with connect(mockstatus) as sock:
        # No half-close after the request: aiohttp takes it as the client leaving.
        sock.sendall(request_bytes("/sequence/h/600,200"))
        raw = read_until_close(sock)
    assert raw == "源站没有返回响应头部，只返回实体内容\n".encode()
    assert get(mockstatus, "/sequence/h/600,200").status_code == 200


# --- positions and resets ------------------------------------------------------------------


def test_positions_show_each_name(mockstatus):
    get(mockstatus, "/sequence/a/503*2,200")
    get(mockstatus, "/sequence/a/503*2,200")
    get(mockstatus, "/sequence/b/500,200")
    assert positions(mockstatus) == {
        "a": {"spec": "503*2,200", "steps": 3, "calls": 2,
              "last_step": 2, "last_code": 503, "next_step": 3, "next_code": 200, "restarted": False},
        "b": {"spec": "500,200", "steps": 2, "calls": 1,
              "last_step": 1, "last_code": 500, "next_step": 2, "next_code": 200, "restarted": False},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("query", "next_step"), [("", 2), ("?cycle=1", 1)], ids=["after-the-end-repeats-last", "after-the-end-cycle"]
)
def test_positions_after_the_end(mockstatus, query, next_step):
    for _ in range(4):
        get(mockstatus, "/sequence/c/503,200" + query)
    seq = positions(mockstatus)["c"]
    assert (seq["calls"], seq["next_step"]) == (4, next_step)
    assert get(mockstatus, "/sequence/c/503,200" + query).headers["X-Mockstatus-Step"] == str(next_step)


def test_no_positions_before_any_request(mockstatus):
    assert positions(mockstatus) == {}


def test_delete_all_sequences(mockstatus):
    get(mockstatus, "/sequence/a/503,200")
    get(mockstatus, "/sequence/b/503,200")
    reply = requests.delete(mockstatus.url("/__mockstatus/sequences"), timeout=5)
    assert (reply.status_code, reply.json()) == (200, {"reset": "all"})
    assert positions(mockstatus) == {}
    assert get(mockstatus, "/sequence/a/503,200").status_code == 503


def test_delete_one_sequence_keeps_the_others(mockstatus):
    get(mockstatus, "/sequence/a/503,200")
    get(mockstatus, "/sequence/b/503,200")
    reply = requests.delete(mockstatus.url("/__mockstatus/sequences/a"), timeout=5)
    assert (reply.status_code, reply.json()) == (200, {"reset": "a"})
    assert list(positions(mockstatus)) == ["b"]
    assert get(mockstatus, "/sequence/a/503,200").status_code == 503
    assert get(mockstatus, "/sequence/b/503,200").status_code == 200


def test_delete_an_unknown_sequence_is_404_naming_it(mockstatus):
    reply = requests.delete(mockstatus.url("/__mockstatus/sequences/nope"), timeout=5)
    assert reply.status_code == 404
    assert "'nope'" in reply.json()["error"]


def test_oldest_name_is_evicted_above_max_sequences(make_mockstatus):
    server = make_mockstatus(max_sequences=2)
    for name in ("one", "two", "three"):
        get(server, f"/sequence/{name}/503,200")
    assert list(positions(server)) == ["two", "three"]
    assert get(server, "/sequence/one/503,200").status_code == 503  # starts over


# --- conflicts ------------------------------------------------------------------------------


def test_same_name_with_another_code_list_is_409_naming_the_conflict(mockstatus):
    assert get(mockstatus, "/sequence/pay/503,200").status_code == 503
    conflict = get(mockstatus, "/sequence/pay/500,200")
    assert conflict.status_code == 409
    assert conflict.reason == "Conflict"
    assert "sequence 'pay' is already running '503,200', not '500,200'" in conflict.text
    assert "DELETE /__mockstatus/sequences/pay" in conflict.text
    # The conflict used up no step, and a reset frees the name.
    assert positions(mockstatus)["pay"]["calls"] == 1
    requests.delete(mockstatus.url("/__mockstatus/sequences/pay"), timeout=5)
    assert get(mockstatus, "/sequence/pay/500,200").status_code == 500


def test_the_same_codes_written_another_way_are_no_conflict(mockstatus):
    assert get(mockstatus, "/sequence/pay/503*2,200").status_code == 503
    assert get(mockstatus, "/sequence/pay/503,503,200").status_code == 503
    assert get(mockstatus, "/sequence/pay/503,503*1,200*1").status_code == 200


# --- concurrency ----------------------------------------------------------------------------


async def test_100_concurrent_calls_each_get_a_distinct_step(mockstatus):
    codes = list(range(200, 300))  # a different code per step, so each reply names its step
    url = mockstatus.url("/sequence/burst/" + ",".join(map(str, codes)))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:

        async def call() -> tuple[int, int]:
            async with session.get(url) as reply:
                await reply.read()
                return reply.status, int(reply.headers["X-Mockstatus-Step"])

        results = await asyncio.gather(*(call() for _ in range(100)))

    assert sorted(step for _, step in results) == list(range(1, 101))
    assert all(status == 199 + step for status, step in results)
    assert sorted(e["step"] for e in mockstatus.requests(sequence="burst")) == list(range(1, 101))
    assert positions(mockstatus)["burst"]["calls"] == 100


# --- bad input ------------------------------------------------------------------------------


BAD_SEQUENCES = [
    ("/sequence/x/503*0,200", "bad repeat '0' in '503*0'", "at least 1"),
    ("/sequence/x/503*,200", "bad repeat '' in '503*'", "whole number"),
    ("/sequence/x/503*2x", "bad repeat '2x' in '503*2x'", "whole number"),
    ("/sequence/x/5o3,200", "bad code '5o3'", "exactly three ASCII digits"),
    ("/sequence/x/2_00", "bad code '2_00'", "exactly three ASCII digits"),
    ("/sequence/x/%D9%A5%D9%A0%D9%A3", "bad code '٥٠٣'", "exactly three ASCII digits"),
    ("/sequence/x/503:2,200", "bad code '503:2'", "exactly three ASCII digits"),
    ("/sequence/x/503,,200", "bad sequence '503,,200': empty item", "CODE*COUNT"),
    ("/sequence/x/", "bad sequence '': empty item", "CODE*COUNT"),
    ("/sequence/x/200*10001", "sequence '200*10001' is too long", "at most 10000 steps"),
    ("/sequence/bad%20name/503,200", "bad sequence name 'bad name'", "A-Z a-z 0-9"),
    ("/sequence/x/503,200?cycle=2", "bad cycle '2'", "1 or 0"),
    ("/sequence/x/503,200?delay=soon", "bad delay 'soon'", ""),
    ("/sequence/x", "missing codes in '/sequence/x'", "/sequence/<name>/<codes>"),
    ("/sequence", "missing codes in '/sequence'", "/sequence/<name>/<codes>"),
]


@pytest.mark.parametrize(("path", "named", "allowed"), BAD_SEQUENCES, ids=[f"bad{p}" for p, _, _ in BAD_SEQUENCES])
def test_bad_sequence_is_400_naming_the_value(mockstatus, path, named, allowed):
    reply = get(mockstatus, path)
    assert reply.status_code == 400
    assert named in reply.text
    assert allowed in reply.text
    assert positions(mockstatus) == {}  # nothing was started


def test_a_rejected_request_uses_up_no_step(mockstatus):
    assert get(mockstatus, "/sequence/s/503,500,200").status_code == 503
    assert get(mockstatus, "/sequence/s/503,500,200?delay=soon").status_code == 400
    assert get(mockstatus, "/sequence/s/503,500,200").status_code == 500
