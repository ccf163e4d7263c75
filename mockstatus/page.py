"""``GET /``: the browser page, generated from the catalog so it never drifts.

Every code grouped by class with its reason, description, wire badges and a
link, plus a "try it" panel (``static/page.js``).  The HTML depends only on
the catalog and the language, so ``Pages`` renders it once per app (both
languages, plain and gzipped) and a request is a dict lookup.  The CSS and
JavaScript are package data under ``mockstatus/static/``, read once and
served from ``/__mockstatus/static/``: no CDN, no build step, works offline.

Everything taken from the catalog is escaped with ``html.escape`` (text and
attributes) or, inside the JSON data block, with ``<``/``>``/``&`` as
``\\u`` escapes; nothing from the request reaches the HTML.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import json
from html import escape
from importlib import resources

from aiohttp import web
from multidict import CIMultiDict

from .bodies import EMPTY_BODY, LANGS, NO_BODY, negotiate_lang
from .catalog import FAULT_FORMS, FAULTS, Catalog, StatusInfo
from .errors import error_for
from .heads import SERVER
from .kinds import kind_of
from .options import resembles
from .server import STATE

STATIC_PREFIX = "__mockstatus/static/"  # relative, so the page also works behind a path prefix
STATIC_FILES = {"page.css": "text/css; charset=utf-8", "page.js": "text/javascript; charset=utf-8"}
ALLOWED_METHODS = "GET, HEAD"

# The page loads only its own files and fetches only its own origin.  data: is
# for the empty favicon, which saves a /favicon.ico 404 in the request journal.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)

# --- words ------------------------------------------------------------------------

CLASSES = {
    1: ("Informational", "信息响应"),
    2: ("Success", "成功"),
    3: ("Redirection", "重定向"),
    4: ("Client error", "客户端错误"),
    5: ("Server error", "服务器错误"),
}
OUTSIDE = ("outside the standard classes", "标准类别之外")

# badge key -> (label en, label zh, explanation en, explanation zh)
BADGES = {
    "location": ("Location", "Location", "sends a Location header", "带 Location 响应头"),
    "no-body": ("no body", "无响应体", "never carries a body", "不带响应体"),
    "interim": ("interim", "临时响应", "interim 1xx, then a final response", "先发临时 1xx 响应，再发最终响应"),
    "upgrade": ("upgrade", "协议升级", "switches the connection to another protocol", "把连接切换到另一种协议"),
    "headerless": (
        "header-less",
        "无响应头",
        "body bytes only: no status line, no headers",
        "只有响应体：没有状态行和响应头",
    ),
    "closes": ("closes connection", "关闭连接", "the server closes the connection", "服务器会关闭连接"),
    "retry-after": ("Retry-After", "Retry-After", "sends a Retry-After header", "带 Retry-After 响应头"),
    "auth": ("auth challenge", "认证质询", "sends an authentication challenge", "带认证质询响应头"),
    "delay": ("delayed", "延迟", "answers after a delay", "延迟后才响应"),
    "unofficial": ("unofficial", "非官方", "not in the IANA registry", "未在 IANA 注册"),
}

TEXT = {
    "en": {
        "title": "mockstatus: every HTTP status code",
        "tagline": "Every status code this server knows, with what is special about it on the wire. "
        "Open a code to see its reply, or try it with a delay, a redirect target or a fault.",
        "skip": "Skip to the try-it panel",
        "lang_nav": "Language",
        "search": "Filter by code or words",
        "search_hint": "e.g. 503, 4xx, redirect, retry",
        "classes_nav": "Classes",
        "count": "{shown} of {total} codes",
        "none": "No code matches. Try a number such as 42 or a word such as timeout.",
        "codes_title": "Status codes",
        "source": "Source",
        "headers": "Headers",
        "try_code": "Try {code}",
        "try_label": "Try {code} in the panel",
        "try_title": "Try it",
        "noscript": "The try-it panel needs JavaScript. Every code above is a plain link, "
        "and curl -i {origin}/status/418 works from any shell.",
        "what": "What to ask for",
        "mode_single": "One code",
        "mode_list": "Weighted list",
        "mode_sequence": "Sequence",
        "code": "Code",
        "list": "Codes and weights",
        "list_help": "CODE or CODE:WEIGHT, comma-separated. 200,503:2 answers 503 two times in three.",
        "seq_name": "Sequence name",
        "seq_steps": "Steps",
        "seq_help": "CODE or CODE*COUNT, comma-separated. Each run takes the next step; the last step repeats.",
        "seq_reset": "Reset this sequence",
        "delay": "Delay",
        "delay_help": "250ms, 2s, or a range: 1s-3s",
        "location": "Location",
        "location_help": "/path or an absolute http(s) URL",
        "limit": "Rate limit",
        "limit_help": "N/WINDOW, e.g. 3/10s: then 429 with Retry-After",
        "outage": "Outage",
        "outage_help": "e.g. 30s: 503 with Retry-After until it is over",
        "headers_in": "Extra response headers",
        "headers_help": "One Name: value per line",
        "fault": "Fault",
        "fault_none": "none",
        "accept": "Body format",
        "accept_text": "text (Accept: */*)",
        "follow": "Follow redirects",
        "run": "Run in the browser",
        "cancel": "Cancel",
        "url": "URL",
        "open": "Open",
        "curl": "curl",
        "copy": "Copy",
        "result": "Result",
        "result_headers": "Response headers",
        "result_body": "Body",
        "wire": "Show the wire",
        "wire_link": "Show the wire",
        "wire_label": "Show the wire for {code}",
        "wire_title": "On the wire and in the browser",
        "wire_on": "On the wire",
        "wire_help": "This server made the request to itself over a raw socket "
        "(GET /__mockstatus/transcript). Times are milliseconds from the request written; "
        "CR, LF and other control bytes are shown as \\r, \\n, \\xNN.",
        "wire_raw": "Raw bytes",
        "wire_fetch": "What fetch() saw",
        "wire_fetch_help": "The same request made by this page with fetch(), right after.",
        "close": "Close",
    },
    "zh": {
        "title": "mockstatus：全部 HTTP 状态码",
        "tagline": "本服务器认识的每个状态码，以及它在线路上的特别之处。"
        "打开一个状态码查看它的响应，或者带上延迟、跳转目标或故障试一试。",
        "skip": "跳到“试一试”面板",
        "lang_nav": "语言",
        "search": "按状态码或文字筛选",
        "search_hint": "例如 503、4xx、redirect、重试",
        "classes_nav": "类别",
        "count": "共 {total} 个状态码，显示 {shown} 个",
        "none": "没有匹配的状态码。试试数字（如 42）或文字（如 超时）。",
        "codes_title": "状态码",
        "source": "来源",
        "headers": "响应头",
        "try_code": "试 {code}",
        "try_label": "在面板中试 {code}",
        "try_title": "试一试",
        "noscript": "“试一试”面板需要 JavaScript。上面每个状态码都是普通链接，"
        "在任何终端里都可以运行 curl -i {origin}/status/418。",
        "what": "请求什么",
        "mode_single": "单个状态码",
        "mode_list": "加权列表",
        "mode_sequence": "序列",
        "code": "状态码",
        "list": "状态码与权重",
        "list_help": "CODE 或 CODE:WEIGHT，用逗号分隔。200,503:2 表示三次中有两次返回 503。",
        "seq_name": "序列名称",
        "seq_steps": "步骤",
        "seq_help": "CODE 或 CODE*COUNT，用逗号分隔。每运行一次前进一步，最后一步会一直重复。",
        "seq_reset": "重置此序列",
        "delay": "延迟",
        "delay_help": "250ms、2s，或范围：1s-3s",
        "location": "Location",
        "location_help": "/路径，或绝对的 http(s) URL",
        "limit": "限流",
        "limit_help": "N/窗口，如 3/10s：超出后 429 并带 Retry-After",
        "outage": "故障窗口",
        "outage_help": "如 30s：结束前一直 503 并带 Retry-After",
        "headers_in": "额外的响应头",
        "headers_help": "每行一个 Name: value",
        "fault": "故障",
        "fault_none": "无",
        "accept": "响应体格式",
        "accept_text": "文本（Accept: */*）",
        "follow": "跟随重定向",
        "run": "在浏览器中运行",
        "cancel": "取消",
        "url": "URL",
        "open": "打开",
        "curl": "curl",
        "copy": "复制",
        "result": "结果",
        "result_headers": "响应头",
        "result_body": "响应体",
        "wire": "查看线路",
        "wire_link": "查看线路",
        "wire_label": "查看 {code} 在线路上的样子",
        "wire_title": "线路上与浏览器中",
        "wire_on": "线路上",
        "wire_help": "本服务器通过原始套接字向自己发出这个请求（GET /__mockstatus/transcript）。"
        "时间是从写出请求起的毫秒数；CR、LF 等控制字节显示为 \\r、\\n、\\xNN。",
        "wire_raw": "原始字节",
        "wire_fetch": "fetch() 看到的",
        "wire_fetch_help": "随后由本页用 fetch() 发出的同一个请求。",
        "close": "关闭",
    },
}

# Strings page.js needs, handed over in a JSON block ({placeholders} filled there).
SCRIPT_TEXT = {
    "en": {
        "copied": "Copied",
        "copy_failed": "Select the text and copy it yourself",
        "running": "Running…",
        "cancelled": "Cancelled.",
        "headers_after": "Headers after {headers} ms, complete after {total} ms",
        "body_cut": "(body cut at {n} characters)",
        "empty_body": "(empty body)",
        "network_error": "The browser reported a network error ({error}). This is what a browser client sees; "
        "run the curl command to see what was on the wire.",
        "redirected": "fetch followed the redirect to {url}: the status, headers and body below are the final response's. "
        "Browsers hide the 3xx itself from scripts; run the curl command (without -L) to see it, "
        "or untick “Follow redirects”.",
        "opaque": 'Redirect not followed. With redirect: "manual" the browser hides a redirect\'s status and headers '
        "from scripts (an opaque redirect). Run the curl command to see them.",
        "choice": "The server picked {code}.",
        "step": "Sequence {name}, step {step}.",
        "note_interim": "{code} is an interim response: browsers hide interim 1xx replies from scripts, "
        "so fetch shows only the final {then}. Run the curl command to see the {code} line too.",
        "note_upgrade": "A browser cannot show {code}: fetch cannot ask for a protocol switch, and the switched "
        "connection is no longer HTTP. Run the curl command: it prints the 101 and then waits on the "
        "open connection (Ctrl-C ends it).",
        "note_headerless": "A browser cannot show {code}: the reply has no status line and no headers, so fetch "
        "reports a network error. The curl command uses --http0.9 to print the raw bytes.",
        "note_fault": "A browser cannot show {code}: the server breaks the connection ({kind}), so fetch reports "
        "only a network error. Run the curl command to see what is on the wire.",
        "note_proxy": "Browsers refuse a 407 from a server that is not their configured proxy, so fetch reports "
        "a network error. Run the curl command to see the 407.",
        "note_list": "Some codes here cannot be shown by a browser ({codes}): those runs end in a network error "
        "or show only the final response. The curl command shows them.",
        "status_network": "network error",
        "status_opaque": "3xx (opaque redirect)",
        "reset_done": "Sequence {name} reset.",
        "reset_failed": "Could not reset sequence {name}: {status}",
        "w_interim": "interim {line}",
        "w_final": "final head {line}, {n} header lines",
        "w_headerless": "{n} bytes with no status line and no headers",
        "w_body": "body, {n} bytes",
        "w_bytes": "{n} bytes after the reply",
        "w_handshake_ok": "TLS handshake: {version}, {cipher}",
        "w_handshake_failed": "TLS handshake failed: {error}",
        "w_note": "note: {note}",
        "w_truncated": "the capture stopped at its size limit",
        "w_failed": "The transcript route answered {status}: {error}",
        "w_running": "Asking the server for the wire…",
    },
    "zh": {
        "copied": "已复制",
        "copy_failed": "请选中文本后自行复制",
        "running": "运行中…",
        "cancelled": "已取消。",
        "headers_after": "{headers} 毫秒后收到响应头，{total} 毫秒后完成",
        "body_cut": "（响应体在 {n} 个字符处截断）",
        "empty_body": "（空响应体）",
        "network_error": "浏览器报告了网络错误（{error}）。浏览器中的客户端看到的就是这样；"
        "运行 curl 命令可以看到线路上实际发送的内容。",
        "redirected": "fetch 已跟随重定向到 {url}：下面的状态、响应头和响应体都属于最终响应。"
        "浏览器不让脚本看到 3xx 本身；运行 curl 命令（不加 -L）可以看到它，或者取消勾选“跟随重定向”。",
        "opaque": '未跟随重定向。使用 redirect: "manual" 时，浏览器不让脚本看到重定向的状态和响应头'
        "（opaque redirect）。运行 curl 命令可以看到它们。",
        "choice": "服务器选择了 {code}。",
        "step": "序列 {name}，第 {step} 步。",
        "note_interim": "{code} 是临时响应：浏览器不让脚本看到 1xx 临时响应，fetch 只能看到最终的 {then}。"
        "运行 curl 命令可以同时看到 {code} 这一行。",
        "note_upgrade": "浏览器无法显示 {code}：fetch 不能请求切换协议，而且切换后的连接已经不是 HTTP。"
        "请运行 curl 命令：它会打印 101，然后在打开的连接上等待（按 Ctrl-C 结束）。",
        "note_headerless": "浏览器无法显示 {code}：响应没有状态行也没有响应头，fetch 会报告网络错误。"
        "curl 命令使用 --http0.9 来打印原始字节。",
        "note_fault": "浏览器无法显示 {code}：服务器会中断连接（{kind}），fetch 只能报告网络错误。"
        "运行 curl 命令可以看到线路上的内容。",
        "note_proxy": "浏览器拒绝接受来自非代理服务器的 407，fetch 会报告网络错误。运行 curl 命令可以看到 407。",
        "note_list": "这里有些状态码浏览器无法显示（{codes}）：这些运行会以网络错误结束，或者只显示最终响应。"
        "curl 命令可以显示它们。",
        "status_network": "网络错误",
        "status_opaque": "3xx（opaque redirect）",
        "reset_done": "序列 {name} 已重置。",
        "reset_failed": "无法重置序列 {name}：{status}",
        "w_interim": "临时响应 {line}",
        "w_final": "最终响应头 {line}，{n} 行响应头",
        "w_headerless": "{n} 个字节，没有状态行也没有响应头",
        "w_body": "响应体，{n} 个字节",
        "w_bytes": "响应之后的 {n} 个字节",
        "w_handshake_ok": "TLS 握手：{version}，{cipher}",
        "w_handshake_failed": "TLS 握手失败：{error}",
        "w_note": "注意：{note}",
        "w_truncated": "捕获到达大小上限后停止",
        "w_failed": "transcript 路由返回 {status}：{error}",
        "w_running": "正在向服务器获取线路内容…",
    },
}

# --- facts derived from the catalog --------------------------------------------------


def wire_badges(info: StatusInfo) -> list[str]:
    """What is special about this code on the wire, read from its catalog entry."""
    badges = []
    if info.header("Location") is not None:
        badges.append("location")
    if info.code in NO_BODY or info.code in EMPTY_BODY:
        badges.append("no-body")
    kind_badge = kind_of(info.kind)[0].badge
    if kind_badge is not None:
        badges.append(kind_badge)
    if info.header("Retry-After") is not None:
        badges.append("retry-after")
    if info.header("WWW-Authenticate") is not None or info.header("Proxy-Authenticate") is not None:
        badges.append("auth")
    if info.delay:
        badges.append("delay")
    return badges


def browser_view(info: StatusInfo) -> str:
    """Whether fetch() in a browser can show this code's reply, and if not, why.

    ``ok``; ``interim`` (fetch sees only the final response); or why not:
    ``upgrade``, ``headerless``, ``fault`` (the connection breaks), all from
    the kind (kinds.KINDS), or ``proxy`` (Chromium and Firefox reject a 407
    from a server that is not their proxy; checked with Chromium in
    tests/test_browser.py).
    """
    view = kind_of(info.kind)[0].browser
    if view == "ok" and info.code == 407:
        return "proxy"
    return view


def class_of(code: int) -> int:
    return code // 100


# --- rendering ---------------------------------------------------------------------


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _json_for_html(data: object) -> str:
    """JSON safe inside <script type="application/json">: no '</script>' can end it early."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _class_title(cls: int, lang: str) -> str:
    zh = lang == "zh"
    if cls in CLASSES:
        return f"{cls}xx {CLASSES[cls][1 if zh else 0]}"
    return f"{cls}xx {OUTSIDE[1 if zh else 0]}"


