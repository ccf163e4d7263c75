"""The baselines, measured beside mockstatus: bare aiohttp handlers (uvloop, no access log).

``/`` is a hello-world.  ``/same/<code>`` sends, from a bare handler, exactly
the bytes mockstatus sends for that code (status line, headers, body, taken
from mockstatus's own precomputed table), so the run can tell what mockstatus's
code costs apart from what its required headers cost on the wire.
"""

import asyncio
import sys
from pathlib import Path

import uvloop
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mockstatus.bodies import Replies  # noqa: E402
from mockstatus.catalog import load_catalog  # noqa: E402

REPLIES = Replies(load_catalog())


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="Hello, world")


async def held(request: web.Request) -> web.Response:
    """``/held?delay=SECONDS``: the least a server can hold a delayed request with."""
    await asyncio.sleep(float(request.query.get("delay", "0")))
    return web.Response(text="Hello, world")


def same_as_mockstatus(code: int, fmt: str):
    prepared = REPLIES.prepared(code, fmt, "en")

    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=code, reason=prepared.info.reason, body=prepared.body, headers=prepared.headers)

    return handler


def main() -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    app.router.add_get("/held", held)
    app.router.add_get("/same/200", same_as_mockstatus(200, "text"))
    app.router.add_get("/same/418-json", same_as_mockstatus(418, "json"))
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
