"""``/__mockstatus/metrics``: the Prometheus text format, read back with prometheus-client's own parser."""

from __future__ import annotations

import socket
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families


def scrape(server, **kwargs) -> dict[str, list]:
    response = requests.get(server.url("/__mockstatus/metrics"), timeout=5, **kwargs)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def value(samples: list, name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    return sum(found)


def test_requests_by_code_kind_fault_and_method(make_mockstatus):
    server = make_mockstatus()
    for _ in range(3):
        requests.get(server.url("/status/200"))
    requests.post(server.url("/status/503"), data=b"x")
    requests.get(server.url("/status/204?delay=20ms"))
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url("/status/200?fault=reset-after:10"))
    metrics = scrape(server)
    samples = metrics["mockstatus_requests"]
    assert value(samples, "mockstatus_requests_total", code="200", kind="normal", fault="", method="GET") == 3
    assert value(samples, "mockstatus_requests_total", code="503", method="POST") == 1
    assert value(samples, "mockstatus_requests_total", code="200", fault="reset-after", kind="reset-after") == 1
    delays = metrics["mockstatus_delay_seconds"]
    assert value(delays, "mockstatus_delay_seconds_count") == 1
    assert value(delays, "mockstatus_delay_seconds_bucket", le="0.01") == 0
    assert value(delays, "mockstatus_delay_seconds_bucket", le="0.025") == 1
    assert value(delays, "mockstatus_delay_seconds_sum") == pytest.approx(0.02)
    assert value(metrics["mockstatus_build_info"], "mockstatus_build_info", store="memory") == 1
    assert value(metrics["mockstatus_open_connections"], "mockstatus_open_connections") >= 1


def test_client_gone_and_held_replies(make_mockstatus):
    server = make_mockstatus()
    with socket.create_connection((server.host, server.port)) as sock:
        sock.sendall(b"GET /status/200?delay=300ms HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 5
        while value(scrape(server)["mockstatus_held_replies"], "mockstatus_held_replies") != 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    deadline = time.monotonic() + 5
    while value(scrape(server)["mockstatus_client_gone"], "mockstatus_client_gone_total") != 1:
        assert time.monotonic() < deadline, "the 499 was not counted"
        time.sleep(0.01)
    metrics = scrape(server)
    assert value(metrics["mockstatus_requests"], "mockstatus_requests_total", code="499", kind="client-gone") == 1
    assert value(metrics["mockstatus_held_replies"], "mockstatus_held_replies") == 0


def test_metrics_are_per_server_and_need_the_admin_token(make_mockstatus):
    one, two = make_mockstatus(admin_token="s3cret"), make_mockstatus()
    requests.get(one.url("/status/418"))
    assert requests.get(one.url("/__mockstatus/metrics")).status_code == 401
    auth = {"headers": {"Authorization": "Bearer s3cret"}}
    assert value(scrape(one, **auth)["mockstatus_requests"], "mockstatus_requests_total", code="418") == 1
    assert value(scrape(two)["mockstatus_requests"], "mockstatus_requests_total", code="418") == 0


def test_an_unusual_method_counts_as_other():
    from mockstatus.metrics import method_label

    assert (method_label("GET"), method_label("PROPFIND"), method_label("X-RANDOM-123")) == ("GET", "PROPFIND", "other")
