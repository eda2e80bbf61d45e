"""Scenario files: what the LaunchDarkly API simulator serves.

A scenario is one YAML or JSON document. Every top-level section is optional::

    token: sim-token                 # the access token the API accepts
    forbidden_tokens: []             # tokens answered with 403 instead of 401
    rate_limit: {global: 100000, route: 100000}   # requests per 10 s window
    projects:
      - key: web                     # required
        name: Web shop               # default: the key
        tags: []
        environments:
          - key: production          # required
            name: Production         # default: the key
            client_side_id: 6543210fedcba98765432100  # Environment._id, the
                                     # store key prefix; default: derived
                                     # from the project and environment keys
            api_key: sdk-00000000-0000-0000-0000-000000000001  # default: derived
            mobile_key: mob-...      # default: derived
            color: 417505            # default: 7B42BC
            critical: false
            tags: []
    integrations:
      - id: 0123456789abcdef01234567 # default: derived (24 lowercase hex)
        project: web                 # must name a project above
        environment: production      # must name one of its environments
        kind: redis                  # integrationKey: redis | dynamodb
        name: Production Redis       # default: "<kind> <project>/<environment>"
        on: true                     # default: true
        tags: [prod]
        version: 3                   # default: 1
        config: {host: redis.example.com, port: "6379", username: ldwriter,
                 password: hunter2hunter2, tlsEnabled: true}
        status:                      # every field optional; absent = omitted
          available: true
          potentiallyStale: false
          lastSync: -30s             # signed offset (ms, s, m, h, d) from the
                                     # clock at reply time, "now", or epoch ms
          lastError: -1h
          errors: [{statusCode: 503, message: connection refused,
                    timestamp: -1h}]
    segments:
      - {project: web, environment: production, key: beta-users,
         name: Beta users, generation: 2, unbounded: true,
         unbounded_context_kind: user, tags: [], version: 1}

A Redis `port` given as a number is stored as a string, as the real API does.
Derived identifiers are stable: the same scenario always yields the same ids.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml

from devtools.ldsim.fields import FieldReader
from devtools.ldsim.status import Status, parse_status

DEFAULT_TOKEN: Final = "sim-token"
DEFAULT_BUDGET: Final = 100_000
INTEGRATION_KINDS: Final = ("redis", "dynamodb")

_TOP: Final = frozenset(
    {"token", "forbidden_tokens", "rate_limit", "projects", "integrations", "segments"}
)
_RATE_LIMIT: Final = frozenset({"global", "route"})
_PROJECT: Final = frozenset({"key", "name", "tags", "environments"})
_ENVIRONMENT: Final = frozenset(
    {"key", "name", "client_side_id", "api_key", "mobile_key", "color", "critical"}
    | {"tags"}
)
_INTEGRATION: Final = frozenset(
    {"id", "project", "environment", "kind", "name", "on", "tags", "version"}
    | {"config", "status"}
)
_SEGMENT: Final = frozenset(
    {"project", "environment", "key", "name", "generation", "unbounded"}
    | {"unbounded_context_kind", "tags", "version"}
)
_BOOL_TAG: Final = "tag:yaml.org,2002:bool"


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, so an `on:` key stays the string "on"."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class RateLimit:
    """Request budgets per 10 s window: account-wide and per route."""

    global_budget: int = DEFAULT_BUDGET
    route_budget: int = DEFAULT_BUDGET


@dataclass(frozen=True)
class EnvironmentSpec:
    """One environment of a project."""

    key: str
    name: str
    client_side_id: str
    api_key: str
    mobile_key: str
    color: str = "7B42BC"
    critical: bool = False
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProjectSpec:
    """One project and its environments."""

    key: str
    name: str
    id: str
    tags: tuple[str, ...] = ()
    environments: tuple[EnvironmentSpec, ...] = ()

    def environment(self, key: str) -> EnvironmentSpec | None:
        """Return the environment with this key, if any."""
        return next((env for env in self.environments if env.key == key), None)


@dataclass(frozen=True)
class IntegrationSpec:
    """One big segment store integration as the scenario starts it."""

    id: str
    project: str
    environment: str
    kind: str
    name: str
    on: bool = True
    tags: tuple[str, ...] = ()
    version: int = 1
    config: Mapping[str, Any] = field(default_factory=dict, hash=False)
    status: Status = field(default_factory=Status)


@dataclass(frozen=True)
class SegmentSpec:
    """One segment's metadata, for `GET /api/v2/segments/...`."""

    project: str
    environment: str
    key: str
    name: str
    generation: int = 1
    unbounded: bool = True
    unbounded_context_kind: str = "user"
    tags: tuple[str, ...] = ()
    version: int = 1


