"""Load and validate the status catalog (``config/statuses.yaml``).

The catalog is the single source of every code's facts: reason phrase,
descriptions, headers, body, default delay and reply kind.  A user file
overlays it per code.  Every problem becomes a ``ConfigError`` whose one-line
message names the file and the key path (or the line, for YAML syntax).
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from .durations import format_seconds, parse_duration

# Three ASCII digits, 100-999.  ``int()`` would also take "2_00", "+200",
# " 200" and non-ASCII digits such as "٢٠٠" (httpbin's bug), so never use it alone.
CODE_PATTERN = re.compile(r"[1-9][0-9]{2}", re.ASCII)
CODE_FORM = "exactly three ASCII digits from 100 to 999"

# RFC 9110 §5.1 field-name = token; §5.5 field values exclude CR, LF and NUL.
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+", re.ASCII)
ILLEGAL_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# RFC 9112 §4: reason-phrase = *( HTAB / SP / VCHAR / obs-text ); we keep it ASCII.
REASON = re.compile(r"[\x20-\x7e\t]+", re.ASCII)

# What ``kind:`` may say; kinds.py holds what each one does.  The faults can
# also be asked for per request (``?fault=``).
FAULTS = (
    "reset", "empty", "garbage", "malformed", "truncate", "no-length",
    "stall", "stall-body", "reset-after", "close-after", "close-during-upload", "reset-during-upload",
    "early-response", "stale-keepalive", "close-after-requests",
)  # fmt: skip
KIND_NAMES = ("normal", "interim", "upgrade", "headerless", "close", *FAULTS)
# What a 1xx code may be: an interim head before a final reply, or the 101 switch.
INFORMATIONAL_KINDS = ("interim", "upgrade")
# Faults that take an argument after a colon: how it is written (in error
# messages), and a value the browser page offers.
FAULT_FORMS = {
    "reset-after": ("reset-after:N", "reset-after:64"),
    "close-after": ("close-after:N", "close-after:64"),
    "stale-keepalive": ("stale-keepalive[:T]", "stale-keepalive:100ms"),
    "close-after-requests": ("close-after-requests:N[!]", "close-after-requests:2"),
}
FAULT_TEXT = ", ".join(FAULT_FORMS[name][0] if name in FAULT_FORMS else name for name in FAULTS)
# Faults decided before the request body is read: the handler leaves it unread.
UPLOAD_FAULTS = frozenset({"close-during-upload", "reset-during-upload", "early-response"})
# A stale keep-alive connection closes this long after its reply unless told otherwise.
DEFAULT_STALE_AFTER = 0.1
MAX_FAULT_BYTES = 1 << 30

# Headers that decide message framing or the connection; the server owns them.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer"})

CODE_KEYS = ("reason", "standard", "source", "kind", "then", "heartbeat", "description", "headers", "body", "delay")
TOP_KEYS = ("codes", "server")


class Fault(NamedTuple):
    """A fault kind with its argument: ``reset-after:64`` -> Fault("reset-after", count=64)."""

    name: str
    count: int | None = None  # bytes (reset-after, close-after) or requests (close-after-requests)
    seconds: float | None = None  # stale-keepalive
    silent: bool = False  # close-after-requests:N! closes without Connection: close


_FAULT_COUNT = re.compile(r"[0-9]{1,10}", re.ASCII)


@functools.lru_cache(maxsize=256)
def parse_fault(text: str, shown: str | None = None) -> Fault:
    """``?fault=`` or a catalog ``kind:`` naming a fault; ValueError names the allowed forms
    and ``shown`` (what was written, a share included) or ``text``."""
    quoted = repr(text if shown is None else shown)
    name, colon, arg = text.partition(":")
    if name not in FAULTS or (colon and name not in FAULT_FORMS):
        raise ValueError(f"bad fault {quoted}: expected one of {FAULT_TEXT}")
    form = FAULT_FORMS.get(name, (name,))[0]
    if name == "stale-keepalive":
        if not colon:
            return Fault(name, seconds=DEFAULT_STALE_AFTER)
        try:
            return Fault(name, seconds=parse_duration(arg, what="stale-keepalive time"))
        except ValueError as exc:
            raise ValueError(f"bad fault {quoted}: {exc}; expected {form}") from None
    if name in FAULT_FORMS:
        silent = name == "close-after-requests" and arg.endswith("!")
        number = arg[:-1] if silent else arg
        least = 1 if name == "close-after-requests" else 0
        if not _FAULT_COUNT.fullmatch(number) or not least <= int(number) <= MAX_FAULT_BYTES:
            what = "requests" if least else "bytes"
            raise ValueError(
                f"bad fault {quoted}: expected {form}, N a whole number of {what} from {least} to {MAX_FAULT_BYTES}"
            )
        return Fault(name, count=int(number), silent=silent)
    return Fault(name)


class ConfigError(Exception):
    """A bad catalog or config file: one line, shown as-is, exit code 2."""

    def __init__(self, message: str) -> None:
        # A key can itself hold CR/LF ("X-A\r\nB": ...): escape control characters
        # so the message stays one line on a terminal or in a log.
        super().__init__(ILLEGAL_VALUE.sub(lambda m: repr(m.group())[1:-1], message))


@dataclasses.dataclass(frozen=True, slots=True)
class StatusInfo:
    code: int
    reason: str
    standard: bool
    source: str
    kind: str
    then: int | None
    description_en: str
    description_zh: str
    headers: tuple[tuple[str, str], ...]
    body: str | None
    delay: float | None
    heartbeat: bool = False  # an interim code repeated while the delay runs (102, RFC 2518 §10.1)

    def description(self, lang: str) -> str:
        return self.description_zh if lang == "zh" and self.description_zh else self.description_en

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "reason": self.reason,
            "standard": self.standard,
            "source": self.source,
            "kind": self.kind,
            "then": self.then,
            "description": {"en": self.description_en, "zh": self.description_zh},
            "headers": [list(pair) for pair in self.headers],
            "body": self.body,
            "delay": self.delay,
            "heartbeat": self.heartbeat,
        }


def unknown_status(code: int) -> StatusInfo:
    """A three-digit code that the catalog does not list: a plain reply.

    An unlisted 1xx is still informational (RFC 9110 §15.2): it goes out as one
    interim response followed by a final 200, never as a final response.
    """
    interim = code < 200
    return StatusInfo(
        code=code,
        reason="Unknown",
        standard=False,
        source="not in the catalog",
        kind="interim" if interim else "normal",
        then=200 if interim else None,
        description_en="This code is not in the catalog; it is served as a plain reply.",
        description_zh="此状态码不在目录中，按普通响应返回。",
        headers=(),
        body=None,
        delay=None,
    )


@dataclasses.dataclass(frozen=True)
class Catalog:
    statuses: Mapping[int, StatusInfo]
    server: Mapping[str, Any]  # the file's server: section as written; settings.load_config parses it
    sources: tuple[str, ...]

    def get(self, code: int) -> StatusInfo:
        info = self.statuses.get(code)
        return info if info is not None else unknown_status(code)

    def __iter__(self):
        return iter(sorted(self.statuses.values(), key=lambda s: s.code))

    def __len__(self) -> int:
        return len(self.statuses)


def default_catalog_path() -> Path:
    """The shipped catalog: package data in an install, ``config/`` in a checkout."""
    try:
        shipped = resources.files("mockstatus.data") / "statuses.yaml"
        if shipped.is_file():
            return Path(str(shipped))
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / "config" / "statuses.yaml"


# libyaml's safe loader when PyYAML has it: with the pure-Python one, parsing
# the catalog is most of a test server's start-up time (benchmarks/startup.py).
FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Deeper than any config needs; PyYAML's composer recurses per level, so a
# deep enough file would end in a RecursionError traceback.
MAX_YAML_DEPTH = 32


class _DuplicateKey(Exception):
    def __init__(self, line: int, key: str, first: int) -> None:
        self.line, self.key, self.first = line, key, first


def _strict(loader: type) -> type:
    """``loader`` that refuses a mapping key given twice (``503`` and ``'503'`` too):
    PyYAML keeps the last one silently, so a typo'd override would win unseen."""

    class Strict(loader):  # type: ignore[misc, valid-type]
        def construct_mapping(self, node, deep=False):
            seen: dict[str, Any] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                name = str(key) if isinstance(key, (str, int)) and not isinstance(key, bool) else repr(key)
                if name in seen:
                    raise _DuplicateKey(key_node.start_mark.line + 1, f"{key!r}"[:80], seen[name] + 1)
                seen[name] = key_node.start_mark.line
            return super().construct_mapping(node, deep=deep)

    return Strict


