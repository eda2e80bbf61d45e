"""Malformed API replies: counted, logged once per round, and contained.

A list reply carries valid integrations next to one malformed case. Each
case must add exactly what `monitor/launchdarkly/models.py` reports for it
to `ld_store_api_parse_errors_total`, be logged as `api.parse_problems`, and
leave every other integration's series exactly as before.

A case that concerns an integration already known ("X") is served the way
the API would send it: X is re-listed with the same `version`, so discovery
keeps the details it fetched and takes only the listed `_status` anew.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import structlog
from structlog.testing import capture_logs

from devtools.ldsim import Scenario, Simulator, SimulatorServer
from devtools.ldsim.scenario import ListConfig
from monitor.config import ApiConfig, Filters
from monitor.launchdarkly.client import LaunchDarklyClient
from monitor.launchdarkly.discovery import Discovery
from monitor.launchdarkly.models import (
    MAX_ERRORS_KEPT,
    DynamoDBSettings,
    RedisSettings,
)
from monitor.service.state import MonitorState
from tests.support.scrape import Scrape
from tests.support.state import refresh_view, state_of

TOKEN = "malformed-api-token"
A = "00000000000000000000000a"
B = "00000000000000000000000b"
X = "00000000000000000000000c"
LAST_SYNC_MS = 1_750_000_000_000  # absolute, so values compare across rounds
LAST_ERROR_MS = 1_749_990_000_000
HUGE_ERRORS = 50_000

SCENARIO: dict[str, Any] = {
    "token": TOKEN,
    "projects": [
        {
            "key": "web",
            "environments": [
                {"key": "production", "client_side_id": "cid-web-production"},
                {"key": "staging", "client_side_id": "cid-web-staging"},
            ],
        },
        {
            "key": "mobile",
            "environments": [
                {"key": "production", "client_side_id": "cid-mobile-production"}
            ],
        },
    ],
    "integrations": [
        {
            "id": A,
            "project": "web",
            "environment": "production",
            "kind": "redis",
            "name": "web production",
            "config": {"host": "redis-a.internal", "port": "6379"},
            "status": {
                "available": True,
                "potentiallyStale": False,
                "lastSync": LAST_SYNC_MS,
            },
        },
        {
            "id": B,
            "project": "web",
            "environment": "staging",
            "kind": "dynamodb",
            "name": "web staging",
            "config": {"tableName": "ld-staging", "region": "us-east-1"},
            "status": {
                "available": False,
                "lastSync": LAST_SYNC_MS - 3_600_000,
                "lastError": LAST_ERROR_MS,
                "errors": [
                    {"statusCode": 500, "message": "boom", "timestamp": LAST_ERROR_MS}
                ],
            },
        },
        {
            "id": X,
            "project": "mobile",
            "environment": "production",
            "kind": "redis",
            "name": "mobile production",
            "config": {"host": "redis-x.internal", "port": "6380"},
            "status": {"available": True, "lastSync": LAST_SYNC_MS},
        },
    ],
}

API_SERIES = (
    "ld_store_integration_info",
    "ld_store_api_available",
    "ld_store_api_potentially_stale",
    "ld_store_api_last_sync_timestamp_seconds",
    "ld_store_api_last_error_timestamp_seconds",
    "ld_store_api_recent_errors",
    "ld_store_api_errors_total",
)


def api_values(scrape: Scrape, integration_id: str) -> dict[object, float]:
    """Every API-side sample of one integration (ages excluded: they move)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for name in API_SERIES
        for s in scrape.find(name, integration_id=integration_id)
    }


def listed_doc(sim: Simulator, integration_id: str) -> dict[str, Any]:
    """The integration as the list reply shows it."""
    return sim.integration_doc(sim.integrations[integration_id], redact=True)


def relist_x(sim: Simulator, change: Callable[[dict[str, Any]], None]) -> None:
    """Serve X, same version, changed by `change`, as a verbatim list item."""
    doc = listed_doc(sim, X)
    change(doc)
    sim.delete_integration(X)
    sim.set_raw_items([doc])


@dataclass(frozen=True)
class Case:
    """A malformed reply, the parse problems it is worth, and how X must look after."""

    name: str
    apply: Callable[[Simulator], None]
    problems: int
    where: str  # the location the logged problem names
    check_x: Callable[[Scrape, dict[object, float]], None]


def _invalid_json(sim: Simulator) -> None:
    sim.faults.malformed_next()


