"""The catalog (config/statuses.yaml): its contents, its validation, user overlays, ``server:``.

Validation errors are checked as the one-line message a user sees (file, line
or key path, the bad value); the CLI's exit code for them is in test_cli.py.
"""

from __future__ import annotations

import json
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from mockstatus.catalog import ConfigError, default_catalog_path, load_catalog
from mockstatus.cli import build_parser, resolve_settings
from mockstatus.settings import load_config

ROOT = Path(__file__).resolve().parent.parent
CATALOG = load_catalog()

# The seed list (../shared/seed/status-codes.zh.md): each code's Chinese text, whitespace
# collapsed.  The catalog must carry these words unchanged.
SEED_ZH = {
    100: "客户端应当继续发送请求。这个临时响应是用来通知客户端它的部分请求已经被服务器接收，且仍未被拒绝。客户端应当继续发送请求的剩余部分，或者如果请求已经完成，忽略这个响应。服务器必须在请求完成后向客户端发送一个最终响应。",
    101: "服务器已经理解了客户端的请求，并将通过Upgrade 消息头通知客户端采用不同的协议来完成这个请求。在发送完这个响应最后的空行后，服务器将会切换到在Upgrade 消息头中定义的那些协议。",
    102: "由WebDAV（RFC 2518）扩展的状态码，代表处理将被继续执行。",
    200: "请求已成功，请求所希望的响应头或数据体将随此响应返回。",
    201: "请求已经被实现，而且有一个新的资源已经依据请求的需要而建立，且其 URI 已经随Location 头信息返回。假如需要的资源无法及时建立的话，应当返回 '202 Accepted'。",
    202: "服务器已接受请求，但尚未处理。正如它可能被拒绝一样，最终该请求可能会也可能不会被执行。在异步操作的场合下，没有比发送这个状态码更方便的做法了。",
    203: "服务器已成功处理了请求，但返回的实体头部元信息不是在原始服务器上有效的确定集合，而是来自本地或者第三方的拷贝。当前的信息可能是原始版本的子集或者超集。例如，包含资源的元数据可能导致原始服务器知道元信息的超集。使用此状态码不是必须的，而且只有在响应不使用此状态码便会返回200 OK的情况下才是合适的。",
    204: "服务器成功处理了请求，但不需要返回任何实体内容，并且希望返回更新了的元信息。响应可能通过实体头部的形式，返回新的或更新后的元信息。如果存在这些头部信息，则应当与所请求的变量相呼应。",
    205: "服务器成功处理了请求，且没有返回任何内容。但是与204响应不同，返回此状态码的响应要求请求者重置文档视图。该响应主要是被用于接受用户输入后，立即重置表单，以便用户能够轻松地开始另一次输入。",
    300: "被请求的资源有一系列可供选择的回馈信息，每个都有自己特定的地址和浏览器驱动的商议信息。用户或浏览器能够自行选择一个首选的地址进行重定向。",
    301: "被请求的资源已永久移动到新位置，并且将来任何对此资源的引用都应该使用本响应返回的若干个 URI 之一。",
    302: "请求的资源临时从不同的 URI响应请求。由于这样的重定向是临时的，客户端应当继续向原有地址发送以后的请求。",
    303: "对应当前请求的响应可以在另一个 URI 上被找到，而且客户端应当采用 GET 的方式访问那个资源。这个方法的存在主要是为了允许由脚本激活的POST请求输出重定向到一个新的资源。",
    304: "如果客户端发送了一个带条件的 GET 请求且该请求已被允许，而文档的内容（自上次访问以来或者根据请求的条件）并没有改变，则服务器应当返回这个状态码。",
    305: "被请求的资源必须通过指定的代理才能被访问。",
    306: "在最新版的规范中，306状态码已经不再被使用。",
    307: "请求的资源临时从不同的URI 响应请求。",
    400: "语义有误,请求参数有误。",
    401: "当前请求需要用户验证。",
    403: "服务器已经理解请求，但是拒绝执行它。",
    404: "请求失败，请求所希望得到的资源未被在服务器上发现。",
    405: "请求行中指定的请求方法不能被用于请求相应的资源。",
    406: "请求的资源的内容特性无法满足请求头中的条件，因而无法生成响应实体。",
    407: "与401响应类似，只不过客户端必须在代理服务器上进行身份验证。",
    408: "请求超时。",
    409: "由于和被请求的资源的当前状态之间存在冲突，请求无法完成。",
    410: "被请求的资源在服务器上已经不再可用，而且没有任何已知的转发地址。",
    415: "对于当前请求的方法和所请求的资源，请求中提交的实体并不是服务器中所支持的格式，因此请求被拒绝。",
    423: "当前资源被锁定。",
    500: "服务器遇到了一个未曾预料的状况，导致了它无法完成对请求的处理。",
    501: "服务器不支持当前请求所需要的某个功能。",
    502: "作为网关或者代理工作的服务器尝试执行请求时，从上游服务器接收到无效的响应。",
    503: "由于临时的服务器维护或者过载，服务器当前无法处理请求。",
    504: "作为网关或者代理工作的服务器尝试执行请求时，未能及时从上游服务器收到响应",
    505: "服务器不支持，或者拒绝支持在请求中使用的 HTTP 版本。",
    509: "服务器达到带宽限制。",
    600: "源站没有返回响应头部，只返回实体内容",
}

