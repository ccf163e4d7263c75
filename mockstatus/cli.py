"""The ``mockstatus`` command: serve, codes, check-config, health, ca, client-cert.

Bad flags, env values and config files print one line and exit 2 (no
traceback).  ``health`` uses the standard library only, so a container
healthcheck needs no curl.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

from . import __version__
from .dependencies import aiohttp_problem
from .durations import parse_duration
from .options import check_catalog_redirects
from .settings import ENV_PREFIX, SETTINGS, load_config, parse_one, resolve, server_url


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    # The commands come first in `mockstatus --help`; the serve flags (also
    # taken without a command) after them, each with its default and env var.
    parser = _Parser(
        prog="mockstatus",
        usage="mockstatus [COMMAND] [options]",
        description="A mock HTTP status server that gets the wire right.",
        epilog="Without a command, mockstatus serves. 'mockstatus COMMAND --help' shows a command's options.",
        add_help=False,
    )
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND", prog="mockstatus")
    general = parser.add_argument_group("options")
    general.add_argument("-h", "--help", action="help", help="show this help and exit")
    general.add_argument("--version", action="version", version=f"mockstatus {__version__}")

    serve = commands.add_parser("serve", help="run the server (the default)")
    _add_serve_flags(serve)

    codes = commands.add_parser("codes", help="print the catalog as a table")
    codes.add_argument("--json", action="store_true", help="print JSON instead")
    codes.add_argument("--config", help="overlay this YAML file (env MOCKSTATUS_CONFIG)")

    check = commands.add_parser("check-config", help="validate a config file: exit 0 or 2")
    check.add_argument("path")

    health = commands.add_parser("health", help="exit 0 when the server answers its health check, 1 otherwise")
    health.add_argument(
        "url", nargs="?", help="server URL (default http://$MOCKSTATUS_HOST:$MOCKSTATUS_PORT, else 127.0.0.1:8080)"
    )
    health.add_argument("--timeout", type=_timeout, default=2.0, help="how long to wait: 500ms, 2s, 1m (default 2s)")
    health.add_argument(
        "--wait",
        type=_timeout,
        default=None,
        help="keep asking until healthy or this is over: 10s (default: ask once); for a server just started",
    )

    ca = commands.add_parser(
        "ca",
        help="write the CA certificate: the one --tls-ca-cert names, or a new CA (certificate and key) with --out",
    )
    ca.add_argument("--out", help="file for the certificate (a new CA's key goes beside it as NAME-key.pem)")
    _add_ca_flags(ca)

    client = commands.add_parser(
        "client-cert", help="write a client certificate and key signed by the CA (for client-cert-required)"
    )
    client.add_argument("--out", required=True, help="directory for client.pem and client-key.pem")
    _add_ca_flags(client)

    _add_serve_flags(parser.add_argument_group("serve options (also 'mockstatus serve --help')"))
    return parser


def _timeout(text: str) -> float:
    try:
        seconds = parse_duration(text, what="timeout")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"bad timeout {text!r}: expected more than 0, such as 2s")
    return seconds


def _add_ca_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tls-ca-cert", help="PEM CA certificate (env MOCKSTATUS_TLS_CA_CERT)")
    parser.add_argument("--tls-ca-key", help="PEM private key of the CA (env MOCKSTATUS_TLS_CA_KEY)")


def _ca_files(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    return (
        args.tls_ca_cert or environ.get(ENV_PREFIX + "TLS_CA_CERT") or None,
        args.tls_ca_key or environ.get(ENV_PREFIX + "TLS_CA_KEY") or None,
    )


def cmd_ca(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from pathlib import Path

    from .certs import Authority, authority, write_private

    cert, key = _ca_files(args, environ)
    if cert or key:
        ca = authority(cert, key)
        if not args.out:
            sys.stdout.write(ca.pem.decode("ascii"))
            return 0
        Path(args.out).write_bytes(ca.pem)
        print(f"wrote {args.out}")
        return 0
    if not args.out:
        raise UsageError(
            "no CA to print: give --tls-ca-cert and --tls-ca-key (a generated CA lives only as long as its server, "
            "fetch it from /__mockstatus/ca.pem), or --out FILE to create a CA to share"
        )
    ca = Authority.generate()  # a new one each time, never the process's cached CA
    out = Path(args.out)
    key_path = out.with_name(out.stem + "-key.pem")
    out.write_bytes(ca.pem)
    write_private(key_path, ca.key_pem)
    print(f"wrote {out} and {key_path}; serve with: --tls-ca-cert {out} --tls-ca-key {key_path}")
    return 0


def cmd_client_cert(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    from pathlib import Path

    from .certs import authority, write_private

    cert, key = _ca_files(args, environ)
    if not (cert and key):
        raise UsageError(
            "client-cert needs the CA the server uses: give --tls-ca-cert and --tls-ca-key "
            "(create one with 'mockstatus ca --out ca.pem')"
        )
    issued = authority(cert, key).issue(["mockstatus client"], client=True)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {args.out}: {exc.strerror or exc}") from None
    (out / "client.pem").write_bytes(issued.cert_pem)
    write_private(out / "client-key.pem", issued.key_pem)
    print(f"wrote {out / 'client.pem'} and {out / 'client-key.pem'}")
    return 0


def _add_serve_flags(parser: argparse.ArgumentParser) -> None:
    for setting in SETTINGS:
        shown = f" (default {setting.shown_default}; env {setting.env})"
        if setting.flag_kind == "switch":
            parser.add_argument(
                setting.flag, dest=setting.name, action=argparse.BooleanOptionalAction, default=None,
                help=setting.help + shown,
            )  # fmt: skip
        else:
            parser.add_argument(setting.flag, dest=setting.name, default=None, help=setting.help + shown)


def resolve_settings(args: argparse.Namespace, environ: Mapping[str, str]):
    """The flags given, parsed, on top of env, the config file and the defaults (``settings.resolve``)."""
    given = [s for s in SETTINGS if getattr(args, s.name, None) is not None]
    flag_values = {s.name: parse_one(s, getattr(args, s.name), s.flag) for s in given}
    config_path = flag_values.get("config") or environ.get(ENV_PREFIX + "CONFIG") or None
    settings, catalog = resolve(config_path, environ=environ, overrides={**flag_values, "config": config_path})
    check_catalog_redirects(catalog, settings)
    return settings, catalog


def cmd_codes(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    catalog, _ = load_config(args.config or environ.get(ENV_PREFIX + "CONFIG") or None)
    if args.json:
        print(json.dumps([info.as_json() for info in catalog], ensure_ascii=False, indent=1))
        return 0
    print(f"{'code':<5}{'reason':<34}{'kind':<11}{'standard':<10}source")
    for info in catalog:
        label = "yes" if info.standard else "no"
        print(f"{info.code:<5}{info.reason:<34}{info.kind:<11}{label:<10}{info.source}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    catalog, _ = load_config(args.path)
    print(f"{args.path}: ok ({len(catalog)} codes)")
    return 0


def health_url(url: str | None, environ: Mapping[str, str]) -> str:
    if not url:
        url = server_url(environ.get(ENV_PREFIX + "HOST", "127.0.0.1"), environ.get(ENV_PREFIX + "PORT", "8080"))
    url = url.rstrip("/")
    if not url.endswith("/__mockstatus/health"):
        url += "/__mockstatus/health"
    return url


def cmd_health(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    url = health_url(args.url, environ)
    if args.wait is None:
        return _ask_health(url, args.timeout, quiet=False)
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        if _ask_health(url, min(args.timeout, max(deadline - time.monotonic(), 0.01)), quiet=True) == 0:
            print(f"healthy: {url}")
            return 0
        time.sleep(HEALTH_POLL)
    return _ask_health(url, args.timeout, quiet=False)


HEALTH_POLL = 0.1  # seconds between health checks with --wait


def _ask_health(url: str, timeout: float, *, quiet: bool) -> int:
    try:
        # Never via a proxy: Docker copies the client's HTTP(S)_PROXY into containers,
        # and a proxy cannot reach the container's own 127.0.0.1.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=timeout) as response:  # noqa: S310 - a URL the user gave
            healthy = response.status == 200 and json.loads(response.read()).get("status") == "ok"
    except (OSError, ValueError, urllib.error.URLError) as exc:
        if not quiet:
            print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if not quiet:
        print(f"healthy: {url}" if healthy else f"unhealthy: {url}")
    return 0 if healthy else 1


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    from .catalog import ConfigError

    environ = os.environ if environ is None else environ
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "codes":
            return cmd_codes(args, environ)
        if args.command == "check-config":
            return cmd_check_config(args)
        if args.command == "health":
            return cmd_health(args, environ)
        if args.command == "ca":
            return cmd_ca(args, environ)
        if args.command == "client-cert":
            return cmd_client_cert(args, environ)
        settings, catalog = resolve_settings(args, environ)
        problem = aiohttp_problem()
        if problem is not None:
            raise UsageError(problem)
        if settings.https_port is not None or settings.tls_scenario_ports is not None:
            from .certs import material_for

            material_for(settings)  # a CA that cannot be loaded: one line, exit 2
    except (UsageError, ConfigError, ValueError) as exc:
        print(f"mockstatus: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `mockstatus codes | head`
        return 0
    except OSError as exc:  # ca/client-cert: a file that cannot be written
        print(f"mockstatus: error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    from .runner import run

    try:
        return run(settings, catalog)
    except OSError as exc:
        print(
            f"mockstatus: error: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 0


__all__ = ["main"]
