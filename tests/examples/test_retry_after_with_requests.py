"""requests + urllib3 Retry against a 503, 503, 200 sequence."""

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry


def session_with(retry: Retry) -> requests.Session:
    session = requests.Session()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


def test_retry_after_makes_urllib3_retry(mockstatus):
    # No status_forcelist: urllib3 retries a 503 only because it carries Retry-After.
    session = session_with(Retry(total=3, backoff_factor=0))

    response = session.get(mockstatus.url("/sequence/pay/503,503,200?retry_after=0"))

    assert response.status_code == 200
    attempts = mockstatus.requests(sequence="pay")
    assert [a["status"] for a in attempts] == [503, 503, 200]


def test_without_respecting_retry_after_there_is_one_attempt(mockstatus):
    session = session_with(Retry(total=3, backoff_factor=0, respect_retry_after_header=False))

    response = session.get(mockstatus.url("/sequence/pay/503,503,200?retry_after=0"))

    assert response.status_code == 503
    assert len(mockstatus.requests(sequence="pay")) == 1


def test_urllib3_waits_as_long_as_retry_after_says(mockstatus, monkeypatch):
    waits = []
    monkeypatch.setattr("urllib3.util.retry.time.sleep", waits.append)  # record, don't wait
    session = session_with(Retry(total=3, backoff_factor=0))

    session.get(mockstatus.url("/sequence/pay/503,503,200?retry_after=7"))

    assert waits == [7, 7]