# Every other IANA-registered code, 418, and the unofficial codes met behind proxies and CDNs.
IANA = {103, 206, 207, 208, 226, 308, 402, 411, 412, 413, 414, 416, 417, 421, 422, 424, 425, 426, 428, 429,
        431, 451, 506, 507, 508, 510, 511}  # fmt: skip
UNOFFICIAL = {419, 420, 440, 444, 449, 450, 460, 463, *range(494, 500), *range(520, 528), 530, 598, 599, 509, 600}
REASONS = {
    302: "Found",
    413: "Content Too Large",
    422: "Unprocessable Content",
    306: "Switch Proxy",
    509: "Bandwidth Limit Exceeded",
    600: "Unparseable Response Headers",
    418: "I'm a teapot",
    100: "Continue",
    200: "OK",
    404: "Not Found",
    416: "Range Not Satisfiable",
    503: "Service Unavailable",
}


# --- contents -----------------------------------------------------------------------


def test_every_required_code_is_listed():
    missing = (set(SEED_ZH) | IANA | {418} | UNOFFICIAL) - {info.code for info in CATALOG}
    assert not missing


@pytest.mark.parametrize("code", sorted(SEED_ZH), ids=lambda c: f"seed/{c}")
def test_seed_codes_carry_the_seed_chinese_text(code):
    assert CATALOG.get(code).description_zh == SEED_ZH[code]


@pytest.mark.parametrize("code,reason", sorted(REASONS.items()), ids=lambda v: str(v))
def test_reason_phrases(code, reason):
    assert CATALOG.get(code).reason == reason


def test_standard_and_unofficial_are_marked_with_a_source():
    for info in CATALOG:
        assert info.source.strip(), info.code
        assert info.description_en.strip() and info.description_zh.strip(), info.code
    for code in IANA | set(SEED_ZH) - UNOFFICIAL | {418}:
        info = CATALOG.get(code)
        assert info.standard is True and "RFC" in info.source, (code, info.source)
    for code in UNOFFICIAL:
        info = CATALOG.get(code)
        assert info.standard is False and "RFC" not in info.source, (code, info.source)
    assert "nginx" in CATALOG.get(444).source and "Cloudflare" in CATALOG.get(522).source


def test_one_source_of_truth_the_json_endpoint(mockstatus):
    with urllib.request.urlopen(mockstatus.url("/__mockstatus/codes"), timeout=5) as response:
        served = json.load(response)
    assert served["codes"] == [info.as_json() for info in CATALOG]


def test_the_shipped_catalog_is_the_config_file():
    """The package data (mockstatus.data) is built from config/: the same bytes."""
    assert default_catalog_path().read_bytes() == (ROOT / "config" / "statuses.yaml").read_bytes()


def test_the_config_file_lists_codes_in_order_with_every_fact():
    raw = yaml.safe_load((ROOT / "config" / "statuses.yaml").read_text(encoding="utf-8"))
    codes = list(raw["codes"])
    assert codes == sorted(codes)
    for code, entry in raw["codes"].items():
        assert {"reason", "standard", "source", "description"} <= set(entry), code
        assert set(entry["description"]) == {"en", "zh"}, code


# --- validation ---------------------------------------------------------------------

