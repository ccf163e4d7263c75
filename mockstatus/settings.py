"""Server settings: one table that feeds the CLI flags, the env vars and the config file.

Every setting has a flag ``--name``, an env var ``MOCKSTATUS_NAME`` and a key
in the config file's ``server:`` section.  Precedence: flag > env > config
file > default.  Parsers raise ``ValueError`` with a one-line message; the CLI
turns it into exit code 2.  ``resolve`` is the one place that turns a config
file, the environment and given values into the ``Settings`` and ``Catalog``
a server runs with (the CLI and ``serve_in_thread`` both call it).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .durations import format_seconds, parse_duration

if TYPE_CHECKING:
    from .catalog import Catalog

ENV_PREFIX = "MOCKSTATUS_"


def _port(text: Any) -> int:
    try:
        port = int(str(text), 10)
    except ValueError:
        raise ValueError(f"bad port {text!r}: expected a whole number from 0 to 65535") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"bad port {text!r}: expected a whole number from 0 to 65535")
    return port


def _port_or_off(text: Any) -> int | None:
    """A port, or ``off`` (also empty) for none: a listener that is not started."""
    if text is None or str(text).strip().lower() in ("", "off"):
        return None
    try:
        return _port(text)
    except ValueError:
        raise ValueError(f"bad port {text!r}: expected off or a whole number from 0 to 65535") from None


def _scenario_ports(text: Any) -> int | None:
    """The first of the TLS lab's consecutive ports (0: a free port each), or ``off``."""
    from .tls import SCENARIOS  # the table only; certificates are made when served

    port = _port_or_off(text)
    last = 65535 - (len(SCENARIOS) - 1)
    if port is not None and port > last:
        raise ValueError(f"bad port {text!r}: the {len(SCENARIOS)} scenario ports must end by 65535, so at most {last}")
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
    return parse_duration(text, what="duration")


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


def _state(text: Any) -> str:
    """``memory``, or a Redis URL: ``redis://[:password@]host[:port][/db]`` (``rediss://`` for TLS)."""
    from urllib.parse import urlsplit

    raw = str(text).strip()
    if raw == "memory":
        return raw
    form = "expected memory or a URL redis://[:password@]host[:port][/db] (rediss:// for TLS)"
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValueError(f"bad state store {text!r}: {form}") from None
    db = parts.path.strip("/")
    if parts.scheme not in ("redis", "rediss") or not parts.hostname or not (db == "" or db.isdigit()):
        raise ValueError(f"bad state store {text!r}: {form}")
    import importlib.util

    if importlib.util.find_spec("redis") is None:
        raise ValueError(f"state store {parts.scheme}:// needs the redis package: pip install 'mockstatus[redis]'")
    return raw


def _ttl(text: Any) -> float:
    seconds = _seconds(text)
    if seconds < 1:
        raise ValueError(f"bad duration {text!r}: expected at least 1s")
    return seconds


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


def _token(text: Any) -> str:
    # An empty token is what CI gives when a secret is missing (a fork's pull
    # request): refusing it beats serving the journal to anyone unannounced.
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"bad admin token {text!r}: empty; give a token, or leave the setting unset for none")
    return text


def _hosts(text: Any) -> tuple[str, ...]:
    if isinstance(text, (list, tuple)):
        for item in text:
            if not isinstance(item, str):
                raise ValueError(f"bad host {_short(item)}: expected a host name as text")
        items = list(text)
    else:
        items = str(text).split(",")
    return tuple(item.strip().lower() for item in items if item.strip())


