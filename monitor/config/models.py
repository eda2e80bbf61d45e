"""The configuration models: frozen pydantic models of the one YAML file.

Loading (references, files, error collection) lives in `config.load`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Self, Union, get_args, get_origin
from urllib.parse import unquote, urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from monitor.store_keys import DEFAULT_REDIS_PORT, DEFAULT_REDIS_PREFIX

DEFAULT_BASE_URL = "https://app.launchdarkly.com"
DEFAULT_LISTEN = "0.0.0.0:9725"
TOKEN_ENV = "LD_API_TOKEN"  # noqa: S105 -- the variable's name, not a token

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> object:
    """Turn `"30s"`, `"5m"`, `"1h"`, `"250ms"` or a number into seconds."""
    if isinstance(value, bool):
        return value  # let pydantic reject it with its own message
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"invalid duration {value!r}: use e.g. 30s, 5m, 1h, 250ms")
        return float(match.group(1)) * _UNITS[match.group(2)]
    return value


def _check_listen(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"invalid listen address {value!r}: use HOST:PORT")
    if host.startswith("[") != host.endswith("]"):
        raise ValueError(f"invalid listen address {value!r}: unbalanced brackets")
    return value


Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]
ListenAddress = Annotated[str, BeforeValidator(_check_listen)]


def split_host_port(value: str, default_port: int | None = None) -> tuple[str, int]:
    """Split `host:port` (or `[v6]:port`) into its parts."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        if default_port is None:
            raise ValueError(f"{value!r} is not HOST:PORT")
        return value.strip("[]"), default_port
    return host.strip("[]"), int(port)


class Sdk(StrEnum):
    """The SDK whose reading of a store the monitor reproduces (`probe.sdk`).

    Each value's rules are the table in `monitor/probes/profiles.py`.
    """

    PYTHON = "python"
    PYTHON_ASYNC = "python-async"
    GO = "go"
    JAVA = "java"
    NODE = "node"
    DOTNET = "dotnet"
    RUBY = "ruby"
    PHP = "php"
    CPP = "cpp"
    RELAY = "relay"

    @property
    def default_stale_after(self) -> float | None:
        """The SDK's own stale threshold where it differs from `probe.stale_after`.

        Relay's `/status`: BIG_SEGMENTS_STALE_THRESHOLD, 5 minutes
        (launchdarkly/ld-relay config/config.go:53-54). Every SDK defaults
        to 120 s, `probe.stale_after`'s own default.
        """
        return 300.0 if self is Sdk.RELAY else None


