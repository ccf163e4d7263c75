"""What a reply says: content negotiation, and the head and body of every reply.

Everything that depends only on (code, format, language) is computed once per
catalog load (``Replies``), so a request costs a dict lookup; a request's own
options (``location=``, ``header=``, ``body=``...) are laid over a copy
(``response_headers``/``response_body``).  Nothing here does I/O.
"""

from __future__ import annotations

import asyncio
import html
import json

import orjson
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from .catalog import Catalog, StatusInfo
from .heads import SERVER
from .options import NO_OPTIONS, Options

FORMATS = ("text", "json", "html")
LANGS = ("en", "zh")

CONTENT_TYPES = {
    "text": "text/plain; charset=utf-8",
    "json": "application/json",
    "html": "text/html; charset=utf-8",
}


def negotiate_format(accept: str | None) -> str:
    """Pick text (the default), JSON or HTML from an Accept header.

    Cheap on purpose (it runs per request): JSON wins for ``application/json``
    or any ``+json`` type, HTML for ``text/html`` (what browsers send first).
    ``*/*`` and anything else get plain text, which every client can show.
    """
    if not accept:
        return "text"
    if "json" in accept:
        lowered = accept.lower()
        if "application/json" in lowered or "+json" in lowered:
            return "json"
    if "text/html" in accept:
        return "html"
    return "text"


def negotiate_lang(accept_language: str | None) -> str:
    """``zh`` when Chinese is preferred over English by q-value, else ``en``."""
    if not accept_language or "zh" not in accept_language.lower():
        return "en"
    best_lang, best_q = "en", -1.0
    for item in accept_language.split(","):
        tag, _, params = item.strip().partition(";")
        tag = tag.strip().lower()
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        primary = tag.split("-")[0]
        if primary not in ("zh", "en") or q <= 0:
            continue
        # Earlier items win ties, as RFC 9110 §12.5.4 leaves order to the client.
        if q > best_q:
            best_lang, best_q = primary, q
    return best_lang


def text_body(info: StatusInfo) -> str:
    return info.body if info.body is not None else f"{info.code} {info.reason}\n"


def json_body(info: StatusInfo, lang: str) -> dict:
    return {
        "code": info.code,
        "reason": info.reason,
        "description": info.description(lang),
        "standard": info.standard,
    }


_PAGE_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5;color:#1b1b1b;background:#fff}"
    "h1{font-size:1.6rem}code,pre{background:#f2f2f2;padding:.1rem .3rem;border-radius:3px}"
    "pre{padding:.6rem;white-space:pre-wrap}a{color:#0645ad}"
)


def html_page(title: str, inner: str, lang: str = "en") -> str:
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_PAGE_STYLE}</style></head>"
        f"<body>{inner}</body></html>\n"
    )


def html_body(info: StatusInfo, lang: str) -> str:
    label = "standard" if info.standard else "unofficial"
    extra = f"<pre>{html.escape(info.body)}</pre>" if info.body else ""
    inner = (
        f"<h1>{info.code} {html.escape(info.reason)}</h1>"
        f"<p>{html.escape(info.description(lang))}</p>{extra}"
        f"<p><small>{label}; {html.escape(info.source)}</small></p>"
        '<p><a href="/">All status codes</a></p>'
    )
    return html_page(f"{info.code} {info.reason}", inner, "zh" if lang == "zh" else "en")


def render(info: StatusInfo, fmt: str, lang: str) -> bytes:
    if fmt == "json":
        return json.dumps(json_body(info, lang), ensure_ascii=False).encode() + b"\n"
    if fmt == "html":
        return html_body(info, lang).encode()
    return text_body(info).encode()


# --- the precomputed replies ------------------------------------------------------------

BASE_HEADERS = (
    ("Server", SERVER),
    ("Vary", "Accept, Accept-Language"),
    ("Access-Control-Allow-Origin", "*"),
)

# RFC 9110 §15.3.5 / §15.4.5: 204 and 304 carry no content and aiohttp drops
# Content-Length/Content-Type for them itself; 205 (§15.3.6) must have none
# either, which we make explicit with "Content-Length: 0".
NO_BODY = frozenset({204, 304})
EMPTY_BODY = frozenset({205})


class Prepared:
    """The precomputed pieces of one final reply."""

    __slots__ = ("info", "headers", "body")

    def __init__(self, info: StatusInfo, fmt: str, lang: str) -> None:
        self.info = info
        headers = CIMultiDict(BASE_HEADERS)
        for name, value in info.headers:
            headers.add(name, value)
        if info.code in NO_BODY or info.code < 200:
            self.body = None
        elif info.code in EMPTY_BODY:
            self.body = b""
        else:
            self.body = render(info, fmt, lang)
            headers["Content-Type"] = CONTENT_TYPES[fmt]
        if self.body == b"":
            # aiohttp leaves "Content-Length: 0" out of a HEAD reply; HEAD must get
            # the same headers as GET (RFC 9110 §9.3.2), so it is set here.
            headers["Content-Length"] = "0"
        self.headers = CIMultiDictProxy(headers)


