"""Scenario files: what the LaunchDarkly API simulator serves.

A scenario is one YAML or JSON document. Every top-level section is optional::

    token: sim-token                 # the access token the API accepts
    forbidden_tokens: []             # tokens answered with 403 instead of 401
    rate_limit: {global: 100000, route: 100000}   # requests per 10 s window
    list_config: full                # what list items carry as `config`: full,
                                     # empty ({}) or absent; the detail GET
                                     # always returns the full config
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
          lastSync: -30s             # signed duration (ms, s, m, h, as in the
                                     # monitor's config) from the clock at
                                     # reply time, "now", or epoch ms
          lastError: -1h
          errors: [{statusCode: 503, message: connection refused,
                    timestamp: -1h}]
    segments:
      - {project: web, environment: production, key: beta-users,
         name: Beta users, generation: 2, unbounded: true,
         unbounded_context_kind: user, tags: [], version: 1}

A Redis `port` given as a number is stored as a string, as the real API does.
Derived identifiers are stable: the same scenario always yields the same ids.
A key given with no value (`name:`) counts as absent.

The models are frozen pydantic models that reject unknown keys, like the
monitor's configuration; a bad scenario raises one ValueError listing every
problem as `dotted.path: message`.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import yaml
from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from devtools.ldsim.status import Status
from devtools.ldsim.validation import NonEmpty, Spec, present, problems

DEFAULT_TOKEN: Final = "sim-token"
DEFAULT_BUDGET: Final = 100_000
INTEGRATION_KINDS: Final = ("redis", "dynamodb")
_BOOL_TAG: Final = "tag:yaml.org,2002:bool"
# The validation context key under which a scenario's projects are known to
# the integrations and segments that refer to them.
_PROJECTS: Final = "projects"

Tags = tuple[StrictStr, ...]
# What the list reply's items carry as `config` (the detail GET: always full).
ListConfig = Literal["full", "empty", "absent"]


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, so an `on:` key stays the string "on"."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def derived_hex(*parts: str) -> str:
    """Return a stable 24-hex-digit id (LaunchDarkly's `_id` shape) for `parts`."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:24]


def derived_uuid(*parts: str) -> str:
    """Return a stable UUID string for `parts`."""
    return str(uuid.UUID(bytes=hashlib.sha256("/".join(parts).encode()).digest()[:16]))


def _unique(attribute: str, what: str) -> AfterValidator:
    """A validator of a tuple of models whose `attribute` must not repeat."""

    def check(items: tuple[Any, ...]) -> tuple[Any, ...]:
        _require_unique([getattr(item, attribute) for item in items], what)
        return items

    return AfterValidator(check)


class RateLimit(Spec):
    """Request budgets per 10 s window: account-wide and per route (0: all 429)."""

    global_budget: Annotated[StrictInt, Field(ge=0, validation_alias="global")] = (
        DEFAULT_BUDGET
    )
    route_budget: Annotated[StrictInt, Field(ge=0, validation_alias="route")] = (
        DEFAULT_BUDGET
    )


class EnvironmentSpec(Spec):
    """One environment of a project (its project fills in the derived keys)."""

    key: NonEmpty
    name: NonEmpty
    client_side_id: NonEmpty
    api_key: NonEmpty
    mobile_key: NonEmpty
    color: NonEmpty = "7B42BC"
    critical: StrictBool = False
    tags: Tags = ()


class ProjectSpec(Spec):
    """One project and its environments."""

    key: NonEmpty
    name: NonEmpty
    tags: Tags = ()
    environments: Annotated[
        tuple[EnvironmentSpec, ...], _unique("key", "environment key")
    ] = ()

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        """Name defaults to the key; environment ids derive from the two keys."""
        data = present(data)
        if not isinstance(data, dict):
            return data
        key = data.get("key")
        if key is not None:
            data.setdefault("name", key)
        environments = data.get("environments")
        if isinstance(environments, list):
            data["environments"] = [
                _environment_defaults(str(key), item) for item in environments
            ]
        return data

    def environment(self, key: str) -> EnvironmentSpec | None:
        """Return the environment with this key, if any."""
        return next((env for env in self.environments if env.key == key), None)


def _environment_defaults(project: str, item: object) -> object:
    """Fill an environment entry's name and derived ids (kept if given)."""
    item = present(item)
    if not isinstance(item, dict):
        return item
    key = item.get("key")
    seed = ("environment", project, str(key))
    return {
        **({} if key is None else {"name": key}),
        "client_side_id": derived_hex(*seed),
        "api_key": f"sdk-{derived_uuid(*seed, 'sdk')}",
        "mobile_key": f"mob-{derived_uuid(*seed, 'mobile')}",
        **item,
    }


class _InEnvironment(Spec):
    """Something that lives in one environment of one of the scenario's projects."""

    project: NonEmpty
    environment: NonEmpty

    @field_validator("project")
    @classmethod
    def _known_project(cls, project: str, info: ValidationInfo) -> str:
        known = _known_projects(info)
        if known is not None and project not in known:
            raise ValueError(f"unknown project {project!r}")
        return project

    @field_validator("environment")
    @classmethod
    def _known_environment(cls, environment: str, info: ValidationInfo) -> str:
        known = _known_projects(info)
        project = known.get(info.data.get("project", "")) if known else None
        if project is not None and project.environment(environment) is None:
            raise ValueError(
                f"unknown environment {environment!r} in project {project.key!r}"
            )
        return environment


def _known_projects(info: ValidationInfo) -> dict[str, ProjectSpec] | None:
    """The scenario's projects, once validated (None: references go unchecked)."""
    context = info.context
    return context.get(_PROJECTS) if isinstance(context, dict) else None


class IntegrationSpec(_InEnvironment):
    """One big segment store integration as the scenario starts it."""

    id: NonEmpty
    kind: Literal["redis", "dynamodb"]
    name: NonEmpty
    on: StrictBool = True
    tags: Tags = ()
    version: Annotated[StrictInt, Field(ge=1)] = 1
    config: dict[str, Any] = Field(default_factory=dict)
    status: Status = Status()

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        data = present(data)
        if isinstance(data, dict) and "name" not in data:
            kind, project, environment = (
                data.get(k) for k in ("kind", "project", "environment")
            )
            data["name"] = f"{kind} {project}/{environment}"
        return data

    @field_validator("id")
    @classmethod
    def _no_slash(cls, value: str) -> str:
        if "/" in value:
            raise ValueError("must not contain '/'")
        return value

    @field_validator("config")
    @classmethod
    def _normalised_config(
        cls, config: dict[str, Any], info: ValidationInfo
    ) -> dict[str, Any]:
        if info.data.get("kind") == "redis":
            return normalise_redis_config(config)
        return config


class SegmentSpec(_InEnvironment):
    """One segment's metadata, for `GET /api/v2/segments/...`."""

    key: NonEmpty
    name: NonEmpty
    generation: Annotated[StrictInt, Field(ge=0)] = 1
    unbounded: StrictBool = True
    unbounded_context_kind: NonEmpty = "user"
    tags: Tags = ()
    version: Annotated[StrictInt, Field(ge=1)] = 1

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any) -> Any:
        data = present(data)
        if isinstance(data, dict) and data.get("key") is not None:
            data.setdefault("name", data["key"])
        return data