def _badge(key: str, lang: str, info: StatusInfo) -> str:
    label_en, label_zh, why_en, why_zh = BADGES[key]
    zh = lang == "zh"
    label, why = (label_zh, why_zh) if zh else (label_en, why_en)
    if key == "interim":
        label = f"{label} → {info.then or 200}"
    elif key == "delay":
        label = f"{label} {info.delay:g}s"
    return f'<span class="badge b-{key}" title="{_e(why)}">{_e(label)}</span>'


def _entry(info: StatusInfo, lang: str, t: dict[str, str]) -> str:
    code = info.code
    keys = wire_badges(info)
    if not info.standard:
        keys.append("unofficial")
    badges = "".join(_badge(key, lang, info) for key in keys)
    description = info.description(lang)
    search = " ".join(
        [
            str(code),
            info.reason,
            description,
            info.source,
            *(BADGES[k][1 if lang == "zh" else 0] for k in keys),
            *(f"{name}: {value}" for name, value in info.headers),
        ]
    ).lower()
    headers = ""
    if info.headers:
        lines = "".join(f"<li><code>{_e(name)}: {_e(value)}</code></li>" for name, value in info.headers)
        headers = f'<div class="hdrs"><span class="k">{_e(t["headers"])}</span><ul>{lines}</ul></div>'
    source = f'<span class="k">{_e(t["source"])}</span> {_e(info.source)}' if info.source else ""
    return (
        f'<li class="code c{class_of(code)}" id="s{code}" data-code="{code}" data-search="{_e(search)}">'
        f'<div class="top"><a class="open" href="status/{code}">'
        f'<span class="num">{code}</span> <span class="reason">{_e(info.reason)}</span></a>'
        f'<span class="badges">{badges}</span></div>'
        f'<p class="desc">{_e(description)}</p>'
        f'<div class="meta"><p class="src">{source}</p>{headers}'
        f'<button type="button" class="try js-only" data-code="{code}" '
        f'aria-label="{_e(t["try_label"].format(code=code))}">{_e(t["try_code"].format(code=code))}</button>'
        f'<a class="wire-link js-only" href="#wire-{code}" data-code="{code}" '
        f'aria-label="{_e(t["wire_label"].format(code=code))}">{_e(t["wire_link"])}</a></div>'
        "</li>"
    )


