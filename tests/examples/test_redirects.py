"""Following redirects after a POST: 301/302/303 turn it into a GET, 307/308 keep method and body."""

import aiohttp
import pytest
import requests

# code -> (method, body) of the request that follows the redirect
FOLLOWED_WITH = {
    301: ("GET", ""),
    302: ("GET", ""),
    303: ("GET", ""),
    307: ("POST", "order=42"),
    308: ("POST", "order=42"),
}
CODES = pytest.mark.parametrize("code", FOLLOWED_WITH, ids=[f"POST/status/{code}" for code in FOLLOWED_WITH])


def assert_followed(journal, code):
    first, second = journal
    assert (first["method"], first["path"], first["body"]) == ("POST", f"/status/{code}", "order=42")
    assert second["path"] == "/status/200"  # the catalog's Location for 3xx
    assert (second["method"], second["body"]) == FOLLOWED_WITH[code]


@CODES
def test_requests_follows_the_redirect(mockstatus, code):
    response = requests.post(mockstatus.url(f"/status/{code}"), data=b"order=42")

    assert response.status_code == 200
    assert response.history[0].status_code == code
    assert_followed(mockstatus.requests(), code)


@CODES
async def test_aiohttp_follows_the_redirect(mockstatus, code):
    async with aiohttp.ClientSession() as session:
        async with session.post(mockstatus.url(f"/status/{code}"), data=b"order=42") as response:
            assert response.status == 200
            assert response.history[0].status == code

    assert_followed(mockstatus.requests(), code)
