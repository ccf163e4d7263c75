"""HTTPS certificates: the certificate authority, the leaves, the bad-TLS lab's broken ones.

Certificates are made with ``cryptography`` (the library ``trustme`` itself
wraps): it builds exactly the broken certificates the lab needs (dates in the
past or future, a leaf signed by itself or by an intermediate that is never
sent, a 1024-bit RSA key) and loads a CA a user brings.  Keys are ECDSA P-256
(a few milliseconds each) except the weak-key leaf's.  Nothing here is
imported until HTTPS is asked for, so a plain-HTTP server pays nothing.

A generated CA lives as long as the process (``authority``), so every server
in it, and the pytest plugin's ``ca_bundle``, trust the same one.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .tls import SCENARIO_DOMAIN, WRONG_HOST

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
DAY = datetime.timedelta(days=1)
LEAF_LIFETIME = datetime.timedelta(days=825)  # the longest a public leaf was allowed (CA/B Forum)


class TLSError(ValueError):
    """A CA that cannot be loaded; one line, naming the file."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mockstatus"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _alt_names(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def _new_key():
    return ec.generate_private_key(ec.SECP256R1())


@dataclasses.dataclass(frozen=True)
class Issued:
    """A certificate, its key, and the certificates a server sends after it."""

    cert: x509.Certificate
    key: object
    chain: tuple[x509.Certificate, ...] = ()

    @property
    def cert_pem(self) -> bytes:
        return _pem(self.cert)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)

    def chain_pem(self) -> bytes:
        return self.cert_pem + b"".join(_pem(c) for c in self.chain)


def _sign(
    subject: x509.Name,
    public_key,
    issuer: x509.Name,
    issuer_key,
    *,
    ca: bool,
    names: Iterable[str] = (),
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    client: bool = False,
) -> x509.Certificate:
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - DAY)
        .not_valid_after(not_after or now + (10 * 365 * DAY if ca else LEAF_LIFETIME))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
    else:
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        alt = _alt_names(names)
        if alt:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    if issuer_key is not None and issuer != subject:
        issuer_public = issuer_key.public_key()
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


class Authority:
    """A certificate authority: signs the leaves (and the client certificate)."""

    def __init__(self, cert: x509.Certificate, key) -> None:
        self.cert = cert
        self.key = key

    @classmethod
    def generate(cls, common_name: str = "mockstatus test CA") -> Authority:
        key = _new_key()
        name = _name(common_name)
        return cls(_sign(name, key.public_key(), name, key, ca=True), key)

    @classmethod
    def load(cls, cert_path: str, key_path: str) -> Authority:
        try:
            cert_bytes = Path(cert_path).read_bytes()
        except OSError as exc:
            raise TLSError(f"--tls-ca-cert {cert_path}: {exc.strerror or exc}") from None
        try:
            key_bytes = Path(key_path).read_bytes()
        except OSError as exc:
            raise TLSError(f"--tls-ca-key {key_path}: {exc.strerror or exc}") from None
        try:
            cert = x509.load_pem_x509_certificate(cert_bytes)
        except ValueError:
            raise TLSError(f"--tls-ca-cert {cert_path}: not a PEM certificate") from None
        try:
            key = serialization.load_pem_private_key(key_bytes, password=None)
        except (ValueError, TypeError):
            raise TLSError(f"--tls-ca-key {key_path}: not an unencrypted PEM private key") from None
        if _spki(cert.public_key()) != _spki(key.public_key()):
            raise TLSError(f"--tls-ca-key {key_path}: not the key of the certificate in {cert_path}")
        try:
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.ca:
            raise TLSError(f"--tls-ca-cert {cert_path}: not a CA certificate (basicConstraints CA:TRUE)")
        return cls(cert, key)

    @property
    def pem(self) -> bytes:
        return _pem(self.cert)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)

    def issue(self, names: Iterable[str], *, client: bool = False, key=None, **dates) -> Issued:
        names = list(names)
        key = key or _new_key()
        cert = _sign(
            _name(names[0] if names else "mockstatus client"), key.public_key(), self.cert.subject, self.key,
            ca=False, names=names, client=client, **dates,
        )  # fmt: skip
        return Issued(cert, key)

    def child(self, common_name: str) -> Authority:
        """An intermediate CA signed by this one."""
        key = _new_key()
        return Authority(_sign(_name(common_name), key.public_key(), self.cert.subject, self.key, ca=True), key)


@functools.cache
def authority(cert_path: str | None = None, key_path: str | None = None) -> Authority:
    """The CA: loaded from files, or generated once per process."""
    if cert_path or key_path:
        if not (cert_path and key_path):
            raise TLSError("--tls-ca-cert and --tls-ca-key go together: give both, or neither for a generated CA")
        return Authority.load(cert_path, key_path)
    return Authority.generate()


