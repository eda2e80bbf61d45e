"""A throwaway certificate authority for TLS tests, built with `cryptography`."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("localhost", "127.0.0.1")
WRONG_HOST = "wrong.example"

# Certificates start an hour in the past so clock skew between the test and
# OpenSSL in redis-server never makes a fresh certificate "not yet valid".
_BACKDATE = dt.timedelta(hours=1)
_DEFAULT_LIFETIME = dt.timedelta(days=365)


@dataclass(frozen=True)
class CertPair:
    """PEM files of a leaf certificate, its key, and the CA that signed it."""

    cert_file: Path
    key_file: Path
    ca_file: Path

    def load_cert(self) -> x509.Certificate:
        """Parse the leaf certificate."""
        return x509.load_pem_x509_certificate(self.cert_file.read_bytes())

    @property
    def not_after(self) -> dt.datetime:
        """The leaf certificate's notAfter, timezone-aware UTC."""
        return self.load_cert().not_valid_after_utc


@dataclass(frozen=True)
class CertAuthority:
    """A self-signed CA whose key is kept in memory to issue leaf certificates."""

    name: str
    cert_file: Path
    key_file: Path
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def issue(
        self,
        name: str,
        directory: Path,
        *,
        hosts: tuple[str, ...] = DEFAULT_HOSTS,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        client: bool = False,
    ) -> CertPair:
        """Issue a server (or, with `client`, a client) certificate for `hosts`."""
        now = dt.datetime.now(dt.UTC)
        start = not_before if not_before is not None else now - _BACKDATE
        end = not_after if not_after is not None else now + _DEFAULT_LIFETIME
        key = ec.generate_private_key(ec.SECP256R1())
        usage = (
            ExtendedKeyUsageOID.CLIENT_AUTH
            if client
            else ExtendedKeyUsageOID.SERVER_AUTH
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(
                x509.BasicConstraints(ca=False, path_length=None), critical=True
            )
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    self.key.public_key()
                ),
                critical=False,
            )
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(host) for host in hosts]),
                critical=False,
            )
        cert = builder.sign(self.key, hashes.SHA256())
        directory.mkdir(parents=True, exist_ok=True)
        cert_file = directory / f"{name}.crt"
        key_file = directory / f"{name}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_file, key)
        return CertPair(cert_file=cert_file, key_file=key_file, ca_file=self.cert_file)


@dataclass(frozen=True)
class TlsCertSet:
    """Every certificate the TLS tests need, issued once per session."""

    ca: CertAuthority
    untrusted_ca: CertAuthority
    server: CertPair
    client: CertPair
    expiring_soon: CertPair
    expired: CertPair
    wrong_host: CertPair
    untrusted: CertPair


def make_ca(directory: Path, name: str = "ld-store-monitor test CA") -> CertAuthority:
    """Create a self-signed CA and write its certificate and key into `directory`."""
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    stem = name.lower().replace(" ", "-")
    cert_file = directory / f"{stem}.crt"
    key_file = directory / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key_file, key)
    return CertAuthority(
        name=name, cert_file=cert_file, key_file=key_file, cert=cert, key=key
    )


def make_cert_set(directory: Path) -> TlsCertSet:
    """Create a trusted CA, an unrelated CA, and the leaf certificates tests use."""
    ca = make_ca(directory / "ca")
    untrusted_ca = make_ca(directory / "untrusted-ca", name="unrelated test CA")
    now = dt.datetime.now(dt.UTC)
    leaves = directory / "leaves"
    return TlsCertSet(
        ca=ca,
        untrusted_ca=untrusted_ca,
        server=ca.issue("server", leaves),
        client=ca.issue("client", leaves, hosts=(), client=True),
        expiring_soon=ca.issue(
            "expiring-soon", leaves, not_after=now + dt.timedelta(days=3)
        ),
        expired=ca.issue(
            "expired",
            leaves,
            not_before=now - dt.timedelta(days=30),
            not_after=now - dt.timedelta(days=1),
        ),
        wrong_host=ca.issue("wrong-host", leaves, hosts=(WRONG_HOST,)),
        untrusted=untrusted_ca.issue("untrusted", leaves),
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.touch(mode=0o600)
    path.write_bytes(pem)
