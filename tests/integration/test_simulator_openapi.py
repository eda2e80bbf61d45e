"""The simulator's replies conform to LaunchDarkly's OpenAPI schemas."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import aiohttp
import pytest
from jsonschema import Draft4Validator, Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

from devtools.ldsim import Simulator, SimulatorServer, load_demo_scenario
from devtools.ldsim.scenario import RateLimit

DATA = Path(__file__).resolve().parents[1] / "data"
SPEC: dict[str, Any] = json.loads((DATA / "ld-openapi-bigsegment.json").read_text())
ENVIRONMENT_SCHEMA: dict[str, Any] = json.loads(
    (DATA / "environment.schema.json").read_text()
)
SPEC_URI = "urn:ld-openapi-bigsegment"
# OpenAPI 3.0 schema objects are a draft-4-style JSON Schema dialect.
REGISTRY: Registry[Any] = Registry().with_resource(
    SPEC_URI, DRAFT4.create_resource(SPEC)
)

TOKEN = "sim-token"
API = {"Authorization": TOKEN, "LD-API-Version": "beta"}
REDIS_ID = "65a1c2d3e4f5061728394a01"  # demo: web/production, full _status
COLLECTION = "/api/v2/integration-capabilities/big-segment-store"
ONE = f"{COLLECTION}/{{projectKey}}/{{environmentKey}}/{{integrationKey}}"
BY_ID = f"{ONE}/{{integrationId}}"
CREATE_URL = f"{COLLECTION}/web/staging/redis"
REDIS_URL = f"{COLLECTION}/web/production/redis/{REDIS_ID}"
CREATE_BODY = {
    "config": {"host": "redis-new.internal", "port": "6379", "password": "s3cret-pass"},
    "name": "New store",
    "on": True,
    "tags": ["new"],
}
# (spec path, method) -> (URL, a valid body); errors are made from these. The
# spec's PATCH and DELETE of an integration are not simulated: nothing uses them.
OPERATIONS: dict[tuple[str, str], tuple[str, Any]] = {
    (COLLECTION, "get"): (COLLECTION, None),
    (ONE, "post"): (CREATE_URL, CREATE_BODY),
    (BY_ID, "get"): (REDIS_URL, None),
}
# Declared by the spec but impossible here: the list takes no path parameters.
UNREACHABLE = {(COLLECTION, "get", 404)}


class ErrorCase(NamedTuple):
    """One declared error reply of one operation, and a valid request to spoil."""

    path: str
    method: str
    status: int
    url: str
    body: Any


def component(name: str) -> Draft4Validator:
    """Return a validator for `#/components/schemas/<name>` of the OpenAPI slice."""
    return Draft4Validator(
        {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}, registry=REGISTRY
    )


def response_validator(path: str, method: str, status: int) -> Draft4Validator:
    """Return a validator for the JSON schema the spec declares for this reply."""
    responses = SPEC["paths"][path][method]["responses"]
    assert str(status) in responses, f"spec declares no {status} for {method} {path}"
    ref = responses[str(status)]["content"]["application/json"]["schema"]["$ref"]
    return Draft4Validator({"$ref": f"{SPEC_URI}{ref}"}, registry=REGISTRY)


def declared(name: str) -> set[str]:
    """Return the property names a component schema declares."""
    return set(SPEC["components"]["schemas"][name]["properties"])


def assert_integration_fields_declared(item: dict[str, Any]) -> None:
    """Fail on any field the schemas do not declare (catches misspelt names)."""
    assert set(item) <= declared("BigSegmentStoreIntegration")
    assert set(item["_links"]) <= declared("BigSegmentStoreIntegrationLinks")
    assert set(item["_status"]) <= declared("BigSegmentStoreStatus")
    for error in item["_status"].get("errors", []):
        assert set(error) <= declared("StoreIntegrationError")


def error_cases() -> list[Any]:
    """Return one case per error status the spec declares for each operation."""
    cases = []
    for (path, method), (url, body) in OPERATIONS.items():
        for code in SPEC["paths"][path][method]["responses"]:
            status = int(code)
            if status < 400 or (path, method, status) in UNREACHABLE:
                continue
            case_id = f"{SPEC['paths'][path][method]['operationId']}-{status}"
            case = ErrorCase(path, method, status, url, body)
            cases.append(pytest.param(case, id=case_id))
    return cases


@pytest.fixture
def sim() -> Simulator:
    """A simulator serving the bundled demo scenario."""
    return Simulator(load_demo_scenario(), token=TOKEN)


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session talking to `sim` over real HTTP."""
    async with (
        SimulatorServer(sim) as server,
        aiohttp.ClientSession(base_url=server.url) as session,
    ):
        yield session


