"""The REST endpoints the simulator answers, and LaunchDarkly's error shape."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web

from devtools.ldsim.scenario import INTEGRATION_KINDS, EnvironmentSpec, ProjectSpec
from devtools.ldsim.state import INTEGRATIONS_PATH, Integration, SimulatorState

_ONE: Final = f"{INTEGRATIONS_PATH}/{{project}}/{{environment}}/{{kind}}"
ROUTES: Final = (
    ("GET", INTEGRATIONS_PATH, "list_integrations"),
    ("POST", _ONE, "create_integration"),
    ("GET", f"{_ONE}/{{id}}", "get_integration"),
    ("GET", "/api/v2/projects/{project}/environments/{environment}", "get_environment"),
    ("GET", "/api/v2/segments/{project}/{environment}/{segment}", "get_segment"),
)
BETA_ENDPOINTS: Final = frozenset(
    {"list_integrations", "create_integration", "get_integration"}
)
_ERROR_CODES: Final = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    429: "rate_limited",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}

ApiHandler = Callable[[web.Request], Awaitable[web.Response]]


class ApiError(Exception):
    """An error reply in LaunchDarkly's shape, raised inside a handler."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _ERROR_CODES.get(status, "error")
        self.message = message

    def response(self) -> web.Response:
        """Return the reply: `{"code", "message", "id"}`."""
        return json_response(self.status, error_body(self.code, self.message))


def error_body(code: str, message: str) -> dict[str, str]:
    """Return an error document with a fresh correlation id."""
    return {"code": code, "message": message, "id": str(uuid.uuid4())}


def json_response(status: int, doc: Any) -> web.Response:
    """Return a JSON reply."""
    return web.Response(
        status=status, body=json.dumps(doc).encode(), content_type="application/json"
    )


class Endpoints:
    """Handlers for each REST endpoint over the simulator's state."""

    def __init__(self, state: SimulatorState) -> None:
        self._state = state
        self.handlers: dict[str, ApiHandler] = {
            "list_integrations": self.list_integrations,
            "create_integration": self.create_integration,
            "get_integration": self.get_integration,
            "get_environment": self.get_environment,
            "get_segment": self.get_segment,
        }

    async def list_integrations(self, _request: web.Request) -> web.Response:
        """List every integration plus the raw items."""
        return json_response(200, self._state.collection_doc())

    async def get_integration(self, request: web.Request) -> web.Response:
        """Return one integration."""
        doc = self._state.integration_doc(self._lookup(request), redact=True)
        return json_response(200, doc)

    async def create_integration(self, request: web.Request) -> web.Response:
        """Create an integration from an `IntegrationDeliveryConfigurationPost`."""
        info = request.match_info
        kind = info["kind"]
        if kind not in INTEGRATION_KINDS:
            raise ApiError(
                400, f"integrationKey must be redis or dynamodb, not {kind!r}"
            )
        self._environment_or_404(info["project"], info["environment"])
        body = await _read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "body must be an IntegrationDeliveryConfigurationPost")
        if not isinstance(body.get("config"), dict):
            raise ApiError(400, "config is required and must be an object")
        _check_fields({"on": False, "tags": [], "name": "", **body}, kind)
        name = body.get("name", "")
        if any(
            (i.project, i.environment, i.kind, i.name)
            == (info["project"], info["environment"], kind, name)
            for i in self._state.integrations.values()
        ):
            raise ApiError(
                409,
                f"A {kind} integration named {name!r} already exists in this "
                "environment",
            )
        config = dict(body["config"])
        if kind == "dynamodb":
            # LaunchDarkly generates the external ID for the IAM trust policy.
            config.setdefault("externalId", str(uuid.uuid4()))
        new_id = self._state.add_integration(
            info["project"],
            info["environment"],
            kind,
            name=body.get("name", ""),
            config=config,
            on=body.get("on", False),
            tags=body.get("tags", []),
        )
        integration = self._state.integrations[new_id]
        self._state.created(integration)
        return json_response(201, self._state.integration_doc(integration, redact=True))

    async def get_environment(self, request: web.Request) -> web.Response:
        """Return an environment (its `_id` is the client-side ID)."""
        info = request.match_info
        project, env = self._environment_or_404(info["project"], info["environment"])
        return json_response(200, self._state.environment_doc(project, env))

    async def get_segment(self, request: web.Request) -> web.Response:
        """Return a segment's metadata."""
        info = request.match_info
        self._environment_or_404(info["project"], info["environment"])
        key = (info["project"], info["environment"], info["segment"])
        segment = self._state.segments.get(key)
        if segment is None:
            raise ApiError(404, "Unknown segment")
        return json_response(200, self._state.segment_doc(segment))

    def _lookup(self, request: web.Request) -> Integration:
        """Return the integration a request's path names, or raise 404."""
        info = request.match_info
        self._environment_or_404(info["project"], info["environment"])
        found = self._state.integrations.get(info["id"])
        if found is None or (found.project, found.environment, found.kind) != (
            info["project"],
            info["environment"],
            info["kind"],
        ):
            raise ApiError(404, "Unknown big segment store integration")
        return found

    def _environment_or_404(
        self, project_key: str, environment_key: str
    ) -> tuple[ProjectSpec, EnvironmentSpec]:
        """Return a project and one of its environments, or raise 404."""
        project = self._state.projects.get(project_key)
        if project is None:
            raise ApiError(404, "Unknown project")
        environment = project.environment(environment_key)
        if environment is None:
            raise ApiError(404, "Unknown environment")
        return project, environment


async def _read_json(request: web.Request) -> Any:
    """Return the parsed request body or raise 400."""
    try:
        return json.loads(await request.read())
    except ValueError as err:
        raise ApiError(400, f"request body is not valid JSON: {err}") from err


def _check_fields(doc: dict[str, Any], kind: str) -> None:
    """Raise 400 if name, on, tags or the config values have the wrong type."""
    if not isinstance(doc.get("name"), str):
        raise ApiError(400, "name must be a string")
    if not isinstance(doc.get("on"), bool):
        raise ApiError(400, "on must be a boolean")
    tags = doc.get("tags")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ApiError(400, "tags must be an array of strings")
    config = doc["config"]
    if kind == "redis":
        # The API checks the Redis manifest's types: `port` is a string, not a number.
        for key in ("host", "port", "username", "password"):
            if key in config and not isinstance(config[key], str):
                raise ApiError(400, f"config.{key} must be a string")
        if "tlsEnabled" in config and not isinstance(config["tlsEnabled"], bool):
            raise ApiError(400, "config.tlsEnabled must be a boolean")
