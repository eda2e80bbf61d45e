"""Configuration: one YAML file, validated into frozen models.

`load_config(path)` reads the file, resolves `${VAR}` references from the
environment and `*_file` references from disk, validates everything and
raises one `ConfigError` listing every problem as `field.path: message`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote, unquote, urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.errors import ConfigError
from monitor.layout import DEFAULT_REDIS_PREFIX

DEFAULT_BASE_URL = "https://app.launchdarkly.com"
DEFAULT_LISTEN = "0.0.0.0:9725"
TOKEN_ENV = "LD_API_TOKEN"  # noqa: S105 -- the variable's name, not a token

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_REFERENCE = re.compile(r"\$\$|\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WHOLE_REFERENCE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
# Keys whose values are secrets: they must be ${VAR} references, never literals.
_SECRET_KEYS = frozenset({"token", "password"})


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


class Model(BaseModel):
    """Base of every config model: unknown keys rejected, values frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiConfig(Model):
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

    @model_validator(mode="after")
    def _check_timeout(self) -> ApiConfig:
        if self.timeout >= self.interval:
            raise ValueError("timeout must be shorter than interval")
        return self


class ProbeConfig(Model):
    """How often and how hard the stores are probed."""

    interval: Seconds = 30.0
    timeout: Seconds = 5.0
    concurrency: int = Field(default=64, ge=1, le=10_000)
    # Probes in flight against one store host (or one DynamoDB endpoint).
    per_host_concurrency: int = Field(default=16, ge=1, le=10_000)
    # The SDKs' default: BigSegmentsConfig.stale_after = 120 s.
    stale_after: Seconds = 120.0
    # Store health beyond freshness (Redis INFO, the membership sample) changes
    # slowly and costs more than the metadata read: refresh it this often.
    health_interval: Seconds = 300.0

    @model_validator(mode="after")
    def _check_timeout(self) -> ProbeConfig:
        if self.timeout >= self.interval:
            raise ValueError("timeout must be shorter than interval")
        return self


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
    tls: TlsConfig | None = None
    prefix: str | None = None

    @field_validator("address")
    @classmethod
    def _check_address(cls, value: str | None) -> str | None:
        if value is not None:
            split_host_port(value, default_port=6379)
        return value


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


class LoggingConfig(Model):
    """Log format and level."""

    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


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
        """Every secret value in this config, for the log redactor."""
        found: set[str] = set()
        if self.api.token is not None:
            found.add(self.api.token.get_secret_value())
        for credential in self.credentials:
            if credential.redis is not None and credential.redis.password is not None:
                found.add(credential.redis.password.get_secret_value())
        for target in self.targets:
            if isinstance(target, RedisTarget) and target.password is not None:
                found.add(target.password.get_secret_value())
        return frozenset(s for s in found if s)


# ---------------------------------------------------------------------------
# Loading: raw YAML -> references resolved -> validated models.


def _walk(
    node: Any, path: tuple[str | int, ...] = ()
) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, index))


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _check_secret_literals(raw: Any) -> list[str]:
    """Secrets must arrive by reference so that config files can be shared."""
    problems = []
    for path, value in _walk(raw):
        if not path or not isinstance(value, str):
            continue
        key = path[-1]
        if key in _SECRET_KEYS and not _WHOLE_REFERENCE.match(value):
            problems.append(
                f"{_dotted(path)}: secrets must be given by reference "
                f"(${{VAR}} or {key}_file), not inline"
            )
        elif key == "url":
            password = urlsplit(value).password if "@" in value else None
            if password and not _WHOLE_REFERENCE.match(password):
                problems.append(
                    f"{_dotted(path)}: the password in a URL must be a ${{VAR}} "
                    "reference, not inline"
                )
    return problems


def _expand(
    raw: Any, env: Mapping[str, str], path: tuple[str | int, ...], problems: list[str]
) -> Any:
    if isinstance(raw, dict):
        return {k: _expand(v, env, (*path, str(k)), problems) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_expand(v, env, (*path, i), problems) for i, v in enumerate(raw)]
    if not isinstance(raw, str) or "$" not in raw:
        return raw

    def substitute(text: str, encode: bool) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group(1)
            if not _ENV_NAME.match(name):
                problems.append(
                    f"{_dotted(path)}: invalid variable reference ${{{name}}}"
                )
                return ""
            if name not in env:
                problems.append(
                    f"{_dotted(path)}: environment variable {name} is not set"
                )
                return ""
            return quote(env[name], safe="") if encode else env[name]

        return _REFERENCE.sub(replace, text)

    if path and path[-1] == "url" and "://" in raw:
        # Values put into a URL's user:password part are percent-encoded, so a
        # password holding `@` or `/` cannot change where the URL points.
        scheme_end = raw.index("://") + 3
        at = raw.find("@", scheme_end)
        if at != -1 and "/" not in raw[scheme_end:at]:
            return substitute(raw[:at], encode=True) + substitute(
                raw[at:], encode=False
            )
    return substitute(raw, encode=False)


