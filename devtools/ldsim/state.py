"""What the simulator holds (projects, integrations, segments) and how it renders it."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from devtools.ldsim.scenario import (
    INTEGRATION_KINDS,
    EnvironmentSpec,
    ListConfig,
    ProjectSpec,
    Scenario,
    SegmentSpec,
    normalise_redis_config,
)
from devtools.ldsim.status import Status

INTEGRATIONS_PATH: Final = "/api/v2/integration-capabilities/big-segment-store"
_JSON: Final = "application/json"
_SECRET_FIELDS: Final = {"redis": ("password",), "dynamodb": ()}


@dataclass
class Integration:
    """One big segment store integration as stored (secrets in clear)."""

    id: str
    project: str
    environment: str
    kind: str
    name: str
    on: bool
    tags: list[str]
    version: int
    config: dict[str, Any]
    status: Status = field(default_factory=Status)

    @property
    def path(self) -> str:
        """Return the API path of this integration."""
        keys = f"{self.project}/{self.environment}/{self.kind}/{self.id}"
        return f"{INTEGRATIONS_PATH}/{keys}"


@dataclass(frozen=True)
class Segment:
    """One segment's metadata, with its creation time fixed when added."""

    spec: SegmentSpec
    created_ms: int


def link(href: str) -> dict[str, str]:
    """Return a `Link` object."""
    return {"href": href, "type": _JSON}


def mask_secret(value: object) -> object:
    """Mask a secret the way the API does (`sup********123`), keeping non-strings."""
    if not isinstance(value, str) or not value:
        return value
    if len(value) >= 10:
        return f"{value[:3]}{'*' * 8}{value[-3:]}"
    return "*" * 8


def new_integration_id() -> str:
    """Return a fresh id in LaunchDarkly's shape (24 lowercase hex digits)."""
    return secrets.token_hex(12)


