"""401 then a retry with credentials, 429 with Retry-After, and replies that break the client."""

import asyncio

import aiohttp
import httpx
import pytest
import requests


def fetch_report(session: requests.Session, url: str, token: str) -> requests.Response:
    """Code under test: on 401, log in and try once more."""
    response = session.get(url)
    if response.status_code == 401:
        session.headers["Authorization"] = f"Bearer {token}"
        response = session.get(url)
    return response


def test_401_then_retry_with_credentials(mockstatus):
    response = fetch_report(requests.Session(), mockstatus.url("/sequence/login/401,200"), token="t0ken")

    assert response.status_code == 200
    first, second = mockstatus.requests(sequence="login")
    assert first["status"] == 401
    assert "Authorization" not in dict(first["headers"])
    assert dict(second["headers"])["Authorization"] == "Bearer t0ken"


def test_the_401_carries_a_challenge(mockstatus):
    response = requests.get(mockstatus.url("/status/401"))
    assert response.headers["WWW-Authenticate"] == 'Basic realm="mockstatus"'


async def get_politely(session: aiohttp.ClientSession, url: str, sleep=asyncio.sleep) -> int:
    """Code under test: on 429, wait as long as Retry-After says, up to three tries."""
    for _ in range(3):
        async with session.get(url) as response:
            if response.status != 429:
                return response.status
            await sleep(int(response.headers["Retry-After"]))
    return response.status


async def test_429_waits_for_retry_after(mockstatus):
    waits = []

    async def record(seconds):  # record the wait instead of sleeping
        waits.append(seconds)

    async with aiohttp.ClientSession() as session:
        status = await get_politely(session, mockstatus.url("/sequence/limit/429,429,200?retry_after=30"), record)

    assert status == 200
    assert waits == [30, 30]
    assert [r["status"] for r in mockstatus.requests(sequence="limit")] == [429, 429, 200]


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/status/600", requests.ConnectionError),  # no status line: http.client's BadStatusLine
        ("/status/200?fault=reset", requests.ConnectionError),  # TCP reset
        ("/status/200?fault=truncate", requests.exceptions.ChunkedEncodingError),  # body cut short
    ],
    ids=["requests/status/600", "requests/status/200?fault=reset", "requests/status/200?fault=truncate"],
)
def test_broken_replies_with_requests(mockstatus, path, error):
    with pytest.raises(error):
        requests.get(mockstatus.url(path))


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/status/600", httpx.RemoteProtocolError),
        ("/status/200?fault=reset", httpx.ReadError),
        ("/status/200?fault=truncate", httpx.RemoteProtocolError),
    ],
    ids=["httpx/status/600", "httpx/status/200?fault=reset", "httpx/status/200?fault=truncate"],
)
def test_broken_replies_with_httpx(mockstatus, path, error):
    with pytest.raises(error):
        httpx.get(mockstatus.url(path))