def _x_unchanged(scrape: Scrape, before: dict[object, float]) -> None:
    assert api_values(scrape, X) == before


def _last_sync_string(sim: Simulator) -> None:
    relist_x(sim, lambda d: d["_status"].update(lastSync="2025-06-15T12:00:00Z"))


def _x_without_last_sync(scrape: Scrape, before: dict[object, float]) -> None:
    assert (
        scrape.value("ld_store_api_last_sync_timestamp_seconds", integration_id=X)
        is None
    )
    assert scrape.value("ld_store_api_available", integration_id=X) == 1
    assert scrape.value("ld_store_integration_info", integration_id=X) == 1


def _port_number(sim: Simulator) -> None:
    relist_x(sim, lambda d: d["config"].update(port=6380))


def _config_without_host(sim: Simulator) -> None:
    relist_x(sim, lambda d: d.update(config={"port": "6380"}))


def _missing_status(sim: Simulator) -> None:
    relist_x(sim, lambda d: d.pop("_status"))


def _x_without_status(scrape: Scrape, before: dict[object, float]) -> None:
    assert scrape.value("ld_store_integration_info", integration_id=X) == 1
    assert scrape.value("ld_store_api_available", integration_id=X) is None
    assert (
        scrape.value("ld_store_api_last_sync_timestamp_seconds", integration_id=X)
        is None
    )
    assert scrape.value("ld_store_api_recent_errors", integration_id=X) == 0


def _unknown_kind(sim: Simulator) -> None:
    doc = listed_doc(sim, X)
    doc.update({"_id": "0000000000000000000cafe0", "integrationKey": "cassandra"})
    sim.set_raw_items([doc])


def _duplicate_id(sim: Simulator) -> None:
    impostor = listed_doc(sim, A)
    impostor["name"] = "impostor"
    impostor["_status"] = {"available": False, "lastSync": 1}
    sim.set_raw_items([impostor])


def _huge_errors(sim: Simulator) -> None:
    errors = [
        {"statusCode": 503, "message": f"timeout {i}", "timestamp": LAST_ERROR_MS + i}
        for i in range(HUGE_ERRORS)
    ]
    relist_x(sim, lambda d: d["_status"].update(errors=errors))


def _x_with_huge_errors(scrape: Scrape, before: dict[object, float]) -> None:
    # The gauge counts every entry of the reply; the counter only the kept ones.
    assert scrape.value("ld_store_api_recent_errors", integration_id=X) == HUGE_ERRORS
    assert scrape.value(
        "ld_store_api_errors_total", integration_id=X, status_code="503"
    ) == float(MAX_ERRORS_KEPT)


CASES = (
    # The reply is not JSON at all: nothing in it is usable, one problem.
    Case("invalid_json", _invalid_json, 1, "", _x_unchanged),
    # _opt(raw, "lastSync", int): a string is dropped and reported.
    Case(
        "last_sync_string",
        _last_sync_string,
        1,
        "_status.lastSync",
        _x_without_last_sync,
    ),
    # _parse_port: a number is used, but reported as unexpected.
    Case("port_number", _port_number, 1, "config.port", _x_unchanged),
    # parse_settings: a non-empty list config without a host is reported
    # (an empty one is normal; see the test after the cases).
    Case("config_without_host", _config_without_host, 1, "config.host", _x_unchanged),
    # parse_status(None): reported as missing, every field absent.
    Case("missing_status", _missing_status, 1, "_status", _x_without_status),
    # parse_integration: an unknown integrationKey drops the item.
    Case("unknown_integration_key", _unknown_kind, 1, "integrationKey", _x_unchanged),
    # parse_integration_list: a second item with a known _id, the first is kept.
    Case("duplicate_id", _duplicate_id, 1, "_id", _x_unchanged),
    # parse_status: only MAX_ERRORS_KEPT entries are parsed; one problem says so.
    Case("huge_errors", _huge_errors, 1, "_status.errors", _x_with_huge_errors),
)


@dataclass
class Watched:
    """The simulator and a discovery (with the state /metrics reads) over it."""

    sim: Simulator
    discovery: Discovery
    _state: MonitorState

    @property
    def state(self) -> MonitorState:
        """The state after the discovery's latest round, as the monitor keeps it."""
        refresh_view(self._state, self.discovery)
        return self._state


