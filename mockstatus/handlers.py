"""The aiohttp handlers behind ``/status`` and ``/sequence``, and the 404/405 fallback.

Handlers stay thin: parse (small helpers that raise ``BadRequest``), pick the
code, read the request once into an ``Asked`` (``ask``), and hand it to
``delivery.deliver``.  A plain request for a catalog code is answered first
thing in ``status_handler`` from the precomputed reply (the fast path).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Coroutine
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from .bodies import negotiate_format, negotiate_lang
from .catalog import CODE_FORM, CODE_PATTERN, UPLOAD_FAULTS, StatusInfo
from .cors import cors, preflight
from .delivery import deliver
from .errors import error_for
from .limits import LimitConflict, ceil_seconds, limit_headers
from .options import NO_OPTIONS, Asked, BadRequest, Options, has_options, parse_code_text, parse_options
from .protocol import arrival, begin
from .sequences import SequenceConflict
from .server import STATE, ServerState
from .store import StoreError, namespace_of

_WEIGHT = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_REPEAT = re.compile(r"[0-9]{1,5}", re.ASCII)
_SEQUENCE_NAME = re.compile(r"[A-Za-z0-9._~-]{1,128}", re.ASCII)
MAX_CHOICES = 1000
MAX_SEQUENCE_STEPS = 10_000


# --- reading the request ------------------------------------------------------------


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
            if not math.isfinite(weight):
                raise BadRequest(
                    f"bad weight {weight_text!r} in {item!r}: too large for a float; "
                    "expected a positive number such as 1, 0.5 or 3"
                )
        choices.append((code, weight))
    # random.choices needs a finite total: two weights near the float maximum overflow it.
    if not math.isfinite(sum(weight for _, weight in choices)):
        raise BadRequest(f"bad code list {text!r}: the weights add up to more than a float holds; use smaller ones")
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


def ask(request: web.Request, code: int, options: Options) -> Asked:
    """Everything below the handlers needs of the request, read once."""
    headers = request.headers
    return Asked(
        code=code,
        options=options,
        fmt=negotiate_format(headers.get("Accept")),
        lang=negotiate_lang(headers.get("Accept-Language")) if "Accept-Language" in headers else "en",
        origin=headers.get("Origin"),
        # A delay counts from when the head was complete, not from when the
        # handler got to run: under a burst of requests a handler starts after
        # the ones ahead of it, and that queueing would otherwise add to every
        # delay (benchmarks/delay_accuracy.py).  With a body it counts from when
        # the body has been read, i.e. from now.
        arrived=None if request.body_exists else arrival(request),
        method=request.method,
        version=request.version,
    )


# --- handlers -----------------------------------------------------------------------


async def status_handler(request: web.Request) -> web.StreamResponse:
    begin(request)
    state = request.app[STATE]
    codes = request.match_info.get("codes")
    # A catalog code's plain route (app.EACH_CATALOG_CODE) matches no pattern:
    # its code is looked up by path.  Anything below the codes is answered as
    # without it, so a client whose base URL is /status/503 gets a 503 for
    # every call it makes (/status/503/api/items).
    text = state.plain_codes[request.path] if codes is None else codes.partition("/")[0]
    # The fast path: most requests are a plain GET /status/NNN, answered from
    # the precomputed reply without parsing, awaiting or delivery.
    info = state.fast_path.get(text)
    if info is not None and _takes_fast_path(request):
        return _fast_path(request, state, info)
    reply = await _status_reply(request, state, text)
    return reply if isinstance(reply, web.StreamResponse) else await reply


async def _status_reply(
    request: web.Request, state: ServerState, text: str
) -> web.StreamResponse | Coroutine[Any, Any, web.StreamResponse]:
    """A /status reply off the fast path: an error or a gated reply, or its delivery, not started.

    The delivery is returned for status_handler to await, not awaited here:
    a reply held in a delay then keeps the handler's small frame, not this one.
    """
    try:
        options = parse_options(request, state.settings) if has_options(request) else NO_OPTIONS
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return _preflight(request, state)
        # A request turned away by a limit or an outage is answered before anything else.
        gated, extra = await _gate(request, state, options)
        if gated is not None:
            return gated
        if CODE_PATTERN.fullmatch(text):
            code = int(text)
        elif "," in text or ":" in text:
            codes, cumulative = weighted_choices(text)
            code = options.random().choices(codes, cum_weights=cumulative)[0]
            extra = [*(extra or ()), ("X-Mockstatus-Choice", str(code))]
        else:
            raise BadRequest(f"bad code {text!r}: expected {CODE_FORM}, e.g. /status/418, or a list /status/200,503:2")
        body_size, preview = await _read_body_unless_cut(request, state, options, code)
        if "," in text or ":" in text:
            info = state.fast_path.get(str(code))
            if info is not None and options is NO_OPTIONS and not body_size:
                return _fast_path(request, state, info, extra)
    except BadRequest as exc:
        return _error(request, state, exc.status, exc.message)
    return deliver(request, state, ask(request, code, options), extra=extra, body_size=body_size, preview=preview)


async def _read_body_unless_cut(
    request: web.BaseRequest, state: ServerState, options: Options, code: int
) -> tuple[int, bytes]:
    """The request body, read and dropped; an upload fault's writer reads it instead."""
    if (options.fault or state.catalog.get(code).kind) in UPLOAD_FAULTS:
        return 0, b""
    return await read_body(request, state.settings.max_body_size, state.preview_size)