class Model(BaseModel):
    """Base of every config model: unknown keys rejected, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Paced(Model):
    """A job run every `interval`, each run bounded by `timeout`."""

    interval: Seconds
    timeout: Seconds

    @model_validator(mode="after")
    def _check_timeout(self) -> Self:
        # A run that may last a whole interval would overlap the next one.
        if self.timeout >= self.interval:
            raise ValueError("timeout must be shorter than interval")
        return self


class ApiConfig(_Paced):
    """The LaunchDarkly REST API: where, with which token, how often."""

    enabled: bool = True
    base_url: str = DEFAULT_BASE_URL
    token: SecretStr | None = None
    token_file: Path | None = None
    interval: Seconds = 60.0
    timeout: Seconds = 10.0
    # Back-off after 401/403: retrying a revoked token every minute only fills
    # LaunchDarkly's audit log; a fixed token needs a restart or reload anyway.
    auth_failure_interval: Seconds = 900.0
    max_response_bytes: int = Field(default=32 * 1024 * 1024, gt=1024)

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"invalid URL {value!r}: expected http(s)://host")
        if parts.username or parts.password:
            raise ValueError("credentials do not belong in the URL; use api.token")
        return value.rstrip("/")


class ProbeConfig(_Paced):
    """How often and how hard the stores are probed."""

    interval: Seconds = 30.0
    timeout: Seconds = 5.0
    concurrency: int = Field(default=64, ge=1, le=10_000)
    # Probes in flight against one store host (or one DynamoDB endpoint).
    per_host_concurrency: int = Field(default=16, ge=1, le=10_000)
    # The SDKs' default: BigSegmentsConfig.stale_after = 120 s.
    stale_after: Seconds = 120.0
    # Whose reading of the store `ld_store_available`/`ld_store_stale` follow,
    # unless a credential entry or a static target names another SDK.
    sdk: Sdk = Sdk.PYTHON
    # Store health beyond freshness (Redis INFO, the membership sample) changes
    # slowly and costs more than the metadata read: refresh it this often.
    health_interval: Seconds = 300.0


class Match(Model):
    """Which integrations a credential entry applies to."""

    integration_id: str | None = None
    project: str | None = None
    environment: str | None = None

    @model_validator(mode="after")
    def _check_any(self) -> Match:
        if (
            self.integration_id is None
            and self.project is None
            and self.environment is None
        ):
            raise ValueError("give integration_id, or project and/or environment globs")
        return self

    def matches(self, integration_id: str, project: str, environment: str) -> bool:
        """True when this entry applies to the given integration."""
        if self.integration_id is not None and self.integration_id != integration_id:
            return False
        if self.project is not None and not fnmatchcase(project, self.project):
            return False
        return self.environment is None or fnmatchcase(environment, self.environment)


class TlsConfig(Model):
    """TLS settings for a Redis connection."""

    ca_file: Path | None = None
    server_name: str | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_skip_verify: bool = False

    @model_validator(mode="after")
    def _check_pair(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class RedisCredential(Model):
    """How the monitor reaches and authenticates to a Redis store."""

    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    address: str | None = None
    # Where this credential may be sent: glob patterns of `host` or
    # `host:port` (case-insensitive). An integration whose host matches none
    # is not probed (the credential is withheld). `address` pins by itself.
    hosts: tuple[str, ...] | None = None
    tls: TlsConfig | None = None
    prefix: str | None = None

    @field_validator("address")
    @classmethod
    def _check_address(cls, value: str | None) -> str | None:
        if value is not None:
            split_host_port(value, default_port=DEFAULT_REDIS_PORT)
        return value

    @field_validator("hosts")
    @classmethod
    def _check_hosts(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and (not value or not all(p.strip() for p in value)):
            raise ValueError("hosts: give at least one non-empty pattern")
        return value

    @property
    def pinned(self) -> bool:
        """True when the credential can only reach hosts the config names."""
        return self.address is not None or self.hosts is not None


class DynamoDBCredential(Model):
    """How the monitor reaches a DynamoDB table: region, endpoint, role."""

    region: str | None = None
    endpoint_url: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    prefix: str | None = None

    @model_validator(mode="after")
    def _check_role(self) -> DynamoDBCredential:
        if self.external_id is not None and self.role_arn is None:
            raise ValueError("external_id needs role_arn")
        return self


class Credential(Model):
    """Access settings for the integrations a `match` selects."""

    match: Match
    redis: RedisCredential | None = None
    dynamodb: DynamoDBCredential | None = None
    # The SDK (and its stale threshold) of the applications using these stores.
    sdk: Sdk | None = None
    stale_after: Seconds | None = None


class RedisTarget(Model):
    """A Redis store that the LaunchDarkly API does not manage (e.g. Relay's)."""

    kind: Literal["redis"]
    name: str = Field(min_length=1)
    url: str
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    tls: TlsConfig | None = None
    prefix: str = DEFAULT_REDIS_PREFIX
    project: str = "static"
    environment: str = "static"
    sdk: Sdk | None = None
    stale_after: Seconds | None = None

    @model_validator(mode="before")
    @classmethod
    def _move_url_password(cls, data: Any) -> Any:
        """Keep the password out of `url` so that no repr or log line carries it."""
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            return data
        parts = urlsplit(data["url"])
        if parts.password is None:
            return data
        if data.get("password") is not None:
            raise ValueError(
                "give the password in the URL or in password/password_file, not both"
            )
        user = parts.username or ""
        netloc = (f"{user}@" if user else "") + parts.netloc.rpartition("@")[2]
        return {
            **data,
            "url": parts._replace(netloc=netloc).geturl(),
            "password": unquote(parts.password),
            "username": data.get("username") or (unquote(user) if user else None),
        }

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"redis", "rediss"}:
            raise ValueError(
                "invalid URL: scheme must be redis:// or rediss://, "
                f"got {parts.scheme or 'none'!r}"
            )
        if not parts.hostname:
            raise ValueError("invalid URL: no host")
        try:
            _ = parts.port
        except ValueError as err:
            raise ValueError(f"invalid URL: {err}") from None
        database = parts.path.strip("/")
        if database and not database.isdigit():
            raise ValueError(
                f"invalid URL: the path must be a database number, got {database!r}"
            )
        return value