def _option(info: StatusInfo, selected: bool) -> str:
    then = f' data-then="{info.then or 200}"' if info.kind == "interim" else ""
    chosen = " selected" if selected else ""
    return (
        f'<option value="{info.code}" data-view="{browser_view(info)}" data-kind="{_e(info.kind)}"{then}{chosen}>'
        f"{info.code} {_e(info.reason)}</option>"
    )


def _field(id_: str, label: str, control: str, help_text: str | None = None) -> str:
    help_html = f'<p class="help" id="{id_}-help">{_e(help_text)}</p>' if help_text else ""
    return f'<div class="field"><label for="{id_}">{_e(label)}</label>{control}{help_html}</div>'


def _panel(catalog: Catalog, lang: str, t: dict[str, str]) -> str:
    options = "".join(_option(info, info.code == 418) for info in catalog)
    faults = f'<option value="">{_e(t["fault_none"])}</option>' + "".join(
        f'<option value="{_e(v)}" data-view="{kind_of(v)[0].browser}">{_e(v)}</option>'
        for v in (FAULT_FORMS[f][1] if f in FAULT_FORMS else f for f in FAULTS)
    )
    accept = (
        f'<option value="">{_e(t["accept_text"])}</option>'
        '<option value="application/json">JSON (Accept: application/json)</option>'
        '<option value="text/html">HTML (Accept: text/html)</option>'
    )
    modes = "".join(
        f'<label class="radio"><input type="radio" name="mode" value="{m}"{" checked" if m == "single" else ""}> '
        f"{_e(t['mode_' + m])}</label>"
        for m in ("single", "list", "sequence")
    )
    described = 'aria-describedby="{0}-help"'
    return (
        '<section id="try" class="panel" aria-labelledby="try-title">'
        f'<h2 id="try-title" tabindex="-1">{_e(t["try_title"])}</h2>'
        f"<noscript><p>{_e(t['noscript'].format(origin='http://HOST:PORT'))}</p></noscript>"
        '<form id="try-form" class="js-only" novalidate>'
        f'<fieldset class="modes"><legend>{_e(t["what"])}</legend>{modes}</fieldset>'
        '<div class="mode" data-mode="single">'
        + _field("t-code", t["code"], f'<select id="t-code" name="code">{options}</select>')
        + "</div>"
        '<div class="mode" data-mode="list" hidden>'
        + _field(
            "t-list",
            t["list"],
            f'<input id="t-list" class="mono" name="list" value="200,503:2" autocomplete="off" spellcheck="false" {described.format("t-list")}>',
            t["list_help"],
        )
        + "</div>"
        '<div class="mode" data-mode="sequence" hidden><div class="row">'
        + _field(
            "t-seq-name",
            t["seq_name"],
            '<input id="t-seq-name" name="seq_name" value="demo" autocomplete="off" spellcheck="false">',
        )
        + _field(
            "t-seq",
            t["seq_steps"],
            f'<input id="t-seq" class="mono" name="seq" value="503*2,200" autocomplete="off" spellcheck="false" {described.format("t-seq")}>',
        )
        + f'</div><p class="help" id="t-seq-help">{_e(t["seq_help"])}</p>'
        f'<button type="button" id="t-seq-reset" class="secondary">{_e(t["seq_reset"])}</button></div>'
        '<div class="row">'
        + _field(
            "t-delay",
            t["delay"],
            f'<input id="t-delay" class="mono" name="delay" autocomplete="off" spellcheck="false" {described.format("t-delay")}>',
            t["delay_help"],
        )
        + _field(
            "t-location",
            t["location"],
            f'<input id="t-location" class="mono" name="location" autocomplete="off" spellcheck="false" {described.format("t-location")}>',
            t["location_help"],
        )
        + "</div>"
        + '<div class="row">'
        + _field(
            "t-limit",
            t["limit"],
            f'<input id="t-limit" class="mono" name="limit" autocomplete="off" spellcheck="false" {described.format("t-limit")}>',
            t["limit_help"],
        )
        + _field(
            "t-outage",
            t["outage"],
            f'<input id="t-outage" class="mono" name="outage" autocomplete="off" spellcheck="false" {described.format("t-outage")}>',
            t["outage_help"],
        )
        + "</div>"
        + _field(
            "t-headers",
            t["headers_in"],
            f'<textarea id="t-headers" class="mono" name="headers" rows="2" spellcheck="false" {described.format("t-headers")}></textarea>',
            t["headers_help"],
        )
        + '<div class="row">'
        + _field("t-fault", t["fault"], f'<select id="t-fault" name="fault">{faults}</select>')
        + _field("t-accept", t["accept"], f'<select id="t-accept" name="accept">{accept}</select>')
        + "</div>"
        f'<label class="check"><input type="checkbox" id="t-follow" name="follow" checked> {_e(t["follow"])}</label>'
        '<div class="out">'
        f'<div class="field"><label for="t-url">{_e(t["url"])}</label><div class="copyrow">'
        '<textarea id="t-url" class="mono" readonly rows="1" spellcheck="false"></textarea>'
        f'<button type="button" class="secondary" data-copy="t-url">{_e(t["copy"])}</button>'
        f'<a id="t-open" class="button secondary" href="status/418" target="_blank" rel="noopener">{_e(t["open"])}</a></div></div>'
        f'<div class="field"><label for="t-curl">{_e(t["curl"])}</label><div class="copyrow">'
        '<textarea id="t-curl" class="mono" readonly rows="1" spellcheck="false"></textarea>'
        f'<button type="button" class="secondary" data-copy="t-curl">{_e(t["copy"])}</button></div></div>'
        '<p id="t-copied" class="help" role="status"></p>'
        "</div>"
        '<p id="t-note" class="note" role="status" hidden></p>'
        f'<div class="actions"><button type="submit" id="t-run">{_e(t["run"])}</button>'
        f'<button type="button" id="t-wire" class="secondary">{_e(t["wire"])}</button>'
        f'<button type="button" id="t-cancel" class="secondary" hidden>{_e(t["cancel"])}</button></div>'
        "</form>"
        '<div id="t-result" class="result js-only" aria-live="polite" hidden>'
        f"<h3>{_e(t['result'])}</h3>"
        '<p id="r-url" class="help mono"></p><p id="r-status" class="statusline"></p>'
        '<p id="r-time" class="help"></p>'
        '<p id="r-info" class="note" hidden></p>'
        f'<div id="r-has-headers"><h4>{_e(t["result_headers"])}</h4><pre id="r-headers"></pre></div>'
        f'<div id="r-has-body"><h4>{_e(t["result_body"])}</h4><pre id="r-body"></pre></div>'
        "</div>" + _wire_dialog(t) + "</section>"
    )