class Replies:
    """Precomputed replies for one catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._table: dict[tuple[int, str, str], Prepared] = {}
        for info in catalog:
            for fmt in FORMATS:
                for lang in LANGS:
                    self._table[info.code, fmt, lang] = Prepared(info, fmt, lang)

    def prepared(self, code: int, fmt: str, lang: str) -> Prepared:
        found = self._table.get((code, fmt, lang))
        if found is None:
            # Unlisted codes (at most 900 x 6 entries) are cached on first use.
            found = self._table[code, fmt, lang] = Prepared(self.catalog.get(code), fmt, lang)
        return found


def response_headers(prepared: Prepared, options: Options, extra: list[tuple[str, str]] | None) -> CIMultiDict:
    """Prepared headers plus this request's overrides (same name replaces)."""
    headers = CIMultiDict(prepared.headers)
    if options is not NO_OPTIONS:
        if options.location is not None:
            headers["Location"] = options.location
        if options.retry_after is not None:
            headers["Retry-After"] = options.retry_after
        replaced: set[str] = set()
        for name, value in options.headers:
            key = name.lower()
            if key not in replaced:
                headers.popall(name, None)
                replaced.add(key)
            headers.add(name, value)
        if options.body is not None and prepared.body is not None and prepared.body != b"":
            headers["Content-Type"] = CONTENT_TYPES["text"]
            if not options.body:
                headers["Content-Length"] = "0"  # as above: HEAD keeps it too
    if extra:
        for name, value in extra:
            headers[name] = value
    return headers


def response_body(prepared: Prepared, options: Options) -> bytes | None:
    if options.body is not None and prepared.body is not None and prepared.body != b"":
        # surrogateescape: a body given in a header as bytes that are not UTF-8
        # (aiohttp decodes those to surrogates) goes out as those same bytes.
        return options.body.encode("utf-8", "surrogateescape")
    return prepared.body


# --- the admin API's replies ------------------------------------------------------

# No Access-Control-Allow-Origin: the journal holds what clients sent, and the
# page at / reads it same-origin; a cross-origin page must not.
ADMIN_HEADERS = {"Server": SERVER, "Cache-Control": "no-store"}
# Compact: json.dumps with an indent runs the pure-Python encoder, several
# times slower than the C one, and all of it on the event loop.
_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _dumps(data) -> bytes:
    """Compact JSON bytes: orjson, which encodes a full journal many times faster
    than the standard library (the encoding runs on the event loop); the standard
    encoder for what orjson refuses (an integer above 64 bits).  Header values
    reach here already printable (journal._printable), never as lone surrogates."""
    try:
        return orjson.dumps(data)
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return _compact(data).encode()


# Bytes of JSON written per write() when streaming a list: a bounded slice of
# event-loop time, and of memory, however long the list.
STREAM_CHUNK = 256 * 1024


def admin_json(data, status: int = 200) -> web.Response:
    """A reply of ``/__mockstatus/*``: compact JSON, never cached."""
    body = _dumps(data) + b"\n"
    return web.Response(status=status, body=body, content_type="application/json", headers=ADMIN_HEADERS)


async def admin_json_list(request: web.Request, head: dict, key: str, items: list, to_json) -> web.StreamResponse:
    """``head`` with ``key`` holding ``to_json(item)`` for each item, streamed a batch at a time.

    Each write waits while the socket's buffer is full, so a client that
    never reads holds one chunk and the socket's buffers, not the whole
    reply; a yield between chunks lets delayed replies go out on time.
    """
    if request.method == "HEAD":
        return admin_json({**head, key: [to_json(item) for item in items]})
    response = web.StreamResponse(headers=ADMIN_HEADERS)
    response.content_type = "application/json"
    await response.prepare(request)
    parts = [_dumps(head)[:-1] + (b"," if head else b"") + _dumps(key) + b":["]
    size = 0
    for index, item in enumerate(items):
        text = _dumps(to_json(item))
        parts.append(b"," + text if index else text)
        size += len(text)
        if size >= STREAM_CHUNK:
            await response.write(b"".join(parts))
            parts, size = [], 0
            await asyncio.sleep(0)
    parts.append(b"]}\n")
    await response.write(b"".join(parts))
    await response.write_eof()
    return response