class DynamoDBTarget(Model):
    """A DynamoDB table that the LaunchDarkly API does not manage."""

    kind: Literal["dynamodb"]
    name: str = Field(min_length=1)
    table: str = Field(min_length=3, max_length=255)
    region: str
    prefix: str = ""
    endpoint_url: str | None = None
    role_arn: str | None = None
    external_id: str | None = None
    project: str = "static"
    environment: str = "static"
    sdk: Sdk | None = None
    stale_after: Seconds | None = None


Target = Annotated[RedisTarget | DynamoDBTarget, Field(discriminator="kind")]


class Scope(Model):
    """A project/environment glob pair."""

    project: str = "*"
    environment: str = "*"

    def matches(self, project: str, environment: str) -> bool:
        """True when both globs match."""
        return fnmatchcase(project, self.project) and fnmatchcase(
            environment, self.environment
        )


class Filters(Model):
    """Which integrations discovery keeps."""

    include: tuple[Scope, ...] = (Scope(),)
    exclude: tuple[Scope, ...] = ()

    def keeps(self, project: str, environment: str) -> bool:
        """True when an integration in this project/environment is monitored."""
        return any(s.matches(project, environment) for s in self.include) and not any(
            s.matches(project, environment) for s in self.exclude
        )


class ServerConfig(Model):
    """The HTTP server for /metrics, health and the status page."""

    listen: ListenAddress = DEFAULT_LISTEN
    # The status page, /status and /probe: off, or on a listener of their own
    # (None: on `listen`, with /metrics), so that /metrics can be exposed to
    # Prometheus while they stay internal.
    status_enabled: bool = True
    status_listen: ListenAddress | None = None
    # TLS and basic auth of every listener, in the Prometheus exporter-toolkit
    # format (config.web); --web.config.file overrides it.
    web_config_file: Path | None = None
    # Limits of the HTTP server against clients that hold connections: at
    # most this many open at once (more are answered 503 and closed, so the
    # probes keep their file descriptors); a connection that has not sent a
    # request's headers within header_timeout of opening is closed; an idle
    # keep-alive connection after idle_timeout.
    max_connections: int = Field(default=128, ge=1)
    header_timeout: Seconds = 10.0
    idle_timeout: Seconds = 60.0

    @model_validator(mode="after")
    def _check_status(self) -> Self:
        if self.status_listen is not None and not self.status_enabled:
            raise ValueError("status_listen is set but status_enabled is false")
        if self.status_listen is not None:
            status = split_host_port(self.status_listen)
            if status == split_host_port(self.listen) and status[1] != 0:
                raise ValueError("status_listen must differ from listen")
        return self


LogFormat = Literal["auto", "json", "console"]
LogLevel = Literal["debug", "info", "warning", "error"]


class LoggingConfig(Model):
    """Log format and level."""

    format: LogFormat = "auto"
    level: LogLevel = "info"


class Canary(Model):
    """A known context whose big segment membership is checked every probe."""

    name: str = Field(min_length=1)
    match: Match
    context_key: str = Field(min_length=1)
    segment_key: str = Field(min_length=1)
    expect: Literal["included", "excluded"]
    # Static targets have no API to ask: give the segment's generation here.
    generation: int | None = Field(default=None, ge=0)