def _takes_fast_path(request: web.BaseRequest) -> bool:
    """No options, no body, no preflight, no Expect: the precomputed reply is the whole answer."""
    return (
        request.method != "OPTIONS"
        and not request.body_exists
        and "Expect" not in request.headers  # the app's expect handler answers it (417 or 100)
        and not has_options(request)
    )


def _fast_path(
    request: web.Request, state: ServerState, info: StatusInfo, extra: list[tuple[str, str]] | None = None
) -> web.Response:
    """A catalog code of a fast kind (kinds.KINDS) asked for with no options, no body and no delay.

    Everything but the negotiation is precomputed, and nothing awaits, so the
    reply costs what a bare aiohttp handler does plus a dict lookup and a
    journal entry (benchmarks/throughput.py).
    """
    headers = request.headers
    fmt = negotiate_format(headers.get("Accept"))
    lang = negotiate_lang(headers.get("Accept-Language")) if "Accept-Language" in headers else "en"
    prepared = state.replies.prepared(info.code, fmt, lang)
    if extra or "Origin" in headers:
        reply_headers = CIMultiDict(prepared.headers)
        if extra:
            reply_headers.extend(extra)
        if "Origin" in headers:
            cors(reply_headers, headers["Origin"])
    else:
        reply_headers = prepared.headers
    state.journal.record_fast_path(request, info.code)
    return web.Response(status=info.code, reason=info.reason, body=prepared.body, headers=reply_headers)


async def _gate(
    request: web.Request, state: ServerState, options: Options
) -> tuple[web.Response | None, list[tuple[str, str]] | None]:
    """Outages and rate limits: a 503 or 429 in place of the reply asked for, or
    the rate-limit headers the reply asked for carries."""
    if options.limit is None and options.outage is None and options.until is None:
        return None, None
    clock = state.clock
    if options.until is not None:
        # Stateless: the same answer from any replica that agrees on the wall clock.
        left = options.until - clock.wall()
        if left > 0:
            return await _gated(request, state, 503, [("Retry-After", str(ceil_seconds(left)))]), None
    # The path without the query: /status/200?limit=5/1s and ?limit=5/1s&delay=1s share a bucket;
    # without the /ns/{namespace} prefix, which namespace_of() names, as the header does.
    namespace = namespace_of(request)
    path = request.path
    if "namespace" in request.match_info:
        path = path[len("/ns/") + len(request.match_info["namespace"]) :]
    bucket = options.bucket or path
    try:
        if options.outage is not None:
            left = await state.store.outage(namespace, bucket, options.outage)
            if left > 0:
                headers = [("Retry-After", str(ceil_seconds(left)))]
                return await _gated(request, state, 503, headers), None
        if options.limit is None:
            return None, None
        count, window = options.limit
        sliding = options.limit_mode == "sliding"
        spec = f"{options.limit_text} sliding" if sliding else str(options.limit_text)
        verdict, wall = await state.store.limit(namespace, bucket, count, window, sliding, spec)
    except LimitConflict as exc:
        raise BadRequest(str(exc), 409) from None
    except StoreError as exc:
        return _store_failed(request, state, exc), None
    headers = limit_headers(verdict, wall)
    if verdict.allowed:
        return None, headers
    # RFC 6585 §4: 429 Too Many Requests, with Retry-After (RFC 9110 §10.2.3)
    # rounded up, so a client that waits it out is let through.
    headers.insert(0, ("Retry-After", str(ceil_seconds(verdict.reset))))
    return await _gated(request, state, 429, headers), None