@dataclass(frozen=True)
class Scenario:
    """Everything the simulator starts with; build it with `from_dict`."""

    token: str | None = None
    forbidden_tokens: tuple[str, ...] = ()
    rate_limit: RateLimit = field(default_factory=RateLimit)
    projects: tuple[ProjectSpec, ...] = ()
    integrations: tuple[IntegrationSpec, ...] = ()
    segments: tuple[SegmentSpec, ...] = ()

    @classmethod
    def from_dict(cls, data: object, *, source: str = "scenario") -> Scenario:
        """Build a scenario from parsed YAML/JSON; raise ValueError listing problems."""
        reader = FieldReader()
        top = reader.mapping(data, "(top)", _TOP)
        token = reader.string(top, "token", "token")
        forbidden = reader.strings(top, "forbidden_tokens", "forbidden_tokens")
        limits = reader.mapping(top.get("rate_limit", {}), "rate_limit", _RATE_LIMIT)
        rate_limit = RateLimit(
            reader.integer(limits, "global", "rate_limit.global", DEFAULT_BUDGET, 1),
            reader.integer(limits, "route", "rate_limit.route", DEFAULT_BUDGET, 1),
        )
        projects = tuple(
            _project(reader, item, f"projects.{i}")
            for i, item in enumerate(reader.items(top, "projects"))
        )
        reader.unique([p.key for p in projects], "projects", "project key")
        known = {p.key: p for p in projects}
        integrations = tuple(
            _integration(reader, item, f"integrations.{i}", i, known)
            for i, item in enumerate(reader.items(top, "integrations"))
        )
        reader.unique([i.id for i in integrations], "integrations", "integration id")
        segments = tuple(
            _segment(reader, item, f"segments.{i}", known)
            for i, item in enumerate(reader.items(top, "segments"))
        )
        if reader.problems:
            lines = "\n".join(f"  {line}" for line in reader.problems)
            raise ValueError(f"{source}: invalid scenario:\n{lines}")
        return cls(token, forbidden, rate_limit, projects, integrations, segments)