_STRICT_FAST = _strict(FAST_LOADER)
_STRICT_PURE = _strict(yaml.SafeLoader)


def _check_shape(text: str, path: str | Path, loader: type) -> None:
    """Refuse aliases and deep nesting from the event stream, before anything is built.

    An alias makes a few hundred bytes expand to billions of nodes (the
    "billion laughs"); the parser's events are read one at a time, so this
    check costs no memory and no recursion.
    """
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.AliasEvent):
            raise ConfigError(
                f"{path}:{event.start_mark.line + 1}: YAML alias *{event.anchor} is not allowed in a config file; "
                "write the value out"
            )
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ConfigError(f"{path}:{event.start_mark.line + 1}: nested more than {MAX_YAML_DEPTH} levels deep")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def read_yaml(path: str | Path) -> Any:
    """Read one YAML file; syntax errors become 'file:line: problem'."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, expected a YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        _check_shape(text, path, FAST_LOADER)
        return _load(text, _STRICT_FAST, path)
    except yaml.YAMLError as exc:
        # libyaml stops at its own nesting limit; the pure scanner would take
        # seconds to reach the same place, so this one is answered here.
        if "nesting depth" in str(exc):
            raise ConfigError(f"{path}: nested more than {MAX_YAML_DEPTH} levels deep") from None
        # Otherwise parse again with the pure loader: its wording (and lines) for the message.
    try:
        _check_shape(text, path, yaml.SafeLoader)
        return _load(text, _STRICT_PURE, path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: YAML syntax error: {problem}") from None


def _load(text: str, loader: type, path: str | Path) -> Any:
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except _DuplicateKey as dup:
        raise ConfigError(
            f"{path}:{dup.line}: duplicate key {dup.key} (also on line {dup.first}); give each key once"
        ) from None


def parse_code(value: Any, where: str) -> int:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not CODE_PATTERN.fullmatch(text):
        raise ConfigError(f"{where}: bad code {value!r}: expected {CODE_FORM}")
    return int(text)


def _check_headers(raw: Any, where: str) -> dict[str, list[str]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping of header name to value")
    headers: dict[str, list[str]] = {}
    for name, value in raw.items():
        at = f"{where}.{name}"
        if not isinstance(name, str) or not TOKEN.fullmatch(name):
            raise ConfigError(f"{at}: bad header name {name!r}: expected an RFC 9110 token")
        if name.lower() in FRAMING_HEADERS:
            raise ConfigError(f"{at}: {name} is set by the server and cannot be configured")
        values = value if isinstance(value, list) else [value]
        checked = []
        for item in values:
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                raise ConfigError(f"{at}: bad header value {item!r}: expected text")
            text = str(item)
            if ILLEGAL_VALUE.search(text):
                raise ConfigError(f"{at}: bad header value {text!r}: CR, LF and control characters are not allowed")
            checked.append(text)
        headers[name] = checked
    return headers


def _check_code_entry(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping with keys {', '.join(CODE_KEYS)}")
    for key in raw:
        if key not in CODE_KEYS:
            raise ConfigError(f"{where}.{key}: unknown key; allowed: {', '.join(CODE_KEYS)}")
    entry: dict[str, Any] = {}
    if "reason" in raw:
        reason = raw["reason"]
        if not isinstance(reason, str) or not REASON.fullmatch(reason) or not reason.strip():
            raise ConfigError(f"{where}.reason: bad reason phrase {reason!r}: expected printable ASCII text")
        entry["reason"] = reason
    if "standard" in raw:
        if not isinstance(raw["standard"], bool):
            raise ConfigError(f"{where}.standard: expected true or false, got {raw['standard']!r}")
        entry["standard"] = raw["standard"]
    if "source" in raw:
        if not isinstance(raw["source"], str):
            raise ConfigError(f"{where}.source: expected text")
        entry["source"] = raw["source"]
    if "kind" in raw:
        if not isinstance(raw["kind"], str) or raw["kind"].partition(":")[0] not in KIND_NAMES:
            allowed = ", ".join(KIND_NAMES[: -len(FAULTS)]) + ", " + FAULT_TEXT
            raise ConfigError(f"{where}.kind: bad kind {raw['kind']!r}; allowed: {allowed}")
        if raw["kind"] in FAULTS or ":" in raw["kind"]:
            try:
                parse_fault(raw["kind"])
            except ValueError as exc:
                raise ConfigError(f"{where}.kind: {exc}") from None
        entry["kind"] = raw["kind"]
    if "then" in raw:
        then = parse_code(raw["then"], f"{where}.then")
        if then < 200:
            raise ConfigError(f"{where}.then: {then} is not a final code (expected 200 or above)")
        entry["then"] = then
    if "heartbeat" in raw:
        if not isinstance(raw["heartbeat"], bool):
            raise ConfigError(f"{where}.heartbeat: expected true or false, got {raw['heartbeat']!r}")
        if raw["heartbeat"] and raw.get("kind", "interim") != "interim":
            raise ConfigError(f"{where}.heartbeat: only an interim code is repeated, not kind {raw['kind']!r}")
        entry["heartbeat"] = raw["heartbeat"]
    if "description" in raw:
        desc = raw["description"]
        if isinstance(desc, str):
            desc = {"en": desc}
        if not isinstance(desc, Mapping):
            raise ConfigError(f"{where}.description: expected a mapping with en and zh")
        for lang, text in desc.items():
            if lang not in ("en", "zh"):
                raise ConfigError(f"{where}.description.{lang}: unknown language; allowed: en, zh")
            if not isinstance(text, str):
                raise ConfigError(f"{where}.description.{lang}: expected text")
        entry["description"] = {lang: " ".join(text.split()) for lang, text in desc.items()}
    if "headers" in raw:
        entry["headers"] = _check_headers(raw["headers"], f"{where}.headers")
    if "body" in raw:
        if raw["body"] is not None and not isinstance(raw["body"], str):
            raise ConfigError(f"{where}.body: expected text")
        entry["body"] = raw["body"]
    if "delay" in raw:
        try:
            entry["delay"] = parse_duration(raw["delay"], what="delay") if raw["delay"] is not None else None
        except ValueError as exc:
            raise ConfigError(f"{where}.delay: {exc}") from None
    return entry


def _check_file(data: Any, path: str) -> tuple[dict[int, dict[str, Any]], dict[str, Any]]:
    if data is None:
        return {}, {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping with keys {', '.join(TOP_KEYS)}")
    for key in data:
        if key not in TOP_KEYS:
            raise ConfigError(f"{path}: {key}: unknown key; allowed: {', '.join(TOP_KEYS)}")
    codes_raw = data.get("codes") or {}
    if not isinstance(codes_raw, Mapping):
        raise ConfigError(f"{path}: codes: expected a mapping of code to its facts")
    codes: dict[int, dict[str, Any]] = {}
    for key, raw in codes_raw.items():
        code = parse_code(key, f"{path}: codes")
        codes[code] = _check_code_entry(raw, f"{path}: codes.{code}")
    server = data.get("server") or {}
    if not isinstance(server, Mapping):
        raise ConfigError(f"{path}: server: expected a mapping of setting to value")
    return codes, dict(server)


def _merge_entry(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if key == "description":
            merged[key] = {**base.get(key, {}), **value}
        elif key == "headers":
            merged[key] = {**base.get(key, {}), **value}
        else:
            merged[key] = value
    return merged


def _build(code: int, entry: dict[str, Any], where: str) -> StatusInfo:
    if "reason" not in entry:
        raise ConfigError(f"{where}: codes.{code}.reason: missing (a new code needs a reason phrase)")
    informational = 100 <= code < 200
    # A 1xx is never a final reply (RFC 9110 §15.2): sent as one, a client
    # waits for the final reply that never comes. So a 1xx without a kind is
    # interim, and a kind that sends it as the final reply is refused.
    kind = entry.get("kind", "interim" if informational else "normal")
    if kind == "interim" and not informational:
        raise ConfigError(f"{where}: codes.{code}.kind: interim is only for 1xx codes")
    if informational and kind not in INFORMATIONAL_KINDS:
        raise ConfigError(
            f"{where}: codes.{code}.kind: {kind} would send {code} as a final reply, and a 1xx is never final; "
            f"allowed for a 1xx: {', '.join(INFORMATIONAL_KINDS)}"
        )
    description = entry.get("description", {})
    headers = tuple((name, value) for name, values in entry.get("headers", {}).items() for value in values)
    return StatusInfo(
        code=code,
        reason=entry["reason"],
        standard=entry.get("standard", False),
        source=entry.get("source", ""),
        kind=kind,
        then=entry.get("then", 200 if kind == "interim" else None),
        description_en=description.get("en", ""),
        description_zh=description.get("zh", ""),
        headers=headers,
        body=entry.get("body"),
        delay=entry.get("delay"),
        # Only an interim kind repeats (an overlay may turn 102 into an upgrade).
        heartbeat=kind == "interim" and entry.get("heartbeat", False),
    )


_BASE_CACHE: dict[tuple[str, int, int], dict[int, dict[str, Any]]] = {}


def _checked_base(path: str) -> dict[int, dict[str, Any]]:
    """The base file's checked entries, parsed once per file version.

    Every test server loads the same base catalog; entries are never mutated
    (overlays merge into copies), so they can be shared.
    """
    try:
        stat = Path(path).stat()
    except OSError:
        return _check_file(read_yaml(path), path)[0]  # read_yaml names the problem
    key = (path, stat.st_mtime_ns, stat.st_size)
    codes = _BASE_CACHE.get(key)
    if codes is None:
        codes, _ = _check_file(read_yaml(path), path)
        _BASE_CACHE.clear()  # keep one version: the file changed or another base is in use
        _BASE_CACHE[key] = codes
    return codes


def load_catalog(overlay: str | Path | Mapping[str, Any] | None = None, *, base: str | Path | None = None) -> Catalog:
    """The default catalog, overlaid per code by a user file (or a dict)."""
    base_path = str(base or default_catalog_path())
    codes = dict(_checked_base(base_path))
    sources = [base_path]
    server: dict[str, Any] = {}
    if overlay is not None:
        if isinstance(overlay, Mapping):
            where = "config"
            data = overlay
        else:
            where = str(overlay)
            data = read_yaml(overlay)
        extra_codes, server = _check_file(data, where)
        for code, entry in extra_codes.items():
            codes[code] = _merge_entry(codes.get(code, {}), entry)
        sources.append(where)
    statuses = {code: _build(code, entry, sources[-1]) for code, entry in sorted(codes.items())}
    return Catalog(statuses=statuses, server=server, sources=tuple(sources))


def check_delays(catalog: Catalog, max_delay: float, default_delay: float) -> None:
    """A delay the server is configured with obeys ``--max-delay`` like a requested one."""
    limit = format_seconds(max_delay)
    if default_delay > max_delay:
        raise ConfigError(f"--default-delay {format_seconds(default_delay)} is above --max-delay {limit}")
    for info in catalog:
        if info.delay is not None and info.delay > max_delay:
            raise ConfigError(
                f"{catalog.sources[-1]}: codes.{info.code}.delay: {format_seconds(info.delay)} "
                f"is above --max-delay {limit}; raise --max-delay or lower the delay"
            )
        if info.kind.startswith("stale-keepalive:"):
            after = parse_fault(info.kind).seconds or 0.0
            if after > max_delay:
                raise ConfigError(
                    f"{catalog.sources[-1]}: codes.{info.code}.kind: {info.kind} closes after "
                    f"{format_seconds(after)}, above --max-delay {limit}; raise --max-delay or lower it"
                )