BAD_FILES = [
    # (id, YAML, fragments of the one-line message; "{path}" is the file)
    ("yaml-syntax", "codes:\n  200:\n    reason: OK\n\tdelay: 1s\n", ["{path}:4: YAML syntax error"]),
    (
        "yaml-unclosed",
        "codes:\n  200:\n    reason: OK\n    headers: {X-A: 1\n  201:\n    reason: Created\n",
        ["{path}:5: YAML syntax error"],
    ),
    ("unknown-key", "codes:\n  200:\n    colour: red\n", ["{path}: codes.200.colour: unknown key", "reason"]),
    ("unknown-top-key", "kodes:\n  200: {}\n", ["{path}: kodes: unknown key", "codes, server"]),
    ("unknown-lang", "codes:\n  200:\n    description: {fr: Bien}\n", ["codes.200.description.fr", "en, zh"]),
    ("code-4-digits", "codes:\n  2000: {reason: X}\n", ["{path}: codes: bad code 2000", "three ASCII digits"]),
    ("code-2-digits", "codes:\n  99: {reason: X}\n", ["codes: bad code 99"]),
    ("code-letters", "codes:\n  abc: {reason: X}\n", ["codes: bad code 'abc'"]),
    ("code-leading-zero", "codes:\n  '099': {reason: X}\n", ["codes: bad code '099'"]),
    ("bad-duration", "codes:\n  200:\n    delay: soon\n", ["codes.200.delay: bad delay 'soon'", "250ms"]),
    ("negative-duration", "codes:\n  200:\n    delay: -1s\n", ["codes.200.delay", "not negative"]),
    (
        "header-name-crlf",
        'codes:\n  200:\n    headers:\n      "X-A\\r\\nB": x\n',
        ["codes.200.headers", "bad header name 'X-A\\r\\nB'"],
    ),
    ("header-name-space", "codes:\n  200:\n    headers:\n      X A: x\n", ["codes.200.headers", "'X A'", "token"]),
    (
        "header-value-crlf",
        'codes:\n  200:\n    headers:\n      X-A: "a\\r\\nSet-Cookie: b"\n',
        ["codes.200.headers.X-A: bad header value 'a\\r\\nSet-Cookie: b'", "CR, LF"],
    ),
    ("header-value-nul", 'codes:\n  200:\n    headers:\n      X-A: "a\\0b"\n', ["codes.200.headers.X-A", "control"]),
    (
        "framing-header",
        "codes:\n  200:\n    headers:\n      Content-Length: 5\n",
        ["codes.200.headers.Content-Length", "set by the server"],
    ),
    ("reason-empty", "codes:\n  200:\n    reason: ''\n", ["codes.200.reason: bad reason phrase ''"]),
    ("reason-non-ascii", "codes:\n  200:\n    reason: 好\n", ["codes.200.reason", "printable ASCII"]),
    ("bad-kind", "codes:\n  200:\n    kind: explode\n", ["codes.200.kind: bad kind 'explode'", "normal"]),
    ("bad-then", "codes:\n  100:\n    then: 100\n", ["codes.100.then", "not a final code"]),
    ("standard-not-bool", "codes:\n  200:\n    standard: maybe\n", ["codes.200.standard", "true or false"]),
    ("new-code-no-reason", "codes:\n  299:\n    body: hi\n", ["codes.299.reason: missing"]),
    ("interim-not-1xx", "codes:\n  299:\n    reason: X\n    kind: interim\n", ["codes.299.kind", "only for 1xx"]),
    ("server-unknown", "server:\n  prot: 80\n", ["server:", "unknown setting 'prot'", "port"]),
    ("server-bad-port", "server:\n  port: 99999\n", ["server: port", "bad port 99999"]),
    ("server-bad-size", "server:\n  max_body_size: lots\n", ["server: max_body_size", "bad size 'lots'"]),
    ("server-bad-delay", "server:\n  max_delay: forever\n", ["server: max_delay", "'forever'"]),
    ("not-a-mapping", "- 200\n- 404\n", ["{path}: expected a mapping"]),
]