def _store_failed(request: web.Request, state: ServerState, exc: StoreError) -> web.Response:
    """A request whose answer is the store's (a step, a limit) while the store fails:
    never a silently local answer."""
    response = _error(request, state, 500, str(exc))
    response.headers["X-Mockstatus-Error"] = "state-store"
    return response


async def _gated(request: web.Request, state: ServerState, code: int, headers: list[tuple[str, str]]) -> web.Response:
    """The catalog's reply for ``code`` at once, with these headers in place of its own
    (its ``Retry-After: 1`` becomes the real one); no other option (a fault neither) applies to it."""
    body_size, preview = await read_body(request, state.settings.max_body_size, state.preview_size)
    info = state.catalog.get(code)
    request_headers = request.headers
    fmt = negotiate_format(request_headers.get("Accept"))
    lang = negotiate_lang(request_headers.get("Accept-Language")) if "Accept-Language" in request_headers else "en"
    prepared = state.replies.prepared(code, fmt, lang)
    reply_headers = CIMultiDict(prepared.headers)
    for name, value in headers:
        reply_headers[name] = value
    if "Origin" in request_headers:
        cors(reply_headers, request_headers["Origin"])
    state.journal.record(request, code, body_size=body_size, body_preview=preview)
    return web.Response(status=code, reason=info.reason, body=prepared.body, headers=reply_headers)


def _error(request: web.BaseRequest, state: ServerState, status: int, message: str) -> web.Response:
    """An error reply to ``request``, recorded in the journal."""
    response = error_for(request, state.catalog, status, message)
    state.journal.record(request, status)
    return response


def _preflight(request: web.BaseRequest, state: ServerState) -> web.Response:
    headers = request.headers
    response = preflight(headers.get("Origin"), headers.get("Access-Control-Request-Headers"))
    state.journal.record(request, 204)
    return response


async def status_missing(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    return _error(request, state, 400, f"missing code: expected /status/<code> with {CODE_FORM}, e.g. /status/418")


async def sequence_missing(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    return _error(
        request, state, 400,
        f"missing codes in {request.path!r}: expected /sequence/<name>/<codes>, e.g. /sequence/pay/503*2,200",
    )  # fmt: skip


async def sequence_handler(request: web.Request) -> web.StreamResponse:
    begin(request)
    reply = await _sequence_reply(request, request.app[STATE])
    return reply if isinstance(reply, web.StreamResponse) else await reply  # as status_handler


async def _sequence_reply(
    request: web.Request, state: ServerState
) -> web.StreamResponse | Coroutine[Any, Any, web.StreamResponse]:
    """The step's reply: an error or a gated reply, or its delivery, not started (as _status_reply)."""
    name = request.match_info["name"]
    text = request.match_info["codes"].partition("/")[0]  # a tail below the codes, as for /status
    try:
        if not _SEQUENCE_NAME.fullmatch(name):
            raise BadRequest(f"bad sequence name {name!r}: expected 1-128 of A-Z a-z 0-9 . _ ~ -")
        codes = parse_sequence(text)
        options = parse_options(request, state.settings) if has_options(request) else NO_OPTIONS
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return _preflight(request, state)
        # A request turned away by a limit or an outage takes no step.
        gated, limited = await _gate(request, state, options)
        if gated is not None:
            return gated
        try:
            code, step, restarted = await state.store.step(namespace_of(request), name, codes, text, options.cycle)
        except SequenceConflict as exc:
            raise BadRequest(str(exc), 409) from None
        except StoreError as exc:
            return _store_failed(request, state, exc)
        body_size, preview = await _read_body_unless_cut(request, state, options, code)
    except BadRequest as exc:
        return _error(request, state, exc.status, exc.message)
    extra = [*(limited or ()), ("X-Mockstatus-Sequence", name), ("X-Mockstatus-Step", str(step))]
    return deliver(
        request, state, ask(request, code, options), extra=extra, body_size=body_size, preview=preview,
        sequence=name, step=step, restarted=restarted,
    )  # fmt: skip


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
        response = _error(
            request, state, 405, f"method {request.method} is not allowed on {request.path!r}; allowed: {methods_text}"
        )
        response.headers["Allow"] = methods_text
        return response
    response = _error(
        request, state, 404, f"no route for {request.path!r}; try /status/<code> (e.g. /status/418) or / for the list"
    )
    return response