def _short(value: Any) -> str:
    """A value's repr for a message, cut: a config value can be megabytes long."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclasses.dataclass(frozen=True)
class Setting:
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

    @property
    def shown_default(self) -> str:
        """The default as it would be typed (``--help``): 300s, 1048576, off, none."""
        value = self.default
        if isinstance(value, bool):
            return "on" if value else "off"
        if value is None or value == ():
            return "none"
        if self.parse in (_seconds, _ttl):
            return format_seconds(value)
        return str(value)


SETTINGS: tuple[Setting, ...] = (
    Setting("host", _host, "127.0.0.1", "address to listen on; 0.0.0.0 to accept other machines"),
    Setting("port", _port, 8080, "port to listen on; 0 picks a free one"),
    Setting("config", _text, None, "YAML file that overlays the default catalog"),
    Setting("max_body_size", _size, 1024 * 1024, "largest request body read (bytes, 64k, 1m); above it: 413"),
    Setting("max_request_line", _limit_size, 8190, "longest request target (path and query) read; above it: 400"),
    Setting("max_header_size", _limit_size, 16384, "longest request header value read; above it: 400"),
    Setting("max_headers", _count, 128, "most request header fields read; above it: 400"),
    Setting("max_delay", _seconds, 300.0, "longest delay a request may ask for; above it: 400"),
    Setting("default_delay", _seconds, 0.0, "delay for codes the catalog gives none"),
    Setting("shutdown_grace", _seconds, 5.0, "on SIGTERM, how long in-flight replies may finish"),
    Setting("journal_size", _count, 1000, "how many requests the journal keeps"),
    Setting(
        "journal_max_bytes",
        _size,
        16 * 1024 * 1024,
        "most bytes of headers and bodies the journal keeps (oldest dropped)",
    ),
    Setting(
        "journal_secrets",
        _choice("redact", "keep"),
        "redact",
        "Authorization, Proxy-Authorization, Cookie, Set-Cookie in the journal: redact or keep",
    ),
    Setting("max_sequences", _count, 1000, "how many sequence names are kept (least recently used evicted)"),
    Setting(
        "max_buckets",
        _count,
        1000,
        "how many rate-limit buckets and outage windows are kept (least recently used evicted)",
    ),
    Setting(
        "admin_token", _token, None, "when set, /__mockstatus/* (but health) needs 'Authorization: Bearer <token>'"
    ),
    Setting(
        "allowed_redirect_hosts", _hosts, (), "comma list of hosts an absolute location= may point to (empty: any)"
    ),
    Setting(
        "allowed_hosts",
        _hosts,
        (),
        "comma list of Host names the admin routes answer besides loopback ones, when bound to loopback",
    ),
    Setting("upgrade_idle_timeout", _seconds, 30.0, "how long an upgraded (101) connection or WebSocket may stay idle"),
    Setting(
        "max_connections", _count_or_zero, 16384, "most connections open at once (0: no limit); above it: 503 and close"
    ),
    Setting(
        "header_timeout",
        _seconds,
        10.0,
        "time a client has to send a request's line and headers (0: off); then 408 and close",
    ),
    Setting(
        "body_timeout",
        _seconds,
        10.0,
        "time a request body may go without a byte arriving; then 408 (or 400 if broken) and close",
    ),
    Setting(
        "blackhole_port",
        _port,
        None,
        "also listen on this port and never accept: a connect there times out (0 picks a free one)",
    ),
    Setting("log_format", _choice("text", "json"), "text", "log line format: text or json"),
    Setting("access_log", _bool, False, "log every request (it costs speed)", "switch"),
    Setting(
        "strict_options",
        _bool,
        False,
        "answer 400 to every query parameter and X-Mockstatus-* header that is not an option",
        "switch",
    ),
    Setting("https_port", _port_or_off, None, "HTTPS port (0 picks a free one; off: no HTTPS)"),
    Setting("tls_hostnames", _hosts, (), "comma list of names the HTTPS certificate adds to localhost, 127.0.0.1, ::1"),
    Setting("tls_ca_cert", _text, None, "PEM CA certificate to sign with, instead of one generated at start"),
    Setting("tls_ca_key", _text, None, "PEM private key of --tls-ca-cert"),
    Setting(
        "tls_scenario_ports",
        _scenario_ports,
        None,
        "first port of the bad-TLS scenarios, one port each (0: free ports)",
    ),
    Setting(
        "state",
        _state,
        "memory",
        "where sequences and the journal live: memory, or redis://host:port/db shared by replicas",
    ),
    Setting("sequence_ttl", _ttl, 3600.0, "with a Redis state store, how long an idle sequence name is kept"),
)

SETTINGS_BY_NAME = {setting.name: setting for setting in SETTINGS}


def _default(name: str) -> Any:
    return SETTINGS_BY_NAME[name].default


@dataclasses.dataclass(frozen=True)
class Settings:
    """The settings a server runs with; defaults come from SETTINGS (one place)."""

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
    journal_max_bytes: int = _default("journal_max_bytes")
    journal_secrets: str = _default("journal_secrets")
    max_sequences: int = _default("max_sequences")
    max_buckets: int = _default("max_buckets")
    admin_token: str | None = _default("admin_token")
    allowed_redirect_hosts: tuple[str, ...] = _default("allowed_redirect_hosts")
    allowed_hosts: tuple[str, ...] = _default("allowed_hosts")
    upgrade_idle_timeout: float = _default("upgrade_idle_timeout")
    max_connections: int = _default("max_connections")
    header_timeout: float = _default("header_timeout")
    body_timeout: float = _default("body_timeout")
    blackhole_port: int | None = _default("blackhole_port")
    log_format: str = _default("log_format")
    access_log: bool = _default("access_log")
    strict_options: bool = _default("strict_options")
    https_port: int | None = _default("https_port")
    tls_hostnames: tuple[str, ...] = _default("tls_hostnames")
    tls_ca_cert: str | None = _default("tls_ca_cert")
    tls_ca_key: str | None = _default("tls_ca_key")
    tls_scenario_ports: int | None = _default("tls_scenario_ports")
    state: str = _default("state")
    sequence_ttl: float = _default("sequence_ttl")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def parse_values(raw: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """Parse named raw values; errors name where the value came from."""
    parsed: dict[str, Any] = {}
    for name, value in raw.items():
        setting = SETTINGS_BY_NAME.get(name)
        if setting is None:
            allowed = ", ".join(SETTINGS_BY_NAME)
            raise ValueError(f"{origin}: unknown setting {name!r}; allowed: {allowed}")
        # Types first, before any parser turns a value into text.
        if isinstance(value, (list, tuple)) and setting.parse is not _hosts or isinstance(value, Mapping):
            kind = "a mapping" if isinstance(value, Mapping) else "a list"
            raise ValueError(f"{origin} {name}: expected text or a number, got {kind}: {_short(value)}")
        try:
            parsed[name] = setting.parse(value)
        except ValueError as exc:
            raise ValueError(f"{origin} {name}: {exc}") from None
    return parsed


def parse_one(setting: Setting, value: Any, origin: str) -> Any:
    """One flag or env value; the error names where it came from (``--port: bad port 'x': ...``)."""
    try:
        return setting.parse(value)
    except ValueError as exc:
        raise ValueError(f"{origin}: {exc}") from None


def env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    return {o.name: parse_one(o, environ[o.env], o.env) for o in SETTINGS if o.env in environ and o.name != "config"}


Config = str | Path | Mapping[str, Any] | None  # a YAML path, or a dict in the file's layout


def load_config(config: Config = None) -> tuple[Catalog, dict[str, Any]]:
    """The catalog overlaid by ``config``, and the file's ``server:`` values parsed.

    Every problem, in ``codes:`` or ``server:``, is a one-line ``ConfigError``.
    """
    # Imported here, not at the top: ``mockstatus health`` reads the settings
    # table but never a config file, so it does not load YAML.
    from .catalog import ConfigError, load_catalog

    catalog = load_catalog(config)
    try:
        return catalog, parse_values(catalog.server, f"{catalog.sources[-1]}: server:")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def resolve(
    config: Config = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    base: Settings | None = None,
) -> tuple[Settings, Catalog]:
    """The settings and catalog one server runs with.

    Later wins: ``base`` (default: the table's defaults) < the config file's
    ``server:`` section < ``environ``'s ``MOCKSTATUS_*`` values < ``overrides``
    (values, not text: the CLI's flags once parsed, ``serve_in_thread``'s
    keyword arguments).  Then every delay the server is configured with must
    obey ``--max-delay``.
    """
    from .catalog import check_delays

    from_env = env_values(environ) if environ is not None else {}
    catalog, from_file = load_config(config)
    settings = (base or Settings()).replace(**{**from_file, **from_env, **(overrides or {})})
    check_delays(catalog, settings.max_delay, settings.default_delay)
    return settings, catalog


def connect_host(host: str) -> str:
    """The address that reaches a server listening on ``host``, bare.

    A wildcard address (0.0.0.0, ::) is reached on loopback.
    """
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def url_host(host: str) -> str:
    """The host part of a URL that reaches a server listening on ``host``:
    an IPv6 address goes in brackets (RFC 3986 §3.2.2)."""
    host = connect_host(host)
    return f"[{host}]" if ":" in host else host


def server_url(host: str, port: int | str, scheme: str = "http") -> str:
    return f"{scheme}://{url_host(host)}:{port}"