def _wire_dialog(t: dict[str, str]) -> str:
    """The wire view: the transcript's timeline and raw bytes beside what fetch() saw."""
    return (
        '<dialog id="wire" class="wire js-only" aria-labelledby="w-title">'
        f'<div class="w-top"><h2 id="w-title">{_e(t["wire_title"])}</h2>'
        f'<button type="button" id="w-close" class="secondary">{_e(t["close"])}</button></div>'
        '<p id="w-url" class="help mono"></p>'
        '<p id="w-status" class="note" role="status" hidden></p>'
        '<div class="compare">'
        f'<section class="w-wire" aria-labelledby="w-on-title"><h3 id="w-on-title">{_e(t["wire_on"])}</h3>'
        f'<p class="help">{_e(t["wire_help"])}</p>'
        '<ol id="w-timeline" class="timeline"></ol>'
        f'<h4>{_e(t["wire_raw"])}</h4><pre id="w-raw" class="raw"></pre></section>'
        f'<section class="w-fetch" aria-labelledby="w-fetch-title"><h3 id="w-fetch-title">{_e(t["wire_fetch"])}</h3>'
        f'<p class="help">{_e(t["wire_fetch_help"])}</p>'
        '<p id="w-f-status" class="statusline"></p><p id="w-f-time" class="help"></p>'
        '<p id="w-f-info" class="note" hidden></p>'
        f'<div id="w-f-has-headers"><h4>{_e(t["result_headers"])}</h4><pre id="w-f-headers"></pre></div>'
        f'<div id="w-f-has-body"><h4>{_e(t["result_body"])}</h4><pre id="w-f-body"></pre></div>'
        "</section></div></dialog>"
    )


