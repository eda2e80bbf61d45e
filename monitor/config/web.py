"""The web configuration file: TLS and basic auth of the HTTP endpoints.

The format is the Prometheus exporter-toolkit's (`--web.config.file` of
node_exporter and the other official exporters), so that one file serves
them all unchanged:

    tls_server_config:
      cert_file: server.crt        # relative to this file's folder
      key_file: server.key
      client_auth_type: RequireAndVerifyClientCert
      client_ca_file: ca.crt
      min_version: TLS12
    http_server_config:
      headers: {Strict-Transport-Security: max-age=31536000}
    basic_auth_users:
      prometheus: $2b$12$...       # bcrypt hash

`load_web_config` reads, validates and builds the TLS context at once, so a
file that cannot be served (bad YAML, an unknown key, a missing or
mismatched certificate, a malformed hash) is a `ConfigError`, at start and on
reload alike. What Python's TLS cannot do as Go's does (cipher suite and
curve lists, requesting a certificate without checking it) is reported in
`WebSettings.warnings`, never silently weakened.
"""

from __future__ import annotations

import re
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator

from monitor.config.load import ConfigError, read_yaml
from monitor.config.models import Config, Model

ClientAuthType = Literal[
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
]
TlsVersionName = Literal["TLS10", "TLS11", "TLS12", "TLS13"]

_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
# bcrypt's modular crypt format, as Go's x/crypto/bcrypt and Python's bcrypt read it.
_BCRYPT = re.compile(r"^\$2[aby]?\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$")
# The headers exporter-toolkit allows, with the values it allows (None: any).
ALLOWED_HEADERS: Mapping[str, frozenset[str] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": frozenset({"nosniff"}),
    "X-Frame-Options": frozenset({"deny", "sameorigin"}),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}


class TlsServerConfig(Model):
    """`tls_server_config`: the server certificate and what clients must show."""

    cert: str | None = None
    cert_file: Path | None = None
    key: SecretStr | None = None
    key_file: Path | None = None
    client_auth_type: ClientAuthType = "NoClientCert"
    client_ca_file: Path | None = None
    client_allowed_sans: tuple[str, ...] = ()
    min_version: TlsVersionName = "TLS12"
    max_version: TlsVersionName = "TLS13"
    cipher_suites: tuple[str, ...] = ()
    prefer_server_cipher_suites: bool = True
    curve_preferences: tuple[str, ...] = ()


class HttpServerConfig(Model):
    """`http_server_config`: extra response headers (`http2` is accepted, unused)."""

    http2: bool = True
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if name not in ALLOWED_HEADERS:
                allowed = ", ".join(ALLOWED_HEADERS)
                raise ValueError(f"header {name!r} is not allowed (allowed: {allowed})")
            values = ALLOWED_HEADERS[name]
            if values is not None and value not in values:
                raise ValueError(
                    f"header {name}: value {value!r} is not one of "
                    + ", ".join(sorted(values))
                )
        return headers