class Scenario(Spec):
    """Everything the simulator starts with; build it with `from_dict`."""

    token: NonEmpty | None = None
    forbidden_tokens: Tags = ()
    rate_limit: RateLimit = RateLimit()
    list_config: ListConfig = "full"
    # Validated even when absent: references are checked against no projects.
    projects: tuple[ProjectSpec, ...] = Field(default=(), validate_default=True)
    integrations: Annotated[
        tuple[IntegrationSpec, ...], _unique("id", "integration id")
    ] = ()
    segments: tuple[SegmentSpec, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _derive_ids(cls, data: Any) -> Any:
        """Give each integration without an id a stable one (its list index too)."""
        data = present(data)
        if isinstance(data, dict) and isinstance(data.get("integrations"), list):
            data["integrations"] = [
                _with_id(item, index) for index, item in enumerate(data["integrations"])
            ]
        return data

    @field_validator("projects")
    @classmethod
    def _unique_projects(
        cls, projects: tuple[ProjectSpec, ...], info: ValidationInfo
    ) -> tuple[ProjectSpec, ...]:
        """Check the keys, then make the projects known to later references."""
        _require_unique([p.key for p in projects], "project key")
        if isinstance(info.context, dict):
            info.context[_PROJECTS] = {p.key: p for p in projects}
        return projects

    @classmethod
    def from_dict(cls, data: object, *, source: str = "scenario") -> Scenario:
        """Build a scenario from parsed YAML/JSON; raise ValueError listing problems."""
        try:
            # Fields validate in order: projects first, then what refers to them.
            return cls.model_validate(data, context={})
        except ValidationError as err:
            lines = "\n".join(f"  {line}" for line in problems(err))
            raise ValueError(f"{source}: invalid scenario:\n{lines}") from None


def _with_id(item: object, index: int) -> object:
    """Add the derived id to an integration entry that has none."""
    item = present(item)
    if not isinstance(item, dict) or "id" in item:
        return item
    parts = (str(item.get(k, "")) for k in ("project", "environment", "kind"))
    return {**item, "id": derived_hex("integration", *parts, str(index))}


def _require_unique(values: list[str], what: str) -> None:
    """Raise ValueError naming the first value that occurs twice."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


def normalise_redis_config(config: dict[str, Any]) -> dict[str, Any]:
    """Store a numeric Redis `port` as a string, as the API does; reject other types."""
    port = config.get("port")
    if isinstance(port, int) and not isinstance(port, bool):
        return {**config, "port": str(port)}
    if port is not None and not isinstance(port, str):
        raise ValueError("port must be a string or an integer")
    return dict(config)


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


def load_demo_scenario() -> Scenario:
    """Return the bundled demo scenario (`scenarios/demo.yaml`)."""
    resource = resources.files("devtools.ldsim") / "scenarios" / "demo.yaml"
    return parse_scenario(resource.read_text(encoding="utf-8"), source="demo.yaml")


def _load_yaml(text: str) -> Any:
    """Parse YAML safely, with YAML 1.2 booleans."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass
