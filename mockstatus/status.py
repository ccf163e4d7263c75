"""The ``/status/{codes}`` and ``/sequence/{name}/{codes}`` handlers.

Handlers stay thin: parse (small helpers that raise ``BadRequest``), pick the
code, then ``deliver`` walks the reply through interim responses, the delay
and the wire-level kind.  Everything that depends only on the code is
precomputed in ``Replies``.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
import re
import time

from aiohttp import web
from multidict import CIMultiDict

from .catalog import CODE_FORM, CODE_PATTERN, FAULTS, StatusInfo
from .options import NO_OPTIONS, BadRequest, Options, has_options, parse_code_text, parse_options
from .protocol import arrival
from .render import negotiate_format, negotiate_lang
from .replies import (
    WEBSOCKET_VERSION,
    RawReply,
    response_body,
    response_headers,
    send_fault,
    send_headerless,
    send_raw_upgrade,
    send_websocket_echo,
    websocket_problem,
    write_interim,
)
from .server_state import STATE, ServerState
from .state import SequenceConflict

_WEIGHT = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_REPEAT = re.compile(r"[0-9]{1,5}", re.ASCII)
# RFC 9110 §7.8: protocol = protocol-name ["/" protocol-version], both tokens.
_PROTOCOL = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:/[!#$%&'*+\-.^_`|~0-9A-Za-z]+)?", re.ASCII)
_SEQUENCE_NAME = re.compile(r"[A-Za-z0-9._~-]{1,128}", re.ASCII)
MAX_CHOICES = 1000
MAX_SEQUENCE_STEPS = 10_000
DEFAULT_INTERVAL = 1.0
DEFAULT_DRIP_CHUNKS = 10


# --- parsing helpers ----------------------------------------------------------------


def parse_choices(text: str) -> list[tuple[int, float]]:
    """``200,503:2`` -> [(200, 1.0), (503, 2.0)]; weights are positive decimals."""
    items = text.split(",")
    if len(items) > MAX_CHOICES:
        raise BadRequest(f"too many codes in {text[:40]!r}...: at most {MAX_CHOICES}")
    choices = []
    for item in items:
        if not item:
            raise BadRequest(f"bad code list {text!r}: empty item; expected CODE or CODE:WEIGHT separated by commas")
        code_text, sep, weight_text = item.partition(":")
        code = parse_code_text(code_text)
        weight = 1.0
        if sep:
            if not _WEIGHT.fullmatch(weight_text) or float(weight_text) <= 0:
                raise BadRequest(
                    f"bad weight {weight_text!r} in {item!r}: expected a positive number such as 1, 0.5 or 3"
                )
            weight = float(weight_text)
        choices.append((code, weight))
    return choices


@functools.lru_cache(maxsize=256)
def weighted_choices(text: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Codes and cumulative weights of a list, parsed once per distinct list
    (a load test repeats the same few URLs; a bad list raises and is not cached)."""
    choices = parse_choices(text)
    return tuple(code for code, _ in choices), tuple(itertools.accumulate(weight for _, weight in choices))


def parse_sequence(text: str) -> tuple[int, ...]:
    """``503*2,200`` -> (503, 503, 200)."""
    codes: list[int] = []
    for item in text.split(","):
        if not item:
            raise BadRequest(f"bad sequence {text!r}: empty item; expected CODE or CODE*COUNT separated by commas")
        code_text, sep, count_text = item.partition("*")
        code = parse_code_text(code_text)
        count = 1
        if sep:
            if not _REPEAT.fullmatch(count_text) or int(count_text) < 1:
                raise BadRequest(f"bad repeat {count_text!r} in {item!r}: expected a whole number of at least 1")
            count = int(count_text)
        if len(codes) + count > MAX_SEQUENCE_STEPS:
            raise BadRequest(f"sequence {text[:40]!r} is too long: at most {MAX_SEQUENCE_STEPS} steps")
        codes.extend([code] * count)
    return tuple(codes)


async def read_body(request: web.BaseRequest, limit: int, preview_size: int) -> tuple[int, bytes]:
    """Read and discard the request body, keeping a preview for the journal."""
    if not request.body_exists:
        return 0, b""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BadRequest(f"request body of {declared} bytes is above the max body size of {limit} bytes", 413)
    size = 0
    preview = bytearray()
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"request body is above the max body size of {limit} bytes", 413)
        if len(preview) < preview_size:
            preview += chunk[: preview_size - len(preview)]
    return size, bytes(preview)


# --- handlers -----------------------------------------------------------------------


async def status_handler(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    text = request.match_info["codes"]
    info = state.immediate.get(text)
    if info is not None and _plain(request):
        return _immediate(request, state, info)
    try:
        options = parse_options(request, state.settings) if has_options(request) else NO_OPTIONS
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return state.preflight(request)
        body_size, preview = await read_body(request, state.settings.max_body_size, state.preview_size)
        extra = None
        if CODE_PATTERN.fullmatch(text):
            code = int(text)
        elif "," in text or ":" in text:
            codes, cumulative = weighted_choices(text)
            code = options.random().choices(codes, cum_weights=cumulative)[0]
            extra = [("X-Mockstatus-Choice", str(code))]
            info = state.immediate.get(str(code))
            if info is not None and options is NO_OPTIONS and not body_size:
                return _immediate(request, state, info, extra)
        else:
            raise BadRequest(f"bad code {text!r}: expected {CODE_FORM}, e.g. /status/418, or a list /status/200,503:2")
    except BadRequest as exc:
        return state.error(request, exc.status, exc.message)
    return await deliver(request, state, code, options, extra=extra, body_size=body_size, preview=preview)


def _plain(request: web.BaseRequest) -> bool:
    """No options, no body, no preflight, no Expect: the precomputed reply is the whole answer."""
    return (
        request.method != "OPTIONS"
        and not request.body_exists
        and "Expect" not in request.headers  # the app's expect handler answers it (417 or 100)
        and not has_options(request)
    )


def _immediate(
    request: web.Request, state: ServerState, info: StatusInfo, extra: list[tuple[str, str]] | None = None
) -> web.Response:
    """The hot path: a catalog code asked for with no options, no body and no delay.

    Everything but the negotiation is precomputed, and nothing awaits, so the
    reply costs what a bare aiohttp handler does plus a dict lookup and a
    journal entry (benchmarks/throughput.py).
    """
    headers = request.headers
    fmt = negotiate_format(headers.get("Accept"))
    lang = negotiate_lang(headers.get("Accept-Language")) if "Accept-Language" in headers else "en"
    prepared = state.replies.prepared(info.code, fmt, lang)
    if extra or "Origin" in headers:
        response_headers = CIMultiDict(prepared.headers)
        if extra:
            response_headers.extend(extra)
        if "Origin" in headers:
            state.cors(request, response_headers)
    else:
        response_headers = prepared.headers
    state.journal.record_plain(request, info.code)
    return web.Response(status=info.code, reason=info.reason, body=prepared.body, headers=response_headers)


async def status_missing(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    return state.error(request, 400, f"missing code: expected /status/<code> with {CODE_FORM}, e.g. /status/418")


async def sequence_missing(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    return state.error(
        request,
        400,
        f"missing codes in {request.path!r}: expected /sequence/<name>/<codes>, e.g. /sequence/pay/503*2,200",
    )


async def sequence_handler(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    name = request.match_info["name"]
    text = request.match_info["codes"]
    try:
        if not _SEQUENCE_NAME.fullmatch(name):
            raise BadRequest(f"bad sequence name {name!r}: expected 1-128 of A-Z a-z 0-9 . _ ~ -")
        codes = parse_sequence(text)
        options = parse_options(request, state.settings) if has_options(request) else NO_OPTIONS
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return state.preflight(request)
        body_size, preview = await read_body(request, state.settings.max_body_size, state.preview_size)
        try:
            code, step = state.sequences.step(name, codes, text, options.cycle)
        except SequenceConflict as exc:
            raise BadRequest(str(exc), 409) from None
    except BadRequest as exc:
        return state.error(request, exc.status, exc.message)
    extra = [("X-Mockstatus-Sequence", name), ("X-Mockstatus-Step", str(step))]
    return await deliver(
        request, state, code, options, extra=extra, body_size=body_size, preview=preview, sequence=name, step=step
    )


# --- delivering one reply -----------------------------------------------------------


def _pick_delay(state: ServerState, info: StatusInfo, options: Options) -> float:
    # Precedence (issue #4): query > request header (both in options) > catalog > global.
    if options.delay is not None:
        spec = options.delay
        # A fixed delay needs no generator: Random() costs ~2.5 KiB and a urandom
        # seed per request, which thousands of held requests notice (benchmarks/).
        return spec.low if spec.low == spec.high else spec.pick(options.random())
    if info.delay is not None:
        return info.delay
    return state.settings.default_delay


async def sleep_at_least(seconds: float, since: float | None = None) -> None:
    """``asyncio.sleep``, but never shorter by the monotonic clock; counted from ``since`` if given.

    uvloop keeps loop time in whole milliseconds and rounds each timer, so a
    timer can fire up to ~1 ms early; a client timing the reply would then see
    less than it asked for, so an early wake-up sleeps again until the deadline.
    ``asyncio.sleep`` is inlined (a future and a timer): a held request keeps
    its frames for the whole delay, and one frame less is ~250 bytes less for
    each of 10,000 held requests (benchmarks/held_connections.py).
    """
    loop = asyncio.get_running_loop()
    now = time.monotonic()
    deadline = (now if since is None else min(since, now)) + seconds
    seconds = deadline - now
    while seconds > 0:
        future = loop.create_future()
        timer = loop.call_later(seconds, _wake, future)
        try:
            await future
        finally:
            timer.cancel()  # cancelled (client gone, shutdown): the timer goes at once
        seconds = deadline - time.monotonic()
        if seconds > 0:
            seconds = max(seconds, 0.001)


def _arrived(request: web.Request) -> float | None:
    """When the request's head was parsed (``time.monotonic()``), for a request without a body.

    A delay counts from there, not from when the handler got to run: under a
    burst of requests the handler starts after the ones ahead of it, and that
    queueing would otherwise add to every delay (benchmarks/delay_accuracy.py).
    With a body the delay counts from when the body has been read, i.e. now.
    """
    if request.body_exists:
        return None
    return arrival(request)


def _wake(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


async def _wait(request: web.Request, info: StatusInfo, delay: float, options: Options) -> None:
    if info.code == 102 and info.kind == "interim":
        # 102 Processing heartbeats while the delay runs (RFC 2518 §10.1).
        # One at once, then one at each whole interval strictly inside the
        # delay, on an absolute schedule: the count is ceil(delay / interval)
        # however late the timers fire (delay=250ms interval=100ms -> 3).
        interval = options.interval or DEFAULT_INTERVAL
        began = _arrived(request) or time.monotonic()
        loop = asyncio.get_running_loop()
        start = loop.time()
        beats = max(1, math.ceil(delay / interval - 1e-9))
        write_interim(request, 102, info.reason)
        for beat in range(1, beats):
            await asyncio.sleep(max(0.0, start + beat * interval - loop.time()))
            write_interim(request, 102, info.reason)
        # The end, like every delay: from the arrival and never short (uvloop's
        # loop.time() has whole milliseconds).
        await sleep_at_least(delay, began)
    elif delay > 0:
        await sleep_at_least(delay, _arrived(request))


async def deliver(
    request: web.Request,
    state: ServerState,
    code: int,
    options: Options,
    *,
    extra: list[tuple[str, str]] | None = None,
    body_size: int = 0,
    preview: bytes = b"",
    sequence: str | None = None,
    step: int | None = None,
) -> web.StreamResponse:
    info = state.catalog.get(code)
    delay = _pick_delay(state, info, options)
    task = asyncio.current_task()
    state.in_flight.add(task)  # type: ignore[arg-type]
    try:
        if info.kind == "interim":
            if info.code != 102:
                write_interim(request, info.code, info.reason, info.headers)
            await _wait(request, info, delay, options)
            info = state.catalog.get(options.then or info.then or 200)
        elif delay > 0:
            await sleep_at_least(delay, _arrived(request))
        if delay > 0:
            extra = [*(extra or ()), ("Server-Timing", f"delay;dur={delay * 1000:.0f}")]
        response = await _final(request, state, info, options, extra)
    except asyncio.CancelledError:
        if state.closing:
            raise  # cut by a shutdown after its grace, not by the client
        # The client went away during the delay (aiohttp cancels the handler):
        # nothing keeps running; log it as nginx does, 499 Client Closed Request.
        state.journal.record(
            request, 499, body_size=body_size, body_preview=preview, delay=delay,
            client_gone=True, sequence=sequence, step=step,
        )  # fmt: skip
        state.log_gone(request, delay)
        raise
    except ConnectionResetError:
        state.journal.record(
            request, 499, body_size=body_size, body_preview=preview, delay=delay,
            client_gone=True, sequence=sequence, step=step,
        )  # fmt: skip
        return RawReply(499)
    finally:
        state.in_flight.discard(task)  # type: ignore[arg-type]
    # response.status, not info.code: a refused upgrade answers 400/426 instead of 101.
    state.journal.record(
        request, response.status, body_size=body_size, body_preview=preview, delay=delay, sequence=sequence, step=step
    )
    return response


async def _final(
    request: web.Request, state: ServerState, info: StatusInfo, options: Options, extra
) -> web.StreamResponse:
    kind = options.fault or info.kind
    fmt = negotiate_format(request.headers.get("Accept"))
    lang = negotiate_lang(request.headers.get("Accept-Language")) if "Accept-Language" in request.headers else "en"
    prepared = state.replies.prepared(info.code, fmt, lang)

    if kind in FAULTS:
        send_fault(request, kind, prepared, options.random())
        return RawReply(info.code, info.reason)
    if kind == "headerless":
        body = options.body if options.body is not None else (info.body if info.body is not None else prepared.body)
        send_headerless(request, body.encode("utf-8", "surrogateescape") if isinstance(body, str) else (body or b""))
        return RawReply(info.code, info.reason)
    if kind == "upgrade":
        return await _upgrade(request, state, info)

    headers = response_headers(prepared, options, extra)
    if "Origin" in request.headers:
        state.cors(request, headers)
    body = response_body(prepared, options)
    if kind == "close":
        # RFC 9112 §9.6: say so, to HTTP/1.0 clients too (aiohttp only adds it for 1.1).
        headers["Connection"] = "close"
    if options.body_delay is None and options.drip is None:
        response = web.Response(status=info.code, reason=info.reason, body=body, headers=headers)
    else:
        response = await _slow_body(request, info, headers, body or b"", options)
    if kind == "close":
        response.force_close()
    return response


async def _slow_body(request, info: StatusInfo, headers, body: bytes, options: Options) -> web.StreamResponse:
    """Headers at once, the body later (body_delay) or in timed pieces (drip).

    Content-Length is set, so the client's *read* timeout is what trips.
    """
    response = web.StreamResponse(status=info.code, reason=info.reason, headers=headers)
    if info.code not in (204, 304) and info.code >= 200:
        response.content_length = len(body)
    timing = []
    if options.body_delay:
        timing.append(f"body-delay;dur={options.body_delay * 1000:.0f}")
    if options.drip:
        timing.append(f"drip;dur={options.drip * 1000:.0f}")
    if timing:
        response.headers.add("Server-Timing", ", ".join(timing))
    await response.prepare(request)
    if request.method == "HEAD" or not body:
        # No body to hold back (HEAD, 204, 304): the reply is complete now, and
        # sleeping anyway would only hold up the next request on this connection.
        await response.write_eof()
        return response
    if options.body_delay:
        await sleep_at_least(options.body_delay)
    if options.drip:
        pieces = max(1, min(options.chunks or DEFAULT_DRIP_CHUNKS, len(body)))
        step, extra_bytes = divmod(len(body), pieces)
        gap = options.drip / pieces
        start = 0
        began = time.monotonic()
        for index in range(pieces):
            size = step + (1 if index < extra_bytes else 0)
            # Sleep to an absolute schedule so timer lateness does not add up.
            await sleep_at_least(began + gap * (index + 1) - time.monotonic())
            await response.write(body[start : start + size])
            start += size
    else:
        await response.write(body)
    await response.write_eof()
    return response


async def _upgrade(request: web.Request, state: ServerState, info: StatusInfo) -> web.StreamResponse:
    if request.version < (1, 1):
        # RFC 9110 §7.8: a server must ignore Upgrade on HTTP/1.0; 101 cannot happen.
        return state.error(request, 400, "101 Switching Protocols needs an HTTP/1.1 request", record=False)
    # RFC 9110 §7.8: Upgrade lists protocols in the client's order of preference; take the first.
    requested = request.headers.get("Upgrade", "").split(",")[0].strip()
    if requested.lower() == "websocket":
        problem = websocket_problem(request)
        if problem is not None:
            response = state.error(request, problem[0], problem[1], record=False)
            if problem[0] == 426:
                response.headers["Sec-WebSocket-Version"] = WEBSOCKET_VERSION
            return response
        return await send_websocket_echo(request)
    if requested and not _PROTOCOL.fullmatch(requested):
        return state.error(
            request, 400, f"bad Upgrade {requested!r}: expected a protocol name[/version] such as websocket or h2c",
            record=False,
        )  # fmt: skip
    token = requested or info.header("Upgrade") or "mockstatus-echo"
    await send_raw_upgrade(request, token, state.settings.upgrade_idle_timeout)
    return RawReply(101, info.reason)


async def not_found(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    # The catch-all route hides aiohttp's own 405: a path that exists for other
    # methods (POST /__mockstatus/health) gets 405 with Allow, not a 404.
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        match, methods = await resource.resolve(request)
        if match is None:
            allowed |= methods
    if allowed:
        methods_text = ", ".join(sorted(allowed))
        response = state.error(
            request, 405, f"method {request.method} is not allowed on {request.path!r}; allowed: {methods_text}"
        )
        response.headers["Allow"] = methods_text
        return response
    response = state.error(
        request, 404, f"no route for {request.path!r}; try /status/<code> (e.g. /status/418) or / for the list"
    )
    return response