def render_index(catalog: Catalog, lang: str) -> str:
    t = TEXT[lang]
    groups: dict[int, list[StatusInfo]] = {}
    for info in catalog:
        groups.setdefault(class_of(info.code), []).append(info)
    sections = []
    jump = []
    for cls, infos in sorted(groups.items()):
        title = _class_title(cls, lang)
        jump.append(f'<li><a href="#class-{cls}">{cls}xx</a></li>')
        items = "".join(_entry(info, lang, t) for info in infos)
        sections.append(
            f'<section class="group" id="class-{cls}" aria-labelledby="class-{cls}-title">'
            f'<h3 id="class-{cls}-title">{_e(title)}</h3><ul class="codes">{items}</ul></section>'
        )
    total = len(catalog)
    current = ' aria-current="true"'
    switch = (
        f'<nav class="langs" aria-label="{_e(t["lang_nav"])}">'
        f'<a href="./?lang=en" lang="en" hreflang="en"{current if lang == "en" else ""}>English</a>'
        f'<a href="./?lang=zh" lang="zh" hreflang="zh"{current if lang == "zh" else ""}>中文</a>'
        "</nav>"
    )
    data = {"lang": lang, "total": total, "text": SCRIPT_TEXT[lang], "count": t["count"]}
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{_e(t['title'])}</title>"
        '<link rel="icon" href="data:,">'
        f'<link rel="stylesheet" href="{STATIC_PREFIX}page.css">'
        f'<script src="{STATIC_PREFIX}page.js" defer></script>'
        "</head><body>"
        f'<a class="skip" href="#try-title">{_e(t["skip"])}</a>'
        '<header class="top-bar"><div class="brand">'
        f'<h1>mockstatus</h1><p class="tagline">{_e(t["tagline"])}</p></div>'
        f'<div class="top-links"><a class="to-try js-only" href="#try-title">{_e(t["try_title"])} ↓</a>{switch}</div></header>'
        '<div class="layout"><main id="codes" aria-labelledby="codes-title">'
        f'<h2 id="codes-title" class="sr-only">{_e(t["codes_title"])}</h2>'
        '<div class="filter">'
        + _field(
            "q",
            t["search"],
            f'<input id="q" type="search" autocomplete="off" spellcheck="false" placeholder="{_e(t["search_hint"])}" '
            'aria-controls="codes-list" aria-describedby="q-count">',
        )
        + f'<p id="q-count" class="help" role="status" aria-live="polite">{_e(t["count"].format(shown=total, total=total))}</p>'
        f'<nav class="jump" aria-label="{_e(t["classes_nav"])}"><ul>{"".join(jump)}</ul></nav>'
        "</div>"
        f'<div id="codes-list">{"".join(sections)}</div>'
        f'<p id="q-none" class="note" hidden>{_e(t["none"])}</p>'
        "</main>"
        f'<aside class="side">{_panel(catalog, lang, t)}</aside></div>'
        f'<script type="application/json" id="ms-data">{_json_for_html(data)}</script>'
        "</body></html>\n"
    )