class WebConfig(Model):
    """The whole web configuration file."""

    tls_server_config: TlsServerConfig | None = None
    http_server_config: HttpServerConfig = HttpServerConfig()
    basic_auth_users: dict[str, SecretStr] = Field(default_factory=dict)

    @field_validator("basic_auth_users")
    @classmethod
    def _check_hashes(cls, users: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for user, hashed in users.items():
            if not _BCRYPT.match(hashed.get_secret_value()):
                # The hash itself is never echoed: it is the user's secret too.
                raise ValueError(f"user {user!r}: the password is not a bcrypt hash")
            if ":" in user:
                raise ValueError(f"user {user!r}: a user name cannot hold ':'")
        return users


@dataclass(frozen=True, eq=False)
class WebSettings:
    """A loaded web configuration, ready to serve: the TLS context is built."""

    path: Path
    config: WebConfig
    ssl_context: ssl.SSLContext | None
    # Files the settings were read from (this file, certificates, CAs): a
    # change to any of them reloads the configuration.
    files: tuple[Path, ...]
    warnings: tuple[str, ...] = ()
    users: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def headers(self) -> Mapping[str, str]:
        """Headers added to every response."""
        return self.config.http_server_config.headers

    @property
    def allowed_sans(self) -> frozenset[str]:
        """Client certificate SANs accepted (empty: any verified certificate)."""
        tls = self.config.tls_server_config
        return frozenset(tls.client_allowed_sans) if tls else frozenset()


def web_settings(config: Config, override: Path | None = None) -> WebSettings | None:
    """The web config in force: `override` (--web.config.file), else
    `server.web_config_file`, else none (plain HTTP, no authentication)."""
    path = override or config.server.web_config_file
    return load_web_config(path) if path is not None else None


def load_web_config(path: Path) -> WebSettings:
    """Read and check the web configuration file at `path`, and build its TLS context.

    Relative file names inside it are relative to its folder, as
    exporter-toolkit reads them. Raises `ConfigError` whose problems are
    `FILE: field.path: message`.
    """
    where = str(path)
    raw = read_yaml(path, prefix=f"{where}: ")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{where}: expected a mapping, got {type(raw).__name__}"])
    try:
        config = WebConfig.model_validate(raw)
    except ValidationError as err:
        problems = [
            f"{where}: {'.'.join(str(p) for p in e['loc']) or '(top level)'}: "
            + e["msg"].removeprefix("Value error, ")
            for e in err.errors(include_url=False)
        ]
        raise ConfigError(problems) from None
    base = path.parent
    files: list[Path] = [path]
    warnings: list[str] = []
    context = None
    if _tls_wanted(config.tls_server_config):
        assert config.tls_server_config is not None  # noqa: S101 -- _tls_wanted
        try:
            context = _server_context(config.tls_server_config, base, files, warnings)
        except ValueError as err:
            raise ConfigError([f"{where}: tls_server_config: {err}"]) from None
    users = {
        user: hashed.get_secret_value().encode("ascii")
        for user, hashed in config.basic_auth_users.items()
    }
    return WebSettings(
        path=path,
        config=config,
        ssl_context=context,
        files=tuple(dict.fromkeys(files)),
        warnings=tuple(warnings),
        users=users,
    )


def _tls_wanted(tls: TlsServerConfig | None) -> bool:
    """As exporter-toolkit: a section without certificate, key or client
    settings leaves TLS off."""
    if tls is None:
        return False
    return bool(
        tls.cert
        or tls.cert_file
        or tls.key
        or tls.key_file
        or tls.client_ca_file
        or tls.client_auth_type != "NoClientCert"
    )


def _server_context(
    tls: TlsServerConfig, base: Path, files: list[Path], warnings: list[str]
) -> ssl.SSLContext:
    """The server's TLS context from `tls`; ValueError on anything unusable."""
    if (tls.cert is None) == (tls.cert_file is None):
        raise ValueError("give exactly one of cert and cert_file")
    if (tls.key is None) == (tls.key_file is None):
        raise ValueError("give exactly one of key and key_file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _TLS_VERSIONS[tls.min_version]
    context.maximum_version = _TLS_VERSIONS[tls.max_version]
    if context.minimum_version > context.maximum_version:
        raise ValueError("min_version is newer than max_version")
    cert_file = _readable(base, tls.cert_file, "cert_file", files)
    key_file = _readable(base, tls.key_file, "key_file", files)
    _load_chain(context, tls, cert_file, key_file)
    auth = tls.client_auth_type
    ca_file = _readable(base, tls.client_ca_file, "client_ca_file", files)
    if ca_file is not None and auth == "NoClientCert":
        # As exporter-toolkit: a CA without a policy is a mistake, not a no-op.
        raise ValueError("client_ca_file is set but client_auth_type is NoClientCert")
    if auth == "RequestClientCert":
        # Go asks for a certificate and never checks it, so none is enforced
        # either way; Python's TLS cannot ask without checking.
        warnings.append(
            "client_auth_type RequestClientCert is served as NoClientCert "
            "(the certificate would not be checked either way)"
        )
        auth = "NoClientCert"
    elif auth == "RequireAnyClientCert":
        if ca_file is None:
            raise ValueError(
                "client_auth_type RequireAnyClientCert needs client_ca_file here: "
                "an unverified client certificate cannot be accepted; use "
                "RequireAndVerifyClientCert with client_ca_file"
            )
        warnings.append(
            "client_auth_type RequireAnyClientCert is served as "
            "RequireAndVerifyClientCert (certificates are checked against "
            "client_ca_file)"
        )
        auth = "RequireAndVerifyClientCert"
    if auth != "NoClientCert":
        context.verify_mode = (
            ssl.CERT_REQUIRED
            if auth == "RequireAndVerifyClientCert"
            else ssl.CERT_OPTIONAL
        )
        try:
            if ca_file is None:
                context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
            else:
                context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as err:
            raise ValueError(f"client_ca_file: cannot load {ca_file}: {err}") from None
    elif tls.client_allowed_sans:
        raise ValueError("client_allowed_sans needs a client_auth_type that verifies")
    if tls.cipher_suites:
        warnings.append(
            "cipher_suites is ignored: OpenSSL's defaults apply (Go's suite "
            "names do not map onto them, and TLS 1.3 suites are fixed)"
        )
    if tls.curve_preferences:
        warnings.append("curve_preferences is ignored: OpenSSL's defaults apply")
    return context


def _readable(
    base: Path, name: Path | None, field_name: str, files: list[Path]
) -> Path | None:
    if name is None:
        return None
    path = (base / name).expanduser()
    if not path.is_file():
        raise ValueError(f"{field_name}: no readable file at {path}")
    files.append(path)
    return path


def _load_chain(
    context: ssl.SSLContext,
    tls: TlsServerConfig,
    cert_file: Path | None,
    key_file: Path | None,
) -> None:
    """Load the certificate and key, from files or inline PEM (through a private
    temporary folder that is removed at once: `ssl` reads only files)."""
    with tempfile.TemporaryDirectory(prefix="ldmon-tls-") as scratch:
        if cert_file is None:
            assert tls.cert is not None  # noqa: S101 -- checked by the caller
            cert_file = Path(scratch) / "cert.pem"
            cert_file.write_text(tls.cert, encoding="utf-8")
        if key_file is None:
            assert tls.key is not None  # noqa: S101 -- checked by the caller
            key_file = Path(scratch) / "key.pem"
            key_file.touch(mode=0o600)
            key_file.write_text(tls.key.get_secret_value(), encoding="utf-8")
        try:
            context.load_cert_chain(str(cert_file), str(key_file))
        except (OSError, ssl.SSLError) as err:
            raise ValueError(
                f"cannot load the certificate and key ({err.__class__.__name__}: "
                f"{getattr(err, 'reason', None) or err})"
            ) from None