class Config(Model):
    """The whole configuration."""

    api: ApiConfig = ApiConfig()
    probe: ProbeConfig = ProbeConfig()
    filters: Filters = Filters()
    credentials: tuple[Credential, ...] = ()
    targets: tuple[Target, ...] = ()
    canaries: tuple[Canary, ...] = ()
    server: ServerConfig = ServerConfig()
    logging: LoggingConfig = LoggingConfig()

    @model_validator(mode="after")
    def _check_targets(self) -> Config:
        names = [t.name for t in self.targets]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"target names must be unique: {', '.join(duplicates)}")
        canaries = [c.name for c in self.canaries]
        repeated = sorted({n for n in canaries if canaries.count(n) > 1})
        if repeated:
            raise ValueError(f"canary names must be unique: {', '.join(repeated)}")
        if not self.api.enabled and not self.targets:
            raise ValueError(
                "nothing to monitor: the API is disabled and no targets are set"
            )
        return self

    def credential_for(
        self, integration_id: str, project: str, environment: str
    ) -> Credential | None:
        """The first credential entry that matches, if any."""
        for credential in self.credentials:
            if credential.match.matches(integration_id, project, environment):
                return credential
        return None

    def secrets(self) -> frozenset[str]:
        """Every secret value (each `SecretStr` field) in this config, for the logs."""
        document = self.model_dump()  # SecretStr values stay SecretStr objects
        found = {
            value.get_secret_value()
            for _, container, key in fields_in(
                document, config_fields(type(self)).secrets
            )
            if isinstance(value := container[key], SecretStr)
        }
        return frozenset(s for s in found if s)


# ---------------------------------------------------------------------------
# Field conventions, read off the models: a `SecretStr` field is a secret (it
# must be a ${VAR} reference or come from its `*_file` sibling, and its value
# is redacted from logs); a field named `*_file` names a file relative to the
# config file's folder, watched for changes.

# Field names from `Config` down; ITEM stands for any item of a tuple.
FieldPath = tuple[str, ...]
ITEM = "*"


@dataclass(frozen=True, slots=True)
class ConfigFields:
    """The secret and the `*_file` fields of a config model, in field order."""

    secrets: tuple[FieldPath, ...]
    files: tuple[FieldPath, ...]


def _field_types(
    model: type[BaseModel], path: FieldPath = ()
) -> Iterator[tuple[FieldPath, Any]]:
    """Each field of `model` and of the models inside it, with each type it may hold."""
    for name, info in model.model_fields.items():
        yield from _types_of(info.annotation, (*path, name))


def _types_of(annotation: Any, path: FieldPath) -> Iterator[tuple[FieldPath, Any]]:
    origin = get_origin(annotation)
    if origin is Annotated:
        yield from _types_of(get_args(annotation)[0], path)
    elif origin is Union or origin is UnionType:
        for member in get_args(annotation):
            yield from _types_of(member, path)
    elif origin is tuple or origin is list:
        for item in get_args(annotation):
            if item is not Ellipsis:
                yield from _types_of(item, (*path, ITEM))
    else:
        yield path, annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _field_types(annotation, path)


@functools.cache
def config_fields(model: type[BaseModel]) -> ConfigFields:
    """The secret (`SecretStr`) and `*_file` fields of `model`, found in one walk."""
    secrets: dict[FieldPath, None] = {}
    files: dict[FieldPath, None] = {}
    for path, kind in _field_types(model):
        if kind is SecretStr:
            secrets[path] = None
        if path[-1].endswith("_file"):
            files[path] = None
    return ConfigFields(tuple(secrets), tuple(files))


def fields_in(
    document: Any, paths: Iterable[FieldPath]
) -> Iterator[tuple[tuple[str | int, ...], Any, str | int]]:
    """Where the fields `paths` are present in a config document, in document order.

    `document` is plain data (YAML as loaded, or a `model_dump`). Yields
    (location, container, key) with `container[key]` the field's value, so
    that callers can read or replace it; `location` is the dotted path of
    error messages (list items by index).
    """
    wanted = frozenset(paths)
    prefixes = frozenset(path[:end] for path in wanted for end in range(len(path)))

    def walk(
        node: Any, location: tuple[str | int, ...], path: FieldPath
    ) -> Iterator[tuple[tuple[str | int, ...], Any, str | int]]:
        steps: Iterable[tuple[str | int, str]]
        if isinstance(node, dict):
            steps = ((k, k) for k in node if isinstance(k, str) and k != ITEM)
        elif isinstance(node, list | tuple):
            steps = ((index, ITEM) for index in range(len(node)))
        else:
            return
        for key, step in steps:
            here = (*path, step)
            if here in wanted:
                yield (*location, key), node, key
            if here in prefixes:
                yield from walk(node[key], (*location, key), here)

    if () in wanted:
        raise ValueError("a field path names at least one field")
    yield from walk(document, (), ())


SECRET_FIELDS = config_fields(Config).secrets
FILE_FIELDS = config_fields(Config).files