async def call(
    client: aiohttp.ClientSession,
    method: str,
    url: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """Send a request; return the status and the parsed JSON body (None if empty)."""
    async with client.request(
        method, url, json=body, headers=API if headers is None else headers
    ) as resp:
        raw = await resp.read()
        return resp.status, json.loads(raw) if raw else None


async def test_list_reply_matches_the_collection_schema(
    client: aiohttp.ClientSession,
) -> None:
    """The list reply validates as `BigSegmentStoreIntegrationCollection`."""
    status, body = await call(client, "GET", COLLECTION)
    assert status == 200
    response_validator(COLLECTION, "get", 200).validate(body)
    assert set(body) <= declared("BigSegmentStoreIntegrationCollection")
    assert len(body["items"]) == 8
    for item in body["items"]:
        component("BigSegmentStoreIntegration").validate(item)
        assert_integration_fields_declared(item)


async def test_get_reply_matches_the_integration_schema(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """Every integration, by id, validates as `BigSegmentStoreIntegration`."""
    validator = response_validator(BY_ID, "get", 200)
    for integration in sim.integrations.values():
        url = f"{COLLECTION}/{integration.project}/{integration.environment}/"
        status, body = await call(
            client, "GET", f"{url}{integration.kind}/{integration.id}"
        )
        assert status == 200
        validator.validate(body)
        assert_integration_fields_declared(body)
    _, redis = await call(client, "GET", REDIS_URL)
    assert set(redis["_status"]) == {"available", "potentiallyStale", "lastSync"}


async def test_create_request_and_reply_match_the_schemas(
    client: aiohttp.ClientSession,
) -> None:
    """A valid `IntegrationDeliveryConfigurationPost` body gets a conforming 201."""
    component("IntegrationDeliveryConfigurationPost").validate(CREATE_BODY)
    status, body = await call(client, "POST", CREATE_URL, CREATE_BODY)
    assert status == 201
    response_validator(ONE, "post", 201).validate(body)
    assert_integration_fields_declared(body)


@pytest.mark.parametrize("case", error_cases())
async def test_error_replies_match_the_declared_schemas(
    client: aiohttp.ClientSession, sim: Simulator, case: ErrorCase
) -> None:
    """Each error the spec lists for an operation validates against its schema."""
    path, method, status, url, body = case
    headers: dict[str, str] = dict(API)
    if status == 400:
        body = {"config": {"port": 6379}}
    elif status == 401:
        headers = {"LD-API-Version": "beta"}
    elif status == 403:
        headers = {"Authorization": TOKEN}
    elif status == 404:
        url = url.replace("/web/", "/no-such-project/")
    elif status == 409:
        # The same name, kind and environment again.
        assert (await call(client, method.upper(), url, body, headers))[0] == 201
    elif status == 429:
        sim.rate_limiter.limit = RateLimit(global_budget=0, route_budget=0)
    got, reply = await call(client, method.upper(), url, body, headers)
    assert got == status
    response_validator(path, method, status).validate(reply)
    assert set(reply) == {"code", "message", "id"}


def test_every_declared_error_is_exercised() -> None:
    """The error cases cover all declared error statuses except the unreachable ones."""
    declared_errors = {
        (path, method, int(code))
        for (path, method) in OPERATIONS
        for code in SPEC["paths"][path][method]["responses"]
        if int(code) >= 400
    }
    cases = [p.values[0] for p in error_cases()]
    covered = {(c.path, c.method, c.status) for c in cases if isinstance(c, ErrorCase)}
    assert covered == declared_errors - UNREACHABLE
    assert len(covered) == 13


async def test_environment_reply_matches_the_environment_schema(
    client: aiohttp.ClientSession,
) -> None:
    """Every demo environment validates against the Environment schema."""
    validator = Draft7Validator(ENVIRONMENT_SCHEMA)
    for project, env in (
        ("web", "production"),
        ("web", "staging"),
        ("mobile", "production"),
    ):
        status, body = await call(
            client,
            "GET",
            f"/api/v2/projects/{project}/environments/{env}",
            headers={"Authorization": TOKEN},
        )
        assert status == 200
        validator.validate(body)
        assert set(body) <= set(ENVIRONMENT_SCHEMA["properties"])
