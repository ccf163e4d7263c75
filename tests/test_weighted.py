"""``/status/{code},{code}:{weight},...``: a pick by weight, repeatable with ``?seed=``.

The distribution checks use fixed seeds, so they are deterministic; the bounds
are still the statistical ones (binomial, about 4.5 standard deviations), so a
biased or ignored weight fails them while a fair pick always passes.
"""

from __future__ import annotations

import collections
import math

import pytest
import requests


@pytest.fixture
def session():
    with requests.Session() as s:  # keep-alive: hundreds of requests stay cheap
        yield s


def pick(session, mockstatus, codes: str, **params) -> requests.Response:
    response = session.get(mockstatus.url(f"/status/{codes}"), params=params, allow_redirects=False, timeout=5)
    assert response.headers["X-Mockstatus-Choice"] == str(response.status_code)
    return response


def within(count: int, n: int, p: float) -> bool:
    sd = math.sqrt(n * p * (1 - p))
    return abs(count - n * p) <= 4.5 * sd


LISTS = [
    ("200,503", {200, 503}),
    ("200:1,503:3", {200, 503}),
    ("200:0.5,201:.5,202:2.", {200, 201, 202}),
    ("418:7", {418}),
    ("799,418", {799, 418}),
]


@pytest.mark.parametrize("codes,allowed", LISTS, ids=[f"status/{codes}" for codes, _ in LISTS])
def test_pick_is_one_of_the_listed_codes(session, mockstatus, codes, allowed):
    seen = {pick(session, mockstatus, codes, seed=seed).status_code for seed in range(40)}
    assert seen <= allowed
    assert len(seen) == len(allowed)  # 40 seeds reach every code of these lists


def test_chosen_reply_has_that_codes_semantics(session, mockstatus):
    response = pick(session, mockstatus, "302:1,302:2")
    assert response.status_code == 302
    assert response.headers["Location"] == "/status/200"
    response = pick(session, mockstatus, "503,503")
    assert response.headers["Retry-After"] == "1"
    response = pick(session, mockstatus, "204,204")
    assert response.content == b"" and "Content-Length" not in response.headers


def test_seed_repeats_the_pick(session, mockstatus):
    for seed in range(20):
        first = [pick(session, mockstatus, "200,201,202,203,500", seed=seed).status_code for _ in range(5)]
        assert len(set(first)) == 1, f"seed={seed} gave {first}"


def test_seed_as_a_request_header(session, mockstatus):
    url = mockstatus.url("/status/200,201,202,203,500")
    picks = {session.get(url, headers={"X-Mockstatus-Seed": "11"}, timeout=5).status_code for _ in range(5)}
    assert picks == {pick(session, mockstatus, "200,201,202,203,500", seed=11).status_code}


def test_seeds_differ(session, mockstatus):
    """Different seeds give different picks (else ?seed would be ignored)."""
    picks = [pick(session, mockstatus, "200,201,202,203,500", seed=seed).status_code for seed in range(30)]
    assert len(set(picks)) >= 4


def test_seed_repeats_across_servers(session, mockstatus, make_mockstatus):
    """The same URL picks the same code on another server: a test can hard-code the expectation it saw."""
    other = make_mockstatus()
    ours = [pick(session, mockstatus, "200,201,202,500:2", seed=s).status_code for s in range(15)]
    theirs = [pick(session, other, "200,201,202,500:2", seed=s).status_code for s in range(15)]
    assert ours == theirs


def test_weights_shape_the_distribution(session, mockstatus):
    n = 400
    counts = collections.Counter(pick(session, mockstatus, "200:1,503:3", seed=seed).status_code for seed in range(n))
    assert within(counts[503], n, 0.75), counts


def test_default_weight_is_one(session, mockstatus):
    n = 400
    counts = collections.Counter(pick(session, mockstatus, "200,503", seed=seed).status_code for seed in range(n))
    assert within(counts[200], n, 0.5), counts


def test_decimal_weights(session, mockstatus):
    n = 400
    counts = collections.Counter(
        pick(session, mockstatus, "200:0.2,201:0.8", seed=1000 + s).status_code for s in range(n)
    )
    assert within(counts[201], n, 0.8), counts


def test_tiny_weight_is_almost_never_picked(session, mockstatus):
    counts = collections.Counter(
        pick(session, mockstatus, "200:1000000,500:0.000001", seed=seed).status_code for seed in range(50)
    )
    assert counts == {200: 50}


def test_without_seed_the_pick_varies(session, mockstatus):
    picks = {pick(session, mockstatus, "200,201,202,203").status_code for _ in range(60)}
    assert len(picks) >= 2  # 4 codes, 60 fair picks: all the same has probability 4 * 4**-60


def test_head_and_other_methods_pick_too(mockstatus):
    for method in ("HEAD", "POST", "PROPFIND"):
        response = requests.request(method, mockstatus.url("/status/418,418:3"), timeout=5)
        assert response.status_code == 418
        assert response.headers["X-Mockstatus-Choice"] == "418"


def test_choice_header_is_exposed_to_browsers(session, mockstatus):
    session.headers["Origin"] = "http://app.test"
    response = pick(session, mockstatus, "200,201", seed=3)
    assert "X-Mockstatus-Choice" in [h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")]


def test_single_code_has_no_choice_header(session, mockstatus):
    assert "X-Mockstatus-Choice" not in session.get(mockstatus.url("/status/200"), timeout=5).headers
