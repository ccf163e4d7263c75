"""The bad-TLS lab's table: each scenario, its order, and what a client should see.

Kept apart from ``certs.py`` (which needs ``cryptography``) so that the
settings, the admin API and the app import it at no cost; the certificates are
made only when HTTPS is served.
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

SCENARIO_DOMAIN = "localhost"  # a scenario is asked for by the SNI name <scenario>.localhost
WRONG_HOST = "wrong-host.invalid"  # RFC 6761 §6.4: a name that never resolves to anyone


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    what: str  # what a client should see (served at /__mockstatus/tls)
    handshake: str = "tls"  # "tls" (a certificate problem or a setting), "alert" or "stall"


# The documented order: --tls-scenario-ports N gives the first N, the next N+1, ...
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("expired", "certificate verify failed: certificate has expired"),
    Scenario("not-yet-valid", "certificate verify failed: certificate is not yet valid"),
    Scenario("wrong-host", f"certificate verify failed: Hostname mismatch (the leaf names only {WRONG_HOST})"),
    Scenario("self-signed", "certificate verify failed: self-signed certificate"),
    Scenario("untrusted-root", "certificate verify failed: self-signed certificate in certificate chain"),
    Scenario("incomplete-chain", "certificate verify failed: unable to get local issuer certificate"),
    Scenario("weak-key", "certificate verify failed: EE certificate key too weak (RSA 1024)"),
    Scenario(
        "client-cert-required",
        "without a client certificate signed by the CA: alert certificate required (TLS 1.3, on the first read)",
    ),
    Scenario("tls1.2-only", "TLS 1.2 only: a client that requires TLS 1.3 fails with alert protocol version"),
    Scenario("tls1.3-only", "TLS 1.3 only: a client capped at TLS 1.2 fails with alert protocol version"),
    Scenario("handshake-alert", "the ClientHello is answered with a fatal handshake_failure alert", "alert"),
    Scenario("handshake-stall", "TCP is accepted, the ClientHello never answered: a handshake timeout", "stall"),
)
SCENARIOS_BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}

# A TLS record (RFC 8446 §5.1, §6): content type alert (21), legacy version 3.3,
# length 2, level fatal (2), description handshake_failure (40).
HANDSHAKE_FAILURE_ALERT = b"\x15\x03\x03\x00\x02\x02\x28"
# The same with description protocol_version (70), for a client offering no version in common.
PROTOCOL_VERSION_ALERT = b"\x15\x03\x03\x00\x02\x02\x46"


def scenario_of(server_name: str | None) -> Scenario | None:
    """The scenario an SNI name asks for (``expired.localhost``, ``tls1.2-only.localhost``), if any."""
    if not server_name:
        return None
    name = server_name.lower().rstrip(".")
    suffix = "." + SCENARIO_DOMAIN
    return SCENARIOS_BY_NAME.get(name[: -len(suffix)]) if name.endswith(suffix) else None


class Serving:
    """What one server serves over TLS, for the admin API: set when its listeners start."""

    def __init__(self) -> None:
        self.ca_pem: bytes | None = None
        self.https_port: int | None = None
        self.scenario_ports: dict[str, int] = {}


SERVING = web.AppKey("mockstatus.tls", Serving)
