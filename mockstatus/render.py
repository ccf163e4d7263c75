"""Response bodies: text, JSON and HTML for one status, chosen by ``Accept``.

Everything here depends only on (code, format, language), so ``Replies``
(see ``replies.py``) computes it once per catalog load, not per request.
"""

from __future__ import annotations

import html
import json

from .catalog import StatusInfo

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


def error_body(status: int, reason: str, message: str, fmt: str) -> bytes:
    """A 4xx body that names the bad value and what is allowed."""
    if fmt == "json":
        return json.dumps({"code": status, "reason": reason, "error": message}, ensure_ascii=False).encode() + b"\n"
    if fmt == "html":
        inner = f'<h1>{status} {html.escape(reason)}</h1><p>{html.escape(message)}</p><p><a href="/">All status codes</a></p>'
        return html_page(f"{status} {reason}", inner).encode()
    return f"{status} {reason}: {message}\n".encode()
