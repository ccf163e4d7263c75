"""httpx timeouts: a late reply is a read timeout; a server that never accepts is a connect timeout."""

import socket

import httpx
import pytest


def test_read_timeout_when_the_reply_is_late(mockstatus):
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(mockstatus.url("/status/504?delay=0.3"), timeout=httpx.Timeout(1.0, read=0.1))


async def test_read_timeout_with_the_async_client(mockstatus):
    async with httpx.AsyncClient(timeout=httpx.Timeout(1.0, read=0.1)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(mockstatus.url("/status/504?delay=0.3"))


def test_a_reply_inside_the_timeout_is_no_error(mockstatus):
    response = httpx.get(mockstatus.url("/status/504?delay=0.05"), timeout=httpx.Timeout(2.0, read=1.0))
    assert response.status_code == 504


@pytest.fixture
def unaccepting_port():
    """A port that listens but never accepts: once its queue is full, Linux
    drops further SYNs, so a client's connect() hangs until it times out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        while len(fillers) < 16:  # connect until the queue is full and a connect hangs
            try:
                fillers.append(socket.create_connection(("127.0.0.1", port), timeout=0.05))
            except TimeoutError:
                break
        yield port
        for filler in fillers:
            filler.close()


def test_connect_timeout_is_not_a_read_timeout(unaccepting_port):
    with pytest.raises(httpx.ConnectTimeout):
        httpx.get(f"http://127.0.0.1:{unaccepting_port}/", timeout=httpx.Timeout(1.0, connect=0.1))


def test_a_closed_port_is_refused_at_once_not_a_timeout():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/", timeout=0.1)