def _read_secret_file(path_value: Any, base_dir: Path) -> str | None:
    """The file's stripped text; None when unreadable (`_check_files` reports that)."""
    if not isinstance(path_value, str):
        return None  # the model reports the wrong type
    try:
        return (base_dir / path_value).expanduser().read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _check_files(data: Any, base_dir: Path, problems: list[str]) -> None:
    """Every `*_file` must be a readable file (relative to the config's folder)."""
    for path, value in _walk(data):
        if (
            path
            and isinstance(path[-1], str)
            and path[-1].endswith("_file")
            and isinstance(value, str)
        ):
            file = (base_dir / value).expanduser()
            if not file.is_file() or not os.access(file, os.R_OK):
                problems.append(f"{_dotted(path)}: no readable file at {file}")


def _absolutise_files(data: Any, base_dir: Path) -> Any:
    if isinstance(data, dict):
        return {
            k: str((base_dir / v).expanduser())
            if isinstance(k, str) and k.endswith("_file") and isinstance(v, str)
            else _absolutise_files(v, base_dir)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_absolutise_files(v, base_dir) for v in data]
    return data


def _fill_from_file(
    section: dict[str, Any], key: str, where: str, base_dir: Path, problems: list[str]
) -> None:
    """Read `{key}_file` into `key`, keeping the file name for change detection."""
    file_key = f"{key}_file"
    if section.get(key) is not None and section.get(file_key) is not None:
        problems.append(f"{where}: set either {key} or {file_key}, not both")
        return
    if section.get(file_key) is None:
        return
    value = _read_secret_file(section[file_key], base_dir)
    if value == "":
        problems.append(f"{where}.{file_key}: the file is empty")
    elif value is not None:
        section[key] = value


def _resolve_secrets(
    data: dict[str, Any], env: Mapping[str, str], base_dir: Path, problems: list[str]
) -> None:
    """Fill api.token and Redis passwords from their files or LD_API_TOKEN."""
    api = data.get("api")
    if api is None:
        api = data["api"] = {}
    if isinstance(api, dict) and api.get("enabled", True) is not False:
        _fill_from_file(api, "token", "api", base_dir, problems)
        if api.get("token") is None and api.get("token_file") is None:
            if env.get(TOKEN_ENV):
                api["token"] = env[TOKEN_ENV]
            else:
                problems.append(
                    "api.token: no API token: "
                    f"set {TOKEN_ENV}, api.token or api.token_file"
                )
        elif api.get("token") == "" and not any(
            p.startswith("api.token:") for p in problems
        ):
            problems.append("api.token: the token is empty")
    for list_key, sub_key in (("credentials", "redis"), ("targets", None)):
        entries = data.get(list_key)
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            section = (
                entry.get(sub_key) if sub_key and isinstance(entry, dict) else entry
            )
            if isinstance(section, dict):
                where = f"{list_key}.{index}" + (f".{sub_key}" if sub_key else "")
                _fill_from_file(section, "password", where, base_dir, problems)


def _format_location(loc: tuple[int | str, ...], raw: Any) -> str:
    """Pydantic puts the union tag into locations; drop it to match the file."""
    parts: list[str] = []
    node = raw
    for element in loc:
        if (
            isinstance(node, dict)
            and isinstance(element, str)
            and element not in node
            and node.get("kind") == element
        ):
            continue  # the discriminator tag, not a key of the file
        parts.append(str(element))
        if isinstance(node, dict):
            node = node.get(element)
        elif (
            isinstance(node, list) and isinstance(element, int) and element < len(node)
        ):
            node = node[element]
        else:
            node = None
    return ".".join(parts) or "(top level)"


def parse_config(
    raw: Any, env: Mapping[str, str] | None = None, base_dir: Path | None = None
) -> Config:
    """Validate a parsed YAML document; ConfigError lists every problem."""
    env = os.environ if env is None else env
    base_dir = Path.cwd() if base_dir is None else base_dir
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            [f"(top level): expected a mapping, got {type(raw).__name__}"]
        )
    problems = _check_secret_literals(raw)
    data = _expand(raw, env, (), problems)
    _check_files(data, base_dir, problems)
    data = _absolutise_files(data, base_dir)
    _resolve_secrets(data, env, base_dir, problems)
    try:
        config = Config.model_validate(data)
    except ValidationError as err:
        for error in err.errors(include_url=False):
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{_format_location(error['loc'], data)}: {message}")
        raise ConfigError(sorted(set(problems), key=problems.index)) from None
    if problems:
        raise ConfigError(problems)
    return config


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, resolve and validate the YAML file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            [f"(file): cannot read {path}: {err.strerror or err}"]
        ) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = (
            f"line {mark.line + 1}, column {mark.column + 1}"
            if mark
            else "unknown position"
        )
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError([f"(yaml): {where}: {problem}"]) from None
    return parse_config(raw, env, path.parent.resolve())


def referenced_files(config_path: Path, config: Config) -> tuple[Path, ...]:
    """The config file and every `*_file` it names, for change detection."""
    found: list[Path] = [config_path]
    for _, value in _walk(config.model_dump(mode="json")):
        if isinstance(value, dict):
            for key, item in value.items():
                if key.endswith("_file") and isinstance(item, str):
                    found.append(Path(item))
    return tuple(dict.fromkeys(found))