@pytest.fixture
async def watched() -> AsyncIterator[Watched]:
    """The simulator on loopback and a discovery with its client."""
    sim = Simulator(Scenario.from_dict(SCENARIO))
    async with SimulatorServer(sim) as server, aiohttp.ClientSession() as session:
        api = ApiConfig.model_validate(
            {"base_url": server.url, "token": TOKEN, "timeout": 5, "interval": 10}
        )
        log = structlog.get_logger("test")
        client = LaunchDarklyClient(session, api, log)
        discovery = Discovery(client, Filters(), log)
        yield Watched(sim, discovery, state_of(discovery=discovery))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_malformed_reply_is_counted_logged_and_contained(
    case: Case, watched: Watched
) -> None:
    """Exactly the reported problems are counted and logged once; the other integrations keep their values."""
    assert (await watched.discovery.run_once()).ok
    before = Scrape.of(watched.state)
    assert before.value("ld_store_api_parse_errors_total") == 0
    good = {i: api_values(before, i) for i in (A, B)}
    assert all(good.values())
    x_before = api_values(before, X)

    case.apply(watched.sim)
    with capture_logs() as logs:
        await watched.discovery.run_once()
    after = Scrape.of(watched.state)

    assert after.value("ld_store_api_parse_errors_total") == case.problems
    logged = [e for e in logs if e["event"] == "api.parse_problems"]
    assert len(logged) == 1
    assert logged[0]["count"] == case.problems
    assert any(case.where in item for item in logged[0]["sample"])
    assert len(logged[0]["sample"]) <= 10
    assert {i: api_values(after, i) for i in (A, B)} == good
    case.check_x(after, x_before)


async def test_invalid_json_keeps_the_previous_view(watched: Watched) -> None:
    """A reply that is not JSON fails the round: api_up 0, every known series stays."""
    assert (await watched.discovery.run_once()).ok
    before = Scrape.of(watched.state)
    watched.sim.faults.malformed_next()
    outcome = await watched.discovery.run_once()
    after = Scrape.of(watched.state)
    assert not outcome.ok
    assert after.value("ld_store_api_up") == 0
    assert after.value("ld_store_discovery_last_success_timestamp_seconds") == (
        before.value("ld_store_discovery_last_success_timestamp_seconds")
    )
    for integration_id in (A, B, X):
        assert api_values(after, integration_id) == api_values(before, integration_id)


async def test_malformed_items_are_counted_together(watched: Watched) -> None:
    """Several bad items in one reply: their problems add up, one log line carries them."""
    assert (await watched.discovery.run_once()).ok
    impostor = listed_doc(watched.sim, A)
    unknown = copy.deepcopy(impostor)
    unknown.update({"_id": "0000000000000000000cafe0", "integrationKey": "cassandra"})
    watched.sim.set_raw_items([impostor, unknown, "not an object", {"_id": 7}])
    with capture_logs() as logs:
        assert (await watched.discovery.run_once()).ok
    after = Scrape.of(watched.state)
    # duplicate id; unknown kind; "expected object, got str"; for {"_id": 7}:
    # _id of the wrong type, then "cannot identify" (missing every key).
    assert after.value("ld_store_api_parse_errors_total") == 5
    (logged,) = [e for e in logs if e["event"] == "api.parse_problems"]
    assert logged["count"] == 5
    assert after.value("ld_store_integration_info", integration_id=A) == 1


@pytest.mark.parametrize("list_config", ["empty", "absent"])
async def test_list_items_without_config_add_no_parse_problem_over_many_rounds(
    watched: Watched, list_config: ListConfig
) -> None:
    """List items with `config: {}` (or none) are summaries: nothing counted or logged, ever.

    The detail GET brings the config, also after a change bumps the version.
    """
    watched.sim.list_config = list_config
    with capture_logs() as logs:
        for round_no in range(30):
            if round_no == 10:
                watched.sim.update_config(A, host="redis-a2.internal")
            assert (await watched.discovery.run_once()).ok
    scrape = Scrape.of(watched.state)
    assert scrape.value("ld_store_api_parse_errors_total") == 0
    assert [e for e in logs if e["event"] == "api.parse_problems"] == []
    assert [e for e in logs if e["log_level"] == "warning"] == []
    settings = {
        i.integration.id: i.integration.settings
        for i in watched.discovery.view.integrations
    }
    assert settings == {
        A: RedisSettings("redis-a2.internal", 6379, None, tls_enabled=False),
        B: DynamoDBSettings("ld-staging", "us-east-1"),
        X: RedisSettings("redis-x.internal", 6380, None, tls_enabled=False),
    }
    assert watched.sim.stats.count("get_integration") == 4  # three, then A again