@pytest.mark.parametrize("text,fragments", [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_config_file(tmp_path, text, fragments):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message
    for fragment in fragments:
        assert fragment.format(path=path) in message, message


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such file"):
        load_catalog(tmp_path / "nope.yaml")


def test_the_base_catalog_is_validated_too(tmp_path):
    base = tmp_path / "statuses.yaml"
    base.write_text("codes:\n  200:\n    reason: OK\n    colour: red\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"statuses\.yaml: codes\.200\.colour: unknown key"):
        load_catalog(base=base)


# --- overlays -----------------------------------------------------------------------

OVERLAY = """
codes:
  503:
    reason: Down For Maintenance
    description:
      en: Planned downtime.
      zh: 计划停机。
    headers:
      X-Maintenance: "true"
  401:
    headers:
      X-Extra: "1"
  500:
    body: "database is down\\n"
  299:
    reason: Custom Success
    headers:
      X-Custom: "yes"
  799:
    reason: Custom Oddity
    standard: false
    source: our team
    body: "odd\\n"
"""


@pytest.fixture
def overlay_server(tmp_path, make_mockstatus):
    path = tmp_path / "mine.yaml"
    path.write_text(OVERLAY, encoding="utf-8")
    return make_mockstatus(config=str(path))


def get(server, path, **headers):
    request = urllib.request.Request(server.url(path), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.reason, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.reason, error.headers, error.read().decode()


def test_overlay_changes_reason_description_and_adds_a_header(overlay_server):
    status, reason, headers, body = get(overlay_server, "/status/503")
    assert (status, reason, body) == (503, "Down For Maintenance", "503 Down For Maintenance\n")
    assert headers["X-Maintenance"] == "true"
    assert headers["Retry-After"] == "1"  # the default's header stays
    _, _, _, zh = get(overlay_server, "/status/503", Accept="application/json", **{"Accept-Language": "zh"})
    assert json.loads(zh)["description"] == "计划停机。"


def test_overlay_adds_headers_next_to_the_defaults(overlay_server):
    _, _, headers, _ = get(overlay_server, "/status/401")
    assert headers["WWW-Authenticate"] == 'Basic realm="mockstatus"' and headers["X-Extra"] == "1"


def test_overlay_adds_a_body(overlay_server):
    assert get(overlay_server, "/status/500")[3] == "database is down\n"


@pytest.mark.parametrize("code,reason", [(299, "Custom Success"), (799, "Custom Oddity")])
def test_overlay_adds_custom_codes(overlay_server, code, reason):
    status, got_reason, headers, body = get(overlay_server, f"/status/{code}")
    assert (status, got_reason) == (code, reason)
    assert body == ("odd\n" if code == 799 else "299 Custom Success\n")
    if code == 299:
        assert headers["X-Custom"] == "yes"
    codes = {c["code"]: c for c in json.loads(get(overlay_server, "/__mockstatus/codes")[3])["codes"]}
    assert codes[code]["reason"] == reason


def test_overlay_leaves_other_codes_alone(overlay_server):
    status, reason, _, body = get(overlay_server, "/status/418")
    assert (status, reason, body) == (418, "I'm a teapot", "I'm a teapot\n")


def test_overlay_as_a_dict():
    catalog = load_catalog({"codes": {418: {"reason": "Short And Stout"}}})
    assert catalog.get(418).reason == "Short And Stout"
    assert catalog.get(418).body == "I'm a teapot\n"


def test_overlay_merges_description_and_headers_by_name():
    catalog = load_catalog({"codes": {503: {"description": {"en": "Planned."}, "headers": {"Retry-After": "60"}}}})
    info = catalog.get(503)
    assert info.description_en == "Planned." and info.description_zh == SEED_ZH[503]
    assert info.headers == (("Retry-After", "60"),)
    assert catalog.get(103).headers == CATALOG.get(103).headers  # a code not named keeps all its headers


# --- the server: section and precedence -------------------------------------------------


def test_server_section_configures_the_server(tmp_path, make_mockstatus):
    path = tmp_path / "small.yaml"
    path.write_text("server:\n  max_body_size: 100\n", encoding="utf-8")
    server = make_mockstatus(config=str(path))
    request = urllib.request.Request(server.url("/status/201"), data=b"x" * 200, method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 413


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "server.yaml"
    path.write_text(
        textwrap.dedent("""\
            server:
              port: 1111
              max_body_size: 2k
              log_format: json
        """),
        encoding="utf-8",
    )
    return str(path)


PRECEDENCE = [
    # (id, argv, env, expected port, expected max_body_size)
    ("default", [], {}, 8080, 1024 * 1024),
    ("config-flag", ["--config", "{config}"], {}, 1111, 2048),
    ("config-env", [], {"MOCKSTATUS_CONFIG": "{config}"}, 1111, 2048),
    ("env-over-config", [], {"MOCKSTATUS_CONFIG": "{config}", "MOCKSTATUS_PORT": "2222"}, 2222, 2048),
    ("flag-over-env", ["--port", "3333"], {"MOCKSTATUS_CONFIG": "{config}", "MOCKSTATUS_PORT": "2222"}, 3333, 2048),
    ("flag-over-config", ["--config", "{config}", "--max-body-size", "1m"], {}, 1111, 1024 * 1024),
    ("env-only", [], {"MOCKSTATUS_MAX_BODY_SIZE": "64k"}, 8080, 65536),
    ("serve-subcommand", ["serve", "--port", "4444"], {"MOCKSTATUS_PORT": "2222"}, 4444, 1024 * 1024),
]


@pytest.mark.parametrize("argv,env,port,size", [p[1:] for p in PRECEDENCE], ids=[p[0] for p in PRECEDENCE])
def test_precedence_flag_env_config_default(config_file, argv, env, port, size):
    uses_config = "{config}" in " ".join([*argv, *env.values()])
    argv = [a.format(config=config_file) for a in argv]
    env = {k: v.format(config=config_file) for k, v in env.items()}
    settings, _ = resolve_settings(build_parser().parse_args(argv), env)
    assert (settings.port, settings.max_body_size) == (port, size)
    assert settings.log_format == ("json" if uses_config else "text")  # a key only the file sets