def load_scenario(path: str | Path) -> Scenario:
    """Read a YAML or JSON scenario file; raise ValueError saying what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"{path}: cannot read scenario: {err.strerror}") from err
    return parse_scenario(text, source=str(path), is_json=path.suffix == ".json")


def parse_scenario(text: str, *, source: str, is_json: bool = False) -> Scenario:
    """Parse scenario text (YAML, or JSON when `is_json`) into a Scenario."""
    try:
        data = json.loads(text) if is_json else _load_yaml(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        kind = "JSON" if is_json else "YAML"
        raise ValueError(f"{source}: not valid {kind}: {err}") from err
    return Scenario.from_dict({} if data is None else data, source=source)


def derived_hex(*parts: str) -> str:
    """Return a stable 24-hex-digit id (LaunchDarkly's `_id` shape) for `parts`."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:24]


def derived_uuid(*parts: str) -> str:
    """Return a stable UUID string for `parts`."""
    return str(uuid.UUID(bytes=hashlib.sha256("/".join(parts).encode()).digest()[:16]))


def _load_yaml(text: str) -> Any:
    """Parse YAML safely, with YAML 1.2 booleans."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def _project(reader: FieldReader, item: object, loc: str) -> ProjectSpec:
    """Read one project entry."""
    data = reader.mapping(item, loc, _PROJECT)
    key = reader.required(data, "key", f"{loc}.key")
    environments = tuple(
        _environment(reader, env, f"{loc}.environments.{i}", key)
        for i, env in enumerate(reader.items(data, "environments"))
    )
    reader.unique(
        [e.key for e in environments], f"{loc}.environments", "environment key"
    )
    return ProjectSpec(
        key=key,
        name=reader.string(data, "name", f"{loc}.name", key) or key,
        id=derived_hex("project", key),
        tags=reader.strings(data, "tags", f"{loc}.tags"),
        environments=environments,
    )


def _environment(
    reader: FieldReader, item: object, loc: str, project: str
) -> EnvironmentSpec:
    """Read one environment entry."""
    data = reader.mapping(item, loc, _ENVIRONMENT)
    key = reader.required(data, "key", f"{loc}.key")
    seed = ("environment", project, key)
    return EnvironmentSpec(
        key=key,
        name=reader.string(data, "name", f"{loc}.name", key) or key,
        client_side_id=reader.string(data, "client_side_id", f"{loc}.client_side_id")
        or derived_hex(*seed),
        api_key=reader.string(data, "api_key", f"{loc}.api_key")
        or f"sdk-{derived_uuid(*seed, 'sdk')}",
        mobile_key=reader.string(data, "mobile_key", f"{loc}.mobile_key")
        or f"mob-{derived_uuid(*seed, 'mobile')}",
        color=reader.string(data, "color", f"{loc}.color", "7B42BC") or "7B42BC",
        critical=reader.boolean(data, "critical", f"{loc}.critical", False),
        tags=reader.strings(data, "tags", f"{loc}.tags"),
    )


def _integration(
    reader: FieldReader,
    item: object,
    loc: str,
    index: int,
    projects: dict[str, ProjectSpec],
) -> IntegrationSpec:
    """Read one integration entry and check what it refers to."""
    data = reader.mapping(item, loc, _INTEGRATION)
    project = reader.required(data, "project", f"{loc}.project")
    environment = reader.required(data, "environment", f"{loc}.environment")
    _check_environment(reader, loc, project, environment, projects)
    kind = reader.required(data, "kind", f"{loc}.kind")
    if kind and kind not in INTEGRATION_KINDS:
        reader.fail(
            f"{loc}.kind",
            f"must be one of {', '.join(INTEGRATION_KINDS)}, not {kind!r}",
        )
    integration_id = reader.string(data, "id", f"{loc}.id") or derived_hex(
        "integration", project, environment, kind, str(index)
    )
    if "/" in integration_id:
        reader.fail(f"{loc}.id", "must not contain '/'")
    config = reader.mapping(data.get("config") or {}, f"{loc}.config", None)
    if kind == "redis":
        config = normalise_redis_config(config, f"{loc}.config", reader.problems)
    status, problems = parse_status(data.get("status") or {}, f"{loc}.status")
    reader.problems.extend(problems)
    return IntegrationSpec(
        id=integration_id,
        project=project,
        environment=environment,
        kind=kind,
        name=reader.string(data, "name", f"{loc}.name")
        or f"{kind} {project}/{environment}",
        on=reader.boolean(data, "on", f"{loc}.on", True),
        tags=reader.strings(data, "tags", f"{loc}.tags"),
        version=reader.integer(data, "version", f"{loc}.version", 1, 1),
        config=config,
        status=status,
    )


def _segment(
    reader: FieldReader, item: object, loc: str, projects: dict[str, ProjectSpec]
) -> SegmentSpec:
    """Read one segment entry and check what it refers to."""
    data = reader.mapping(item, loc, _SEGMENT)
    project = reader.required(data, "project", f"{loc}.project")
    environment = reader.required(data, "environment", f"{loc}.environment")
    _check_environment(reader, loc, project, environment, projects)
    key = reader.required(data, "key", f"{loc}.key")
    return SegmentSpec(
        project=project,
        environment=environment,
        key=key,
        name=reader.string(data, "name", f"{loc}.name", key) or key,
        generation=reader.integer(data, "generation", f"{loc}.generation", 1, 0),
        unbounded=reader.boolean(data, "unbounded", f"{loc}.unbounded", True),
        unbounded_context_kind=reader.string(
            data, "unbounded_context_kind", f"{loc}.unbounded_context_kind", "user"
        )
        or "user",
        tags=reader.strings(data, "tags", f"{loc}.tags"),
        version=reader.integer(data, "version", f"{loc}.version", 1, 1),
    )


def _check_environment(
    reader: FieldReader,
    loc: str,
    project: str,
    environment: str,
    projects: dict[str, ProjectSpec],
) -> None:
    """Report a reference to a project or environment the scenario lacks."""
    if not project or not environment:
        return
    spec = projects.get(project)
    if spec is None:
        reader.fail(f"{loc}.project", f"unknown project {project!r}")
    elif spec.environment(environment) is None:
        reader.fail(
            f"{loc}.environment",
            f"unknown environment {environment!r} in project {project!r}",
        )


def normalise_redis_config(
    config: dict[str, Any], loc: str, problems: list[str]
) -> dict[str, Any]:
    """Store a numeric Redis `port` as a string, as the API does; report bad types."""
    config = dict(config)
    port = config.get("port")
    if isinstance(port, int) and not isinstance(port, bool):
        config["port"] = str(port)
    elif port is not None and not isinstance(port, str):
        problems.append(f"{loc}.port: must be a string or an integer")
    return config


def load_demo_scenario() -> Scenario:
    """Return the bundled demo scenario (`scenarios/demo.yaml`)."""
    resource = resources.files("devtools.ldsim") / "scenarios" / "demo.yaml"
    return parse_scenario(resource.read_text(encoding="utf-8"), source="demo.yaml")
