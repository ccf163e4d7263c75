"""Chance that repeats: latency distributions and faults by probability, seeded by ``?seed=``."""

from __future__ import annotations

import random
import statistics
import time

import httpx
import pytest
import requests

from mockstatus.durations import parse_delay


def get(server, path: str, **kwargs) -> requests.Response:
    return requests.get(server.url(path), timeout=5, **kwargs)


def applied_ms(response: requests.Response) -> int:
    name, _, dur = response.headers["Server-Timing"].partition(";dur=")
    assert name == "delay"
    return int(dur)


# --- latency distributions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "mean", "low", "high"),
    [
        ("normal:1s,200ms", 1.0, 0.0, 300.0),
        ("lognormal:500ms,0.5", 0.5 * 2.718281828**0.125, 0.0, 300.0),  # e^(mu + sigma^2/2)
        ("exp:300ms", 0.3, 0.0, 300.0),
        ("uniform:1s-3s", 2.0, 1.0, 3.0),
        ("exp:1s,max=2s", None, 0.0, 2.0),
        ("normal:100ms,1s", None, 0.0, 300.0),  # mostly negative draws, cut at zero
    ],
)
def test_distributions_draw_what_they_say(text, mean, low, high):
    spec = parse_delay(text, max_delay=300)
    rng = random.Random(1)
    picks = [spec.pick(rng) for _ in range(20_000)]
    assert low <= min(picks) and max(picks) <= high
    if mean is not None:
        assert statistics.fmean(picks) == pytest.approx(mean, rel=0.03)
    if "max=" in text:
        assert max(picks) == high  # the tail is cut at the cap, not redrawn
    if text.startswith("normal:100ms,1s"):
        assert picks.count(0.0) > 5000


def test_lognormal_median_is_its_first_number():
    spec = parse_delay("lognormal:500ms,0.8", max_delay=300)
    rng = random.Random(2)
    assert statistics.median(spec.pick(rng) for _ in range(20_000)) == pytest.approx(0.5, rel=0.03)


def test_a_drawn_delay_is_applied_reported_and_repeated_by_its_seed(mockstatus):
    path = "/status/200?delay=normal:150ms,100ms,max=250ms&seed=7"
    started = time.monotonic()
    first = get(mockstatus, path)
    took = time.monotonic() - started
    second = get(mockstatus, path)
    ms = applied_ms(first)
    assert 0 <= ms <= 250
    assert took >= ms / 1000 - 0.002
    assert applied_ms(second) == ms
    assert [entry["delay"] for entry in mockstatus.requests()] == [pytest.approx(ms / 1000, abs=0.001)] * 2


def test_seeds_draw_different_delays_and_the_header_form_works(mockstatus):
    drawn = {
        applied_ms(get(mockstatus, "/status/204", headers={"X-Mockstatus-Delay": "exp:20ms,max=100ms", "X-Mockstatus-Seed": str(seed)}))
        for seed in range(8)
    }  # fmt: skip
    assert len(drawn) > 3
    assert max(drawn) <= 100


@pytest.mark.parametrize(
    ("value", "named", "allowed"),
    [
        ("normal:1s,-1", "'normal:1s,-1'", "not negative"),
        ("normal:1s", "'normal:1s'", "normal:MEAN,SD"),
        ("lognormal:500ms,big", "'lognormal:500ms,big'", "lognormal:MEDIAN,SIGMA"),
        ("lognormal:0s,0.5", "'lognormal:0s,0.5'", "median must be above 0"),
        ("exp:0", "'exp:0'", "mean must be above 0"),
        ("exp:10m", "'exp:10m'", "maximum of 300s"),
        ("exp:1s,max=10m", "'exp:1s,max=10m'", "maximum of 300s"),
        ("poisson:1s", "'poisson'", "normal:MEAN,SD"),
        ("uniform:3s-1s", "'uniform:3s-1s'", "range start is above its end"),
        ("uniform:1s", "'uniform:1s'", "uniform:LOW-HIGH"),
    ],
)
def test_bad_distributions_are_400_naming_them(mockstatus, value, named, allowed):
    response = get(mockstatus, "/status/200", params={"delay": value})
    assert response.status_code == 400
    assert named in response.text and allowed in response.text


# --- faults by probability ---------------------------------------------------------------------


def outcome(server, query: str) -> str:
    try:
        return str(get(server, f"/status/200?{query}").status_code)
    except requests.ConnectionError:
        return "reset"


def test_fault_share_faults_some_requests_and_the_journal_names_them(mockstatus):
    seen = [outcome(mockstatus, f"fault=reset:0.3&seed={seed}") for seed in range(40)]
    assert 4 <= seen.count("reset") <= 24
    assert set(seen) == {"reset", "200"}
    journal = mockstatus.requests()
    assert [entry["fault"] for entry in journal] == [None if s == "200" else "reset" for s in seen]
    # Each seed decides the same way again.
    assert [outcome(mockstatus, f"fault=reset:0.3&seed={seed}") for seed in range(40)] == seen


@pytest.mark.parametrize(("share", "expected"), [("0", "200"), ("1", "reset"), ("1.0", "reset"), (".0", "200")])
def test_a_share_of_0_or_1_is_never_or_always(mockstatus, share, expected):
    assert {outcome(mockstatus, f"fault=reset:{share}") for _ in range(10)} == {expected}


def test_a_fault_share_works_with_every_fault_kind(mockstatus):
    with httpx.Client(timeout=2) as client:
        for kind in ("empty", "garbage", "malformed", "truncate"):
            url = mockstatus.url(f"/status/200?fault={kind}:1")
            with pytest.raises(httpx.HTTPError):
                client.get(url).read()
            assert client.get(mockstatus.url(f"/status/200?fault={kind}:0")).status_code == 200
    faults = [entry["fault"] for entry in mockstatus.requests()]
    assert faults == ["empty", None, "garbage", None, "malformed", None, "truncate", None]


def test_a_share_comes_after_a_faults_own_argument(mockstatus):
    """reset-after:64:1 cuts every reply after 64 bytes, :0 none; the journal keeps the argument."""
    with httpx.Client(timeout=2) as client:
        with pytest.raises(httpx.HTTPError):
            client.get(mockstatus.url("/status/200?fault=reset-after:64:1")).read()
        assert client.get(mockstatus.url("/status/200?fault=reset-after:64:0")).status_code == 200
        assert client.get(mockstatus.url("/status/200?fault=close-after-requests:5:1")).status_code == 200
    entries = mockstatus.requests()
    assert [entry["fault"] for entry in entries] == ["reset-after:64", None, "close-after-requests:5"]
    assert entries[0]["bytes_sent"] == 64


def test_plain_fault_is_recorded_too(mockstatus):
    assert outcome(mockstatus, "fault=reset") == "reset"
    assert outcome(mockstatus, "delay=10ms") == "200"
    assert [entry["fault"] for entry in mockstatus.requests()] == ["reset", None]


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("reset:1.5", "'1.5'"),
        ("reset:-0.1", "'-0.1'"),
        ("reset:x", "'x'"),
        ("reset:", "''"),
        ("bogus:0.5", "'bogus:0.5'"),
    ],
)
def test_bad_fault_shares_are_400_naming_them(mockstatus, value, named):
    response = get(mockstatus, "/status/200", params={"fault": value})
    assert response.status_code == 400
    assert named in response.text
    assert "reset" in response.text and ("0 to 1" in response.text or "e.g. reset:0.1" in response.text)
