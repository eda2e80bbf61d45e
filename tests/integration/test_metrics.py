"""The exposition: values for integrations in several states, in both formats."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import structlog
from prometheus_client import generate_latest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from devtools.ldsim import Scenario, Simulator, SimulatorServer
from monitor.config import ApiConfig, Filters
from monitor.export.metrics import render_metrics
from monitor.launchdarkly.client import LaunchDarklyClient
from monitor.launchdarkly.discovery import Discovery
from monitor.service.state import MonitorState
from tests.support.scrape import make_registry
from tests.support.state import refresh_view, state_of

NOW = 1_800_000_000.0

SCENARIO = {
    "token": "tok",
    "projects": [
        {
            "key": "web",
            "environments": [{"key": "prod", "client_side_id": "cid-web-prod"}],
        }
    ],
    "integrations": [
        {
            "id": "healthy",
            "project": "web",
            "environment": "prod",
            "kind": "redis",
            "name": "Healthy",
            "config": {"host": "h1", "port": "6379"},
            "status": {
                "available": True,
                "potentiallyStale": False,
                "lastSync": int((NOW - 20) * 1000),
            },
        },
        {
            "id": "stale",
            "project": "web",
            "environment": "prod",
            "kind": "redis",
            "name": "Stale",
            "config": {"host": "h2", "port": "6379"},
            "status": {
                "available": True,
                "potentiallyStale": True,
                "lastSync": int((NOW - 900) * 1000),
            },
        },
        {
            "id": "broken",
            "project": "web",
            "environment": "prod",
            "kind": "dynamodb",
            "name": "Broken",
            "on": False,
            "config": {"tableName": "t", "region": "us-east-1"},
            "status": {
                "available": False,
                "lastError": int((NOW - 60) * 1000),
                "errors": [
                    {
                        "statusCode": 403,
                        "message": "denied",
                        "timestamp": int((NOW - 60) * 1000),
                    },
                    {
                        "statusCode": 500,
                        "message": "boom",
                        "timestamp": int((NOW - 120) * 1000),
                    },
                ],
            },
        },
        {
            "id": "silent",
            "project": "web",
            "environment": "prod",
            "kind": "redis",
            "config": {"host": "h3"},
            "status": {},
        },
    ],
}


@pytest.fixture
async def state() -> AsyncIterator[tuple[MonitorState, Discovery, Simulator]]:
    """A monitor state after one discovery round against the simulator."""
    simulator = Simulator(Scenario.from_dict(SCENARIO), clock=lambda: NOW)
    async with SimulatorServer(simulator) as server, aiohttp.ClientSession() as session:
        api = ApiConfig.model_validate({"base_url": server.url, "token": "tok"})
        client = LaunchDarklyClient(
            session, api, structlog.get_logger("test"), clock=lambda: NOW
        )
        discovery = Discovery(
            client, Filters(), structlog.get_logger("test"), clock=lambda: NOW
        )
        await discovery.run_once()
        yield state_of(discovery=discovery), discovery, simulator


def samples(
    text: str, openmetrics: bool = False
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """name+labels -> value for every sample of an exposition."""
    parse = parse_openmetrics if openmetrics else parse_text
    found = {}
    for family in parse(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def key(
    metric: str, integration_id: str, kind: str = "redis", **extra: str
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Sample key of a per-integration series."""
    labels = {
        "project": "web",
        "environment": "prod",
        "integration": kind,
        "integration_id": integration_id,
        **extra,
    }
    return (metric, tuple(sorted(labels.items())))


async def test_api_status_metrics_per_state(
    state: tuple[MonitorState, Discovery, Simulator],
) -> None:
    """Each _status field maps to its gauge; absent fields give absent series."""
    monitor_state, _, _ = state
    values = samples(
        generate_latest(make_registry(monitor_state, clock=lambda: NOW + 10)).decode()
    )
    assert values[key("ld_store_api_available", "healthy")] == 1.0
    assert values[key("ld_store_api_potentially_stale", "healthy")] == 0.0
    assert (
        values[key("ld_store_api_last_sync_timestamp_seconds", "healthy")] == NOW - 20
    )
    assert (
        values[key("ld_store_api_last_sync_age_seconds", "healthy")] == 30.0
    )  # computed at scrape
    assert values[key("ld_store_api_potentially_stale", "stale")] == 1.0
    assert values[key("ld_store_api_last_sync_age_seconds", "stale")] == 910.0
    assert values[key("ld_store_api_available", "broken", "dynamodb")] == 0.0
    assert (
        values[key("ld_store_api_last_error_timestamp_seconds", "broken", "dynamodb")]
        == NOW - 60
    )
    assert values[key("ld_store_api_recent_errors", "broken", "dynamodb")] == 2.0
    assert (
        values[
            key("ld_store_api_errors_total", "broken", "dynamodb", status_code="403")
        ]
        == 1.0
    )
    assert (
        values[
            key("ld_store_api_errors_total", "broken", "dynamodb", status_code="500")
        ]
        == 1.0
    )
    assert (
        values[
            key(
                "ld_store_integration_info",
                "broken",
                "dynamodb",
                name="Broken",
                on="false",
            )
        ]
        == 1.0
    )
    assert key("ld_store_api_available", "silent") not in values
    assert key("ld_store_api_last_sync_timestamp_seconds", "silent") not in values
    assert values[key("ld_store_api_recent_errors", "silent")] == 0.0
    assert values[("ld_store_api_up", ())] == 1.0
    assert values[("ld_store_discovery_last_success_timestamp_seconds", ())] == NOW
    assert (
        values[
            (
                "ld_store_api_requests_total",
                (("code", "200"), ("endpoint", "list_integrations")),
            )
        ]
        == 1.0
    )
    ((build, labels),) = [k for k in values if k[0] == "ld_store_build_info"]
    assert dict(labels).keys() == {"version", "revision", "python_version"}
    assert dict(labels)["version"] == "0.1.0"
    assert values[build, labels] == 1.0


async def test_exposition_parses_as_text_and_openmetrics(
    state: tuple[MonitorState, Discovery, Simulator],
) -> None:
    """The daemon's own writer: both formats parse with prometheus_client's parsers, same samples."""
    monitor_state, _, _ = state
    text = render_metrics(monitor_state, clock=lambda: NOW).decode()
    openmetrics = render_metrics(
        monitor_state, openmetrics=True, clock=lambda: NOW
    ).decode()
    assert openmetrics.endswith("# EOF\n")
    assert samples(openmetrics, openmetrics=True) == samples(text)
    assert "# TYPE ld_store_api_errors counter" in openmetrics
    assert "# TYPE ld_store_api_errors_total counter" in text


async def test_writer_matches_prometheus_client_output(
    state: tuple[MonitorState, Discovery, Simulator],
) -> None:
    """Re-encoding the parsed families with prometheus_client gives the same samples."""
    monitor_state, _, _ = state
    ours = samples(render_metrics(monitor_state, clock=lambda: NOW).decode())
    theirs = samples(
        generate_latest(make_registry(monitor_state, clock=lambda: NOW)).decode()
    )
    assert ours == theirs
    assert len(ours) > 20


async def test_deleted_integration_series_disappear(
    state: tuple[MonitorState, Discovery, Simulator],
) -> None:
    """After an integration is deleted, its series are gone from the next scrape."""
    monitor_state, discovery, simulator = state
    simulator.delete_integration("broken")
    await discovery.run_once()
    refresh_view(monitor_state, discovery)
    text = generate_latest(make_registry(monitor_state, clock=lambda: NOW)).decode()
    assert 'integration_id="broken"' not in text
    assert 'integration_id="healthy"' in text