def _context(issued: Issued, *, weak: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if weak:
        # OpenSSL's default security level refuses to load a 1024-bit RSA key
        # even on the server; level 0 lets us serve it so the client refuses it.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    # HTTP/1.1 only: the wire-level kinds are HTTP/1.1 (RFC 7301 ALPN).
    context.set_alpn_protocols(["http/1.1"])
    # load_cert_chain reads files only; the file lives for the call.
    with tempfile.NamedTemporaryFile(suffix=".pem") as file:
        file.write(issued.chain_pem() + issued.key_pem)
        file.flush()
        context.load_cert_chain(file.name)
    return context


class Material:
    """Every certificate and server context one set of settings needs."""

    def __init__(self, ca: Authority, hostnames: tuple[str, ...]) -> None:
        self.ca = ca
        self.names = tuple(dict.fromkeys((*LOOPBACK_NAMES, *hostnames)))
        self.valid = _context(ca.issue(self.names))
        self._scenarios: dict[str, ssl.SSLContext] = {}
        self._client: Issued | None = None

    @property
    def ca_pem(self) -> bytes:
        return self.ca.pem

    def client_cert(self) -> Issued:
        """A client certificate signed by the CA (for client-cert-required)."""
        if self._client is None:
            self._client = self.ca.issue(["mockstatus client"], client=True)
        return self._client

    def context(self, scenario: str) -> ssl.SSLContext:
        """The server context for a certificate or settings scenario, built on first use."""
        context = self._scenarios.get(scenario)
        if context is None:
            context = self._scenarios[scenario] = self._build(scenario)
        return context

    def _build(self, scenario: str) -> ssl.SSLContext:
        # Each leaf names <scenario>.localhost besides the server's own names, so
        # that by SNI or on the scenario's own port the one thing wrong is the
        # thing the scenario is named for.
        names = (f"{scenario}.{SCENARIO_DOMAIN}", *self.names)
        now = _now()
        ca = self.ca
        if scenario == "expired":
            return _context(ca.issue(names, not_before=now - 60 * DAY, not_after=now - DAY))
        if scenario == "not-yet-valid":
            return _context(ca.issue(names, not_before=now + 30 * DAY, not_after=now + 90 * DAY))
        if scenario == "wrong-host":
            return _context(ca.issue([WRONG_HOST]))
        if scenario == "self-signed":
            key = _new_key()
            subject = _name(names[0])
            cert = _sign(subject, key.public_key(), subject, key, ca=False, names=names)
            return _context(Issued(cert, key))
        if scenario == "untrusted-root":
            root = Authority.generate("mockstatus untrusted root (not the served CA)")
            leaf = root.issue(names)
            return _context(Issued(leaf.cert, leaf.key, (root.cert,)))
        if scenario == "incomplete-chain":
            # The leaf's issuer is an intermediate the server never sends.
            return _context(ca.child("mockstatus intermediate (never sent)").issue(names))
        if scenario == "weak-key":
            return _context(ca.issue(names, key=rsa.generate_private_key(65537, 1024)), weak=True)
        context = _context(ca.issue(names))
        if scenario == "client-cert-required":
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=ca.pem.decode("ascii"))
        elif scenario == "tls1.2-only":
            context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
        elif scenario == "tls1.3-only":
            context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_3
        else:
            raise KeyError(scenario)
        return context


@functools.cache
def material(ca_cert: str | None = None, ca_key: str | None = None, hostnames: tuple[str, ...] = ()) -> Material:
    """The material for these settings, made once per process."""
    return Material(authority(ca_cert, ca_key), hostnames)


def material_for(settings) -> Material:
    return material(settings.tls_ca_cert, settings.tls_ca_key, tuple(settings.tls_hostnames))


@functools.cache
def _file_for(pem: bytes, suffix: str = ".pem") -> str:
    handle, path = tempfile.mkstemp(prefix="mockstatus-", suffix=suffix)
    with os.fdopen(handle, "wb") as file:
        file.write(pem)
    import atexit

    atexit.register(lambda: Path(path).unlink(missing_ok=True))
    return path


def pem_file(pem: bytes) -> str:
    """A file holding ``pem`` for as long as the process runs (for clients that want a path)."""
    return _file_for(pem)


def client_context(ca_pem: bytes) -> ssl.SSLContext:
    """An ``ssl.SSLContext`` for a client that trusts the CA (and only it)."""
    context = ssl.create_default_context(cadata=ca_pem.decode("ascii"))
    return context


def write_private(path: Path, data: bytes) -> None:
    """A key file only its owner reads."""
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(handle, "wb") as file:
        file.write(data)