class SimulatorState:
    """Projects, environments, integrations and segments, with their mutations."""

    def __init__(self, scenario: Scenario, clock: Callable[[], float]) -> None:
        self.clock = clock
        # Errors are events: relative error times are pinned to the start, so
        # the same error keeps its timestamp across polls, as in the real API.
        self.started = clock()
        self.projects: dict[str, ProjectSpec] = {p.key: p for p in scenario.projects}
        self.integrations: dict[str, Integration] = {}
        self.raw_items: list[Any] = []
        self.list_config: ListConfig = scenario.list_config
        self.segments: dict[tuple[str, str, str], Segment] = {}
        for spec in scenario.integrations:
            self.integrations[spec.id] = Integration(
                id=spec.id,
                project=spec.project,
                environment=spec.environment,
                kind=spec.kind,
                name=spec.name,
                on=spec.on,
                tags=list(spec.tags),
                version=spec.version,
                config=copy.deepcopy(dict(spec.config)),
                status=spec.status,
            )
        for segment in scenario.segments:
            self._put_segment(segment)

    def environment(self, project: str, environment: str) -> EnvironmentSpec | None:
        """Return an environment by project and environment key, if it exists."""
        spec = self.projects.get(project)
        return spec.environment(environment) if spec else None

    def add_integration(
        self,
        project: str,
        environment: str,
        integration_key: str,
        *,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        status: Mapping[str, Any] | Status | None = None,
        on: bool = True,
        tags: Iterable[str] = (),
        integration_id: str | None = None,
        version: int = 1,
    ) -> str:
        """Add an integration and return its `_id`; ValueError on bad input."""
        self._require_environment(project, environment)
        if integration_key not in INTEGRATION_KINDS:
            raise ValueError(
                f"integration key must be redis or dynamodb, not {integration_key!r}"
            )
        new_id = integration_id or new_integration_id()
        if new_id in self.integrations:
            raise ValueError(f"integration {new_id!r} already exists")
        if not isinstance(status, Status):
            status = Status().merged(status or {})
        self.integrations[new_id] = Integration(
            id=new_id,
            project=project,
            environment=environment,
            kind=integration_key,
            name=name
            if name is not None
            else f"{integration_key} {project}/{environment}",
            on=on,
            tags=list(tags),
            version=version,
            config=self._checked_config(integration_key, config or {}),
            status=status,
        )
        return new_id

    def created(self, integration: Integration) -> None:
        """An integration was created through the API (the app simulates the
        first sync from here)."""

    def delete_integration(self, integration_id: str) -> None:
        """Remove an integration; KeyError when unknown."""
        self._get(integration_id)
        del self.integrations[integration_id]

    def update_status(self, integration_id: str, **fields: object) -> None:
        """Merge API-named `_status` fields (None removes one); version unchanged."""
        integration = self._get(integration_id)
        integration.status = integration.status.merged(fields)

    def update_config(self, integration_id: str, **config: object) -> None:
        """Merge `config` into the integration's config and bump its version."""
        integration = self._get(integration_id)
        merged = {**integration.config, **copy.deepcopy(config)}
        integration.config = self._checked_config(integration.kind, merged)
        integration.version += 1

    def set_raw_items(self, items: Iterable[Any]) -> None:
        """Append these items verbatim to every list reply (to test bad items)."""
        self.raw_items = copy.deepcopy(list(items))

    def integration(self, integration_id: str) -> dict[str, Any]:
        """Return the stored document of an integration, secrets unredacted."""
        return self.integration_doc(self._get(integration_id), redact=False)

    def integration_doc(
        self, integration: Integration, *, redact: bool
    ) -> dict[str, Any]:
        """Render an integration as the API returns it (`redact` masks secrets)."""
        config = copy.deepcopy(integration.config)
        if redact:
            for key in _SECRET_FIELDS.get(integration.kind, ()):
                if key in config:
                    config[key] = mask_secret(config[key])
        project_path = f"/api/v2/projects/{integration.project}"
        return {
            "_links": {
                "self": link(integration.path),
                "parent": link(INTEGRATIONS_PATH),
                "project": link(project_path),
                "environment": link(
                    f"{project_path}/environments/{integration.environment}"
                ),
            },
            "_id": integration.id,
            "integrationKey": integration.kind,
            "projectKey": integration.project,
            "environmentKey": integration.environment,
            "config": config,
            "on": integration.on,
            "tags": list(integration.tags),
            "name": integration.name,
            "version": integration.version,
            "_status": integration.status.render(self.clock(), events_at=self.started),
        }

    def collection_doc(self) -> dict[str, Any]:
        """Render the list reply: every integration, then the raw items."""
        items = [
            self._list_item(self.integration_doc(i, redact=True))
            for i in self.integrations.values()
        ]
        return {
            "_links": {"self": link(INTEGRATIONS_PATH)},
            "items": items + copy.deepcopy(self.raw_items),
        }

    def _list_item(self, doc: dict[str, Any]) -> dict[str, Any]:
        """An integration as a list item: its `config` as `list_config` says."""
        if self.list_config == "empty":
            doc["config"] = {}
        elif self.list_config == "absent":
            del doc["config"]
        return doc

    def environment_doc(
        self, project: ProjectSpec, env: EnvironmentSpec
    ) -> dict[str, Any]:
        """Render an environment; `_id` is the client-side ID (the store prefix)."""
        path = f"/api/v2/projects/{project.key}/environments/{env.key}"
        return {
            "_links": {
                "self": link(path),
                "project": link(f"/api/v2/projects/{project.key}"),
            },
            "_id": env.client_side_id,
            "key": env.key,
            "name": env.name,
            "apiKey": env.api_key,
            "mobileKey": env.mobile_key,
            "color": env.color,
            "defaultTtl": 0,
            "secureMode": False,
            "defaultTrackEvents": False,
            "requireComments": False,
            "confirmChanges": False,
            "tags": list(env.tags),
            "critical": env.critical,
        }

    def segment_doc(self, segment: Segment) -> dict[str, Any]:
        """Render a segment's metadata."""
        spec = segment.spec
        parent = f"/api/v2/segments/{spec.project}/{spec.environment}"
        return {
            "_links": {"self": link(f"{parent}/{spec.key}"), "parent": link(parent)},
            "key": spec.key,
            "name": spec.name,
            "description": "",
            "tags": list(spec.tags),
            "creationDate": segment.created_ms,
            "lastModifiedDate": segment.created_ms,
            "version": spec.version,
            "deleted": False,
            "included": [],
            "excluded": [],
            "rules": [],
            "unbounded": spec.unbounded,
            "unboundedContextKind": spec.unbounded_context_kind,
            "generation": spec.generation,
        }

    def _get(self, integration_id: str) -> Integration:
        """Return a stored integration; KeyError naming the id when unknown."""
        try:
            return self.integrations[integration_id]
        except KeyError:
            raise KeyError(f"unknown integration {integration_id!r}") from None

    def _require_environment(self, project: str, environment: str) -> None:
        """Raise ValueError unless the project and environment exist."""
        if project not in self.projects:
            raise ValueError(f"unknown project {project!r}")
        if self.environment(project, environment) is None:
            raise ValueError(
                f"unknown environment {environment!r} in project {project!r}"
            )

    def _checked_config(self, kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """Return a private copy of `config`, normalised like the API stores it."""
        stored = copy.deepcopy(dict(config))
        return normalise_redis_config(stored) if kind == "redis" else stored

    def _put_segment(self, spec: SegmentSpec) -> None:
        """Store a segment, stamping its creation time from the clock."""
        created = int(self.clock() * 1000)
        self.segments[(spec.project, spec.environment, spec.key)] = Segment(
            spec, created
        )
