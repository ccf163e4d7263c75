"""Server settings: one table that feeds the CLI flags, the env vars and the config file.

Every setting has a flag ``--name``, an env var ``MOCKSTATUS_NAME`` and a key
in the config file's ``server:`` section.  Precedence: flag > env > config
file > default (issue #2).  Parsers raise ``ValueError`` with a one-line
message; the CLI turns it into exit code 2.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from .durations import parse_duration

ENV_PREFIX = "MOCKSTATUS_"


def _port(text: Any) -> int:
    try:
        port = int(str(text), 10)
    except ValueError:
        raise ValueError(f"bad port {text!r}: expected a whole number from 0 to 65535") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"bad port {text!r}: expected a whole number from 0 to 65535")
    return port


def _size(text: Any) -> int:
    """Bytes, with an optional k/m suffix (binary): ``1048576``, ``1m``, ``64k``."""
    raw = str(text).strip().lower()
    factor = 1
    if raw.endswith(("k", "kib", "kb")):
        factor, raw = 1024, raw.rstrip("bi").rstrip("k")
    elif raw.endswith(("m", "mib", "mb")):
        factor, raw = 1024 * 1024, raw.rstrip("bi").rstrip("m")
    if not raw.isascii() or not raw.isdigit():
        raise ValueError(f"bad size {text!r}: expected a number of bytes such as 1048576, 64k or 1m")
    return int(raw) * factor


def _count(text: Any) -> int:
    raw = str(text).strip()
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"bad count {text!r}: expected a whole number of at least 1")
    return int(raw)


def _limit_size(text: Any) -> int:
    """A parser limit in bytes: a size, at least 256 (a smaller one refuses ordinary requests)."""
    size = _size(text)
    if size < 256:
        raise ValueError(f"bad size {text!r}: expected at least 256 bytes")
    return size


def _count_or_zero(text: Any) -> int:
    raw = str(text).strip()
    if not raw.isascii() or not raw.isdigit():
        raise ValueError(f"bad count {text!r}: expected a whole number (0 for no limit)")
    return int(raw)


def _seconds(text: Any) -> float:
    return parse_duration(text if not isinstance(text, str) else text, what="duration")


def _bool(text: Any) -> bool:
    if isinstance(text, bool):
        return text
    raw = str(text).strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"bad switch {text!r}: expected true or false")


def _choice(*allowed: str) -> Callable[[Any], str]:
    def parse(text: Any) -> str:
        if text not in allowed:
            raise ValueError(f"bad value {text!r}: expected one of {', '.join(allowed)}")
        return str(text)

    return parse


def _host(text: Any) -> str:
    raw = str(text).strip()
    if not raw or any(c.isspace() for c in raw):
        raise ValueError(f"bad host {text!r}: expected an IP address or host name")
    try:
        ipaddress.ip_address(raw)
    except ValueError:
        if not all(part and (part.isalnum() or "-" in part) for part in raw.split(".")):
            raise ValueError(f"bad host {text!r}: expected an IP address or host name") from None
    return raw


def _text(text: Any) -> str | None:
    raw = str(text)
    return raw or None


def _hosts(text: Any) -> tuple[str, ...]:
    if isinstance(text, (list, tuple)):
        items = [str(item) for item in text]
    else:
        items = str(text).split(",")
    return tuple(item.strip().lower() for item in items if item.strip())


@dataclasses.dataclass(frozen=True)
class Option:
    name: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    flag_kind: str = "value"  # "value" or "switch" (--x / --no-x)

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


OPTIONS: tuple[Option, ...] = (
    Option("host", _host, "127.0.0.1", "address to listen on; 0.0.0.0 to accept other machines"),
    Option("port", _port, 8080, "port to listen on; 0 picks a free one"),
    Option("config", _text, None, "YAML file that overlays the default catalog"),
    Option("max_body_size", _size, 1024 * 1024, "largest request body read (bytes, 64k, 1m); above it: 413"),
    Option("max_request_line", _limit_size, 8190, "longest request target (path and query) read; above it: 400"),
    Option("max_header_size", _limit_size, 16384, "longest request header value read; above it: 400"),
    Option("max_headers", _count, 128, "most request header fields read; above it: 400"),
    Option("max_delay", _seconds, 300.0, "longest delay a request may ask for; above it: 400"),
    Option("default_delay", _seconds, 0.0, "delay for codes the catalog gives none"),
    Option("shutdown_grace", _seconds, 5.0, "on SIGTERM, how long in-flight replies may finish"),
    Option("journal_size", _count, 1000, "how many requests the journal keeps"),
    Option("max_sequences", _count, 1000, "how many sequence names are kept (oldest evicted)"),
    Option("admin_token", _text, None, "when set, /__mockstatus/* (but health) needs 'Authorization: Bearer <token>'"),
    Option("allowed_redirect_hosts", _hosts, (), "comma list of hosts an absolute location= may point to (empty: any)"),
    Option("upgrade_idle_timeout", _seconds, 30.0, "how long a raw upgraded (101) connection may stay idle"),
    Option(
        "max_connections", _count_or_zero, 16384, "most connections open at once (0: no limit); above it: 503 and close"
    ),
    Option(
        "header_timeout",
        _seconds,
        10.0,
        "time a client has to send a request's line and headers (0: off); then 408 and close",
    ),
    Option(
        "body_timeout",
        _seconds,
        10.0,
        "time a request body may go without a byte arriving; then 408 (or 400 if broken) and close",
    ),
    Option("log_format", _choice("text", "json"), "text", "log line format: text or json"),
    Option("access_log", _bool, False, "log every request (off by default for speed)", "switch"),
)

OPTIONS_BY_NAME = {option.name: option for option in OPTIONS}


def _default(name: str) -> Any:
    return OPTIONS_BY_NAME[name].default


@dataclasses.dataclass(frozen=True)
class Settings:
    """The settings a server runs with; defaults come from OPTIONS (one place)."""

    host: str = _default("host")
    port: int = _default("port")
    config: str | None = _default("config")
    max_body_size: int = _default("max_body_size")
    max_request_line: int = _default("max_request_line")
    max_header_size: int = _default("max_header_size")
    max_headers: int = _default("max_headers")
    max_delay: float = _default("max_delay")
    default_delay: float = _default("default_delay")
    shutdown_grace: float = _default("shutdown_grace")
    journal_size: int = _default("journal_size")
    max_sequences: int = _default("max_sequences")
    admin_token: str | None = _default("admin_token")
    allowed_redirect_hosts: tuple[str, ...] = _default("allowed_redirect_hosts")
    upgrade_idle_timeout: float = _default("upgrade_idle_timeout")
    max_connections: int = _default("max_connections")
    header_timeout: float = _default("header_timeout")
    body_timeout: float = _default("body_timeout")
    log_format: str = _default("log_format")
    access_log: bool = _default("access_log")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def parse_values(raw: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """Parse named raw values; errors name where the value came from."""
    parsed: dict[str, Any] = {}
    for name, value in raw.items():
        option = OPTIONS_BY_NAME.get(name)
        if option is None:
            allowed = ", ".join(OPTIONS_BY_NAME)
            raise ValueError(f"{origin}: unknown setting {name!r}; allowed: {allowed}")
        try:
            parsed[name] = option.parse(value)
        except ValueError as exc:
            raise ValueError(f"{origin} {name}: {exc}") from None
    return parsed


def parse_one(option: Option, value: Any, origin: str) -> Any:
    """One flag or env value; the error names where it came from (``--port: bad port 'x': ...``)."""
    try:
        return option.parse(value)
    except ValueError as exc:
        raise ValueError(f"{origin}: {exc}") from None


def env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    return {o.name: parse_one(o, environ[o.env], o.env) for o in OPTIONS if o.env in environ and o.name != "config"}


def merge(*layers: Mapping[str, Any]) -> Settings:
    """Later layers win: pass default-file, config, env, flags in that order."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    return Settings(**merged)
