"""One reply over time: the delay, interim 1xx and heartbeats, then the final reply.

``deliver`` picks the delay (``_pick_delay``), counts it from when the
request arrived, writes an interim code's 1xx head (or a heartbeat code's
repeated ones) while it runs, hands the final code to its kind's writer
(``kinds.KINDS``: what goes on the wire, including slow bodies and upgrades)
and records the request in the journal, as 499 if the client went away.
"""

from __future__ import annotations

import asyncio
import math
import time

from aiohttp import web

from .catalog import StatusInfo
from .durations import deadline_after, sleep_at_least, wake_at
from .kinds import Reply, kind_of
from .options import Asked, Options
from .server import ServerState, access_log
from .wire import AlreadySent, write_interim

DEFAULT_INTERVAL = 1.0


def _pick_delay(state: ServerState, info: StatusInfo, options: Options) -> float:
    # Precedence: query > request header (both in options) > catalog > --default-delay.
    if options.delay is not None:
        spec = options.delay
        # A fixed delay needs no generator: Random() costs memory and a urandom
        # seed per request, which thousands of held requests notice.
        return spec.low if spec.low == spec.high else spec.pick(options.random())
    if info.delay is not None:
        return info.delay
    return state.settings.default_delay


async def _wait(request: web.Request, asked: Asked, info: StatusInfo, delay: float) -> None:
    """The delay behind an interim head, with heartbeats if the code has them."""
    if info.heartbeat:
        # Heartbeats (102 Processing) while the delay runs (RFC 2518 §10.1).
        # One at once, then one at each whole interval strictly inside the
        # delay, on an absolute schedule: the count is ceil(delay / interval)
        # however late the timers fire (delay=250ms interval=100ms -> 3).
        interval = asked.options.interval or DEFAULT_INTERVAL
        began = asked.arrived or time.monotonic()
        loop = asyncio.get_running_loop()
        start = loop.time()
        beats = max(1, math.ceil(delay / interval - 1e-9))
        write_interim(request, info.code, info.reason, info.headers)
        for beat in range(1, beats):
            await asyncio.sleep(max(0.0, start + beat * interval - loop.time()))
            write_interim(request, info.code, info.reason, info.headers)
        # The end, like every delay: from the arrival and never short (uvloop's
        # loop.time() has whole milliseconds).
        await sleep_at_least(delay, began)
    elif delay > 0:
        await sleep_at_least(delay, asked.arrived)


async def deliver(
    request: web.Request,
    state: ServerState,
    asked: Asked,
    *,
    extra: list[tuple[str, str]] | None = None,
    body_size: int = 0,
    preview: bytes = b"",
    sequence: str | None = None,
    step: int | None = None,
    restarted: bool = False,
) -> web.StreamResponse:
    options = asked.options
    info = state.catalog.get(asked.code)
    fault = options.fault
    if fault is not None and options.fault_rate is not None and options.random().random() >= options.fault_rate:
        fault = None  # fault=reset:0.1: this request is one of the nine in ten answered normally
    delay = _pick_delay(state, info, options)
    if delay > 0:
        state.delays.observe(delay)
    state.held_replies += 1
    try:
        kind = kind_of(info.kind)[0]
        if not kind.final:
            if not info.heartbeat:  # heartbeats are written by _wait, the first one at once
                await kind.write(Reply(request, state, asked, info, kind))
            await _wait(request, asked, info, delay)
            info = state.catalog.get(options.then or info.then or 200)
        elif delay > 0:
            # The wheel's future itself, not sleep_at_least: a held reply keeps no sleep frame.
            await wake_at(deadline_after(delay, asked.arrived))
        if delay > 0:
            extra = [*(extra or ()), ("Server-Timing", f"delay;dur={delay * 1000:.0f}")]
        # The fault asked for (unless its share let this request through), else the catalog's kind.
        kind_text = fault or info.kind
        kind, argument = kind_of(kind_text)
        response = await kind.write(Reply(request, state, asked, info, kind, extra, argument))
    except asyncio.CancelledError:
        if state.closing:
            raise  # cut by a shutdown after its grace, not by the client
        # The client went away during the delay (aiohttp cancels the handler):
        # nothing keeps running; log it as nginx does, 499 Client Closed Request.
        _record_gone(request, state, delay, body_size, preview, sequence, step, restarted, fault)
        if state.settings.access_log:
            access_log.info(
                '%s "%s %s HTTP/%d.%d" 499 - client closed the connection during a %.3fs delay',
                request.remote, asked.method, request.path_qs, asked.version[0], asked.version[1], delay,
            )  # fmt: skip
        raise
    except ConnectionResetError:
        _record_gone(request, state, delay, body_size, preview, sequence, step, restarted, fault)
        return AlreadySent(499)
    finally:
        state.held_replies -= 1
    assert response is not None  # a final kind's writer returns the response
    # response.status, not info.code: a refused upgrade answers 400/426 instead of 101.
    if argument is None:  # not a fault: aiohttp sent the whole reply
        state.journal.record(
            request, response.status, body_size=body_size, body_preview=preview, delay=delay,
            sequence=sequence, step=step, restarted=restarted,
        )  # fmt: skip
    else:
        state.journal.record(
            request, response.status, body_size=getattr(response, "received", body_size), body_preview=preview,
            delay=delay, sequence=sequence, step=step, fault=kind_text, bytes_sent=getattr(response, "sent", None),
            restarted=restarted,
        )  # fmt: skip
    return response


def _record_gone(
    request: web.Request, state: ServerState, delay: float, body_size: int, preview: bytes,
    sequence: str | None, step: int | None, restarted: bool, fault: str | None,
) -> None:  # fmt: skip
    state.journal.record(
        request, 499, body_size=body_size, body_preview=preview, delay=delay,
        client_gone=True, sequence=sequence, step=step, restarted=restarted, fault=fault,
    )  # fmt: skip