# --- serving -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Asset:
    """One precomputed file: its bytes, gzipped bytes and validators."""

    body: bytes
    gzipped: bytes
    etag: str
    content_type: str

    @classmethod
    def of(cls, body: bytes, content_type: str) -> Asset:
        digest = hashlib.sha256(body).hexdigest()[:20]
        return cls(body, gzip.compress(body, mtime=0), f'"{digest}"', content_type)


@functools.cache
def static_assets() -> dict[str, Asset]:
    """The CSS and JavaScript from package data, read once per process."""
    folder = resources.files("mockstatus") / "static"
    return {name: Asset.of((folder / name).read_bytes(), ctype) for name, ctype in STATIC_FILES.items()}


class Pages:
    """The index in every language, rendered once for one catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.static = static_assets()

    @functools.cached_property
    def index(self) -> dict[str, Asset]:
        # Rendered on the first GET /, not at start-up: a test server started per
        # test rarely shows the page, and rendering it (with gzip) would slow every start.
        return {lang: Asset.of(render_index(self.catalog, lang).encode(), "text/html; charset=utf-8") for lang in LANGS}


PAGES = web.AppKey("mockstatus.pages", Pages)


def _accepts_gzip(accept_encoding: str | None) -> bool:
    if not accept_encoding:
        return False
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip"):
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _send(request: web.Request, asset: Asset, headers: CIMultiDict) -> web.Response:
    gz = _accepts_gzip(request.headers.get("Accept-Encoding"))
    # Each encoding is a different representation, so it gets its own ETag (RFC 9110 §8.8.3).
    etag = asset.etag[:-1] + '-gz"' if gz else asset.etag
    headers["Server"] = SERVER
    headers["ETag"] = etag
    headers["Cache-Control"] = "no-cache"
    headers["X-Content-Type-Options"] = "nosniff"
    vary = headers.get("Vary")
    headers["Vary"] = f"{vary}, Accept-Encoding" if vary else "Accept-Encoding"
    given = request.headers.get("If-None-Match", "")
    if given.strip() == "*" or any(tag.strip().removeprefix("W/") == etag for tag in given.split(",")):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = asset.content_type
    if gz:
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=asset.gzipped if gz else asset.body, headers=headers)


def _not_get(request: web.Request) -> web.Response | None:
    if request.method in ("GET", "HEAD"):
        return None
    state = request.app[STATE]
    response = error_for(
        request, state.catalog, 405, f"{request.method} is not allowed on {request.path}; allowed: {ALLOWED_METHODS}"
    )
    response.headers["Allow"] = ALLOWED_METHODS
    return response


PAGE_PARAMETERS = ("lang",)


async def index(request: web.Request) -> web.StreamResponse:
    """The page, in the language from ``?lang=`` or else ``Accept-Language``."""
    refused = _not_get(request)
    if refused is not None:
        return refused
    state = request.app[STATE]
    for name in request.query:
        # The same rule as for /status: a link's own parameters (utm_source=...)
        # pass, a misspelt lang or --strict-options is a 400.
        if name != "lang" and (state.settings.strict_options or resembles(name, PAGE_PARAMETERS)):
            near = resembles(name, PAGE_PARAMETERS)
            hint = f": did you mean {near!r}?" if near else " (--strict-options)"
            return error_for(request, state.catalog, 400, f"unknown parameter {name!r} for /{hint}; allowed: lang")
    lang = request.query.get("lang")
    if lang is None:
        lang = negotiate_lang(request.headers.get("Accept-Language"))
    elif lang not in LANGS:
        return error_for(request, state.catalog, 400, f"bad lang {lang!r}: expected one of {', '.join(LANGS)}")
    headers = CIMultiDict(
        {
            "Content-Language": lang,
            "Vary": "Accept-Language",
            "Content-Security-Policy": CSP,
            "Referrer-Policy": "same-origin",
        }
    )
    return _send(request, request.app[PAGES].index[lang], headers)


async def static(request: web.Request) -> web.StreamResponse:
    refused = _not_get(request)
    if refused is not None:
        return refused
    name = request.match_info["name"]
    asset = request.app[PAGES].static.get(name)
    if asset is None:
        state = request.app[STATE]
        allowed = ", ".join(sorted(STATIC_FILES))
        return error_for(request, state.catalog, 404, f"no static file {name!r}; the page uses: {allowed}")
    return _send(request, asset, CIMultiDict())
