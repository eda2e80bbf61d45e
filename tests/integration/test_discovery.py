"""The REST client and discovery against the LaunchDarkly API simulator on loopback."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import structlog
from structlog.testing import capture_logs

from devtools.ldsim import Scenario, Simulator, SimulatorServer
from monitor.config import ApiConfig, Filters, Scope, parse_config
from monitor.daemon import Daemon
from monitor.launchdarkly.client import LaunchDarklyClient
from monitor.launchdarkly.discovery import Discovery
from monitor.launchdarkly.errors import ApiError, ApiErrorKind
from monitor.launchdarkly.models import Problems, RedisSettings
from monitor.launchdarkly.sharding import Shard
from monitor.log import Redactor
from tests.support.clock import EPOCH, FakeClock
from tests.support.polling import wait_until

TOKEN = "api-test-token"
# The client's fake now: a year after the simulator's real clock, so the
# X-Ratelimit-Reset the simulator stamps on every reply is long past and
# only what a test sets (Retry-After, a later reset) decides the waits.
LATER = time.time() + 365 * 86400

SCENARIO: dict[str, Any] = {
    "token": TOKEN,
    "forbidden_tokens": ["reader-without-role"],
    "projects": [
        {
            "key": "web",
            "environments": [
                {
                    "key": "production",
                    "client_side_id": "aaaaaaaaaaaaaaaaaaaaaaa1",
                    "api_key": "sdk-web-prod-secret",
                },
                {"key": "staging", "client_side_id": "aaaaaaaaaaaaaaaaaaaaaaa2"},
            ],
        },
        {
            "key": "mobile",
            "environments": [
                {"key": "production", "client_side_id": "bbbbbbbbbbbbbbbbbbbbbbb1"}
            ],
        },
    ],
    "integrations": [
        {
            "id": "000000000000000000000001",
            "project": "web",
            "environment": "production",
            "kind": "redis",
            "name": "web prod",
            "config": {
                "host": "redis-a.internal",
                "port": "6380",
                "username": "ld",
                "password": "supersecret123",
                "tlsEnabled": True,
            },
            "status": {
                "available": True,
                "potentiallyStale": False,
                "lastSync": "-20s",
            },
        },
        {
            "id": "000000000000000000000002",
            "project": "web",
            "environment": "production",
            "kind": "dynamodb",
            "name": "web prod ddb",
            "config": {
                "tableName": "ld-segments",
                "region": "us-east-1",
                "roleArn": "arn:aws:iam::1:role/ld",
                "externalId": "x",
            },
            "status": {
                "available": False,
                "lastSync": "-3h",
                "errors": [{"statusCode": 503, "message": "down", "timestamp": "-1h"}],
            },
        },
        {
            "id": "000000000000000000000003",
            "project": "web",
            "environment": "staging",
            "kind": "redis",
            "name": "web staging",
            "config": {"host": "redis-b.internal", "port": "6379"},
            "status": {"available": True, "potentiallyStale": True, "lastSync": "-15m"},
        },
        {
            "id": "000000000000000000000004",
            "project": "mobile",
            "environment": "production",
            "kind": "redis",
            "name": "mobile prod",
            "config": {"host": "redis-c.internal", "port": "6379"},
            "status": {},
        },
    ],
}


@pytest.fixture
async def sim() -> AsyncIterator[tuple[Simulator, str]]:
    """The simulator with SCENARIO, served on a free loopback port."""
    simulator = Simulator(Scenario.from_dict(SCENARIO))
    async with SimulatorServer(simulator, host="127.0.0.1", port=0) as server:
        yield simulator, server.url


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session closed after the test."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def no_sleep(_: float) -> None:
    """Sleep replacement: backoff waits are asserted, not endured."""


MakeClient = Callable[..., LaunchDarklyClient]


@pytest.fixture
def make_client(
    sim: tuple[Simulator, str], session: aiohttp.ClientSession
) -> MakeClient:
    """Factory of clients against the simulator."""

    def make(
        token: str = TOKEN,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = no_sleep,
        **settings: Any,
    ) -> LaunchDarklyClient:
        api = ApiConfig.model_validate(
            {
                "base_url": sim[1],
                "token": token,
                "timeout": 2,
                "interval": 10,
                **settings,
            }
        )
        return LaunchDarklyClient(
            session, api, structlog.get_logger("test"), clock=clock, sleep=sleep
        )

    return make


def make_discovery(
    client: LaunchDarklyClient, filters: Filters | None = None
) -> Discovery:
    """A discovery over `client`."""
    return Discovery(client, filters or Filters(), structlog.get_logger("test"))


async def test_first_round_fetches_details_and_each_environment_once(
    sim: tuple[Simulator, str], make_client: MakeClient
) -> None:
    """Round one: one list, one get per integration, one environment call per environment."""
    simulator, _ = sim
    discovery = make_discovery(make_client())
    outcome = await discovery.run_once()
    assert outcome.ok
    assert outcome.integrations == 4
    assert simulator.stats.count("list_integrations") == 1
    assert simulator.stats.count("get_integration", code=200) == 4
    assert simulator.stats.count("get_environment", code=200) == 3
    by_id = {i.integration.id: i for i in discovery.view.integrations}
    first = by_id["000000000000000000000001"]
    assert first.client_side_id == "aaaaaaaaaaaaaaaaaaaaaaa1"
    assert first.integration.settings == RedisSettings(
        host="redis-a.internal", port=6380, username="ld", tls_enabled=True
    )
    assert discovery.view.api_up


async def test_steady_state_is_one_request_and_a_change_costs_one_more(
    sim: tuple[Simulator, str], make_client: MakeClient
) -> None:
    """Unchanged versions are not refetched; a config change refetches only that integration."""
    simulator, _ = sim
    discovery = make_discovery(make_client())
    await discovery.run_once()
    simulator.stats.reset()
    await discovery.run_once()
    assert simulator.stats.total() == 1
    simulator.update_config("000000000000000000000003", host="redis-b2.internal")
    simulator.stats.reset()
    await discovery.run_once()
    assert simulator.stats.total() == 2
    assert simulator.stats.count("get_integration") == 1
    by_id = {i.integration.id: i for i in discovery.view.integrations}
    settings = by_id["000000000000000000000003"].integration.settings
    assert isinstance(settings, RedisSettings)
    assert settings.host == "redis-b2.internal"


async def test_status_changes_show_without_refetching(
    sim: tuple[Simulator, str], make_client: MakeClient
) -> None:
    """_status comes from the list call every round, with no extra request."""
    simulator, _ = sim
    discovery = make_discovery(make_client())
    await discovery.run_once()
    simulator.update_status("000000000000000000000001", available=False)
    simulator.stats.reset()
    await discovery.run_once()
    assert simulator.stats.total() == 1
    by_id = {i.integration.id: i for i in discovery.view.integrations}
    assert by_id["000000000000000000000001"].integration.status.available is False


async def test_client_sets_beta_header_over_a_session_default(
    sim: tuple[Simulator, str], session: aiohttp.ClientSession
) -> None:
    """A session-level LD-API-Version (as generated clients add) is replaced, not doubled."""
    simulator, url = sim
    async with aiohttp.ClientSession(headers={"LD-API-Version": "20240415"}) as dated:
        api = ApiConfig.model_validate({"base_url": url, "token": TOKEN})
        client = LaunchDarklyClient(dated, api, structlog.get_logger("test"))
        integrations = await client.list_integrations(Problems())
    assert len(integrations) == 4
    assert simulator.stats.count("list_integrations", code=200) == 1


async def test_bearer_prefix_is_not_used(
    sim: tuple[Simulator, str], make_client: MakeClient
) -> None:
    """The token goes in Authorization as is; the simulator refuses `Bearer <token>`."""
    simulator, _ = sim
    client = make_client()
    await client.list_integrations(Problems())
    assert simulator.stats.count("list_integrations", code=200) == 1
    bearer = make_client(token=f"Bearer {TOKEN}")
    with pytest.raises(ApiError) as info:
        await bearer.list_integrations(Problems())
    assert info.value.kind == ApiErrorKind.AUTH


@pytest.mark.parametrize(
    ("token", "kind", "status"),
    [
        ("wrong-token", ApiErrorKind.AUTH, 401),
        ("reader-without-role", ApiErrorKind.FORBIDDEN, 403),
    ],
)
async def test_auth_failures_mark_api_down_and_keep_the_last_view(
    sim: tuple[Simulator, str],
    make_client: MakeClient,
    token: str,
    kind: ApiErrorKind,
    status: int,
) -> None:
    """401/403: the round fails with a clear cause, api_up is 0, nothing is retried."""
    simulator, _ = sim
    discovery = make_discovery(make_client(token=token))
    outcome = await discovery.run_once()
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error.kind == kind
    assert outcome.error.status == status
    assert not discovery.view.api_up
    assert simulator.stats.count("list_integrations") == 1


async def test_deleted_integration_disappears(
    sim: tuple[Simulator, str], make_client: MakeClient
) -> None:
    """An integration deleted from LaunchDarkly leaves the view, with its counters."""
    simulator, _ = sim
    discovery = make_discovery(make_client())
    await discovery.run_once()
    assert "000000000000000000000002" in discovery.api_errors_total
    simulator.delete_integration("000000000000000000000002")
    await discovery.run_once()
    ids = {i.integration.id for i in discovery.view.integrations}
    assert "000000000000000000000002" not in ids
    assert "000000000000000000000002" not in discovery.api_errors_total


async def test_get_404_keeps_a_listed_integration_and_reports_it(
    sim: tuple[Simulator, str], make_client: MakeClient
) -> None:
    """A listed integration whose GET answers 404 is not silently dropped: it
    stays while the list shows it, with a problem saying so."""
    simulator, _ = sim
    ghost = {
        "_id": "00000000000000000000dead",
        "_links": {},
        "integrationKey": "redis",
        "projectKey": "web",
        "environmentKey": "production",
        "name": "ghost",
        "on": True,
        "tags": [],
        "version": 1,
        "config": {"host": "h", "port": "6379"},
        "_status": {},
    }
    simulator.set_raw_items([ghost])
    discovery = make_discovery(make_client())
    outcome = await discovery.run_once()
    assert outcome.deleted == 1
    assert simulator.stats.count("get_integration", code=404) == 1
    kept = {i.integration.id: i for i in discovery.view.integrations}
    problem = kept["00000000000000000000dead"].detail_problem
    assert problem is not None
    assert "404" in problem


async def test_429_waits_as_retry_after_says(
    sim: tuple[Simulator, str], make_client: MakeClient
) -> None:
    """After a 429 with Retry-After, no request is sent until that time has passed."""
    simulator, _ = sim
    clock = FakeClock(LATER)
    client = make_client(clock=clock)
    simulator.faults.fail_next(status=429, count=1, headers={"Retry-After": "30"})
    with pytest.raises(ApiError) as info:
        await client.list_integrations(Problems())
    assert info.value.kind == ApiErrorKind.RATE_LIMITED
    assert 30.0 <= client.retry_after() <= 30.5
    with pytest.raises(ApiError):
        await client.list_integrations(Problems())
    assert simulator.stats.count("list_integrations") == 1  # the second call never left
    clock.advance(31)
    assert len(await client.list_integrations(Problems())) == 4


async def test_429_waits_until_ratelimit_reset(
    sim: tuple[Simulator, str], make_client: MakeClient
) -> None:
    """X-Ratelimit-Reset (epoch ms) sets the earliest next call when it is later than Retry-After."""
    simulator, _ = sim
    clock = FakeClock(LATER)
    client = make_client(clock=clock)
    reset_ms = int((clock.now + 95) * 1000)
    simulator.faults.fail_next(
        status=429, count=1, headers={"X-Ratelimit-Reset": str(reset_ms)}
    )
    with pytest.raises(ApiError):
        await client.list_integrations(Problems())
    assert 95.0 <= client.retry_after() <= 95.5


async def test_5xx_is_retried_with_backoff(
    sim: tuple[Simulator, str], make_client: MakeClient
) -> None:
    """A 503 followed by a 200 succeeds within one call, after one retry."""
    simulator, _ = sim
    client = make_client()
    simulator.faults.fail_next(status=503, count=1)
    assert len(await client.list_integrations(Problems())) == 4
    assert simulator.stats.count("list_integrations", code=503) == 1
    assert simulator.stats.count("list_integrations", code=200) == 1


async def test_persistent_5xx_gives_up_after_the_retries(
    sim: tuple[Simulator, str], make_client: MakeClient
) -> None:
    """Retries are bounded: three 500s in a row fail the call."""
    simulator, _ = sim
    client = make_client()
    simulator.faults.fail_next(status=500, count=5)
    with pytest.raises(ApiError) as info:
        await client.list_integrations(Problems())
    assert info.value.kind == ApiErrorKind.SERVER
    assert simulator.stats.count("list_integrations", code=500) == 3


async def test_malformed_json_fails_the_round_and_keeps_the_view(
    sim: tuple[Simulator, str], make_client: MakeClient
) -> None:
    """Invalid JSON is an API error; the last good view stays, api_up drops to 0."""
    simulator, _ = sim
    discovery = make_discovery(make_client())
    await discovery.run_once()
    simulator.faults.malformed_next(count=1)
    outcome = await discovery.run_once()
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error.kind == ApiErrorKind.MALFORMED
    assert len(discovery.view.integrations) == 4
    assert not discovery.view.api_up


async def test_oversized_reply_is_refused(
    sim: tuple[Simulator, str], make_client: MakeClient
) -> None:
    """A reply larger than max_response_bytes is refused, not buffered."""
    simulator, _ = sim
    client = make_client(max_response_bytes=64 * 1024)
    simulator.faults.pad_next(size_bytes=1_000_000, count=1)
    with pytest.raises(ApiError) as info:
        await client.list_integrations(Problems())
    assert info.value.kind == ApiErrorKind.TOO_LARGE


# A client and the waits it would have slept.
Paced = tuple[LaunchDarklyClient, list[float]]


@pytest.fixture
async def paced() -> AsyncIterator[Callable[[int, int], Awaitable[Paced]]]:
    """Build a simulator with the given budgets and a client on one fake clock.

    The clock stands 1.5 s before the simulator's 10 s window resets, and the
    client records the waits it would sleep instead of sleeping them.
    """
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())

        async def build(global_budget: int, route_budget: int) -> Paced:
            clock = FakeClock(EPOCH + 8.5)
            scenario = SCENARIO | {
                "rate_limit": {"global": global_budget, "route": route_budget}
            }
            simulator = Simulator(Scenario.from_dict(scenario), clock=clock)
            server = await stack.enter_async_context(
                SimulatorServer(simulator, host="127.0.0.1", port=0)
            )
            slept: list[float] = []

            async def record(seconds: float) -> None:
                slept.append(seconds)

            api = ApiConfig.model_validate(
                {"base_url": server.url, "token": TOKEN, "timeout": 2, "interval": 10}
            )
            client = LaunchDarklyClient(
                session, api, structlog.get_logger("test"), clock=clock, sleep=record
            )
            return client, slept

        yield build


async def test_a_spent_route_budget_paces_only_that_route(
    paced: Callable[[int, int], Awaitable[Paced]],
) -> None:
    """A nearly spent environments route waits for the reset; the list call does not."""
    client, slept = await paced(100, 4)
    for _ in range(2):
        await client.get_environment("web", "production", Problems())
    assert slept == []
    assert client.rate_limit_remaining == {
        "global": 98,
        "route:get_environment": 2,
    }
    await client.list_integrations(Problems())
    assert slept == []  # its own route has budget left, and so has the account
    assert client.rate_limit_remaining["route:list_integrations"] == 3
    await client.get_environment("web", "staging", Problems())
    assert slept == [pytest.approx(1.5)]  # until the window resets


async def test_a_spent_global_budget_paces_every_route(
    paced: Callable[[int, int], Awaitable[Paced]],
) -> None:
    """With the account-wide budget nearly spent, every route waits for the reset."""
    client, slept = await paced(4, 100)
    for _ in range(2):
        await client.get_environment("web", "production", Problems())
    assert slept == []
    assert client.rate_limit_remaining["global"] == 2
    await client.list_integrations(Problems())
    assert slept == [pytest.approx(1.5)]
    assert client.rate_limit_remaining == {
        "global": 1,
        "route:get_environment": 98,
        "route:list_integrations": 99,
    }


async def test_a_429_on_a_spent_route_holds_back_only_that_route(
    paced: Callable[[int, int], Awaitable[Paced]],
) -> None:
    """A 429 for the environments route's budget leaves the list call free."""
    client, _ = await paced(100, 1)
    await client.get_environment("web", "production", Problems())
    with pytest.raises(ApiError) as refused:
        await client.get_environment("web", "production", Problems())
    assert refused.value.status == 429
    assert client.retry_after("get_environment") > 0
    assert client.retry_after("list_integrations") == 0
    await client.list_integrations(Problems())  # not held back
    with pytest.raises(ApiError) as held:
        await client.get_environment("web", "staging", Problems())
    assert held.value.kind == ApiErrorKind.RATE_LIMITED
    assert held.value.status is None  # refused before any request


async def test_a_429_on_the_spent_global_budget_holds_back_every_route(
    paced: Callable[[int, int], Awaitable[Paced]],
) -> None:
    """When the account's budget is spent, a 429 holds back every route."""
    client, _ = await paced(1, 100)
    await client.get_environment("web", "production", Problems())
    with pytest.raises(ApiError) as refused:
        await client.get_environment("web", "production", Problems())
    assert refused.value.status == 429
    assert client.retry_after("list_integrations") > 0
    with pytest.raises(ApiError) as held:
        await client.list_integrations(Problems())
    assert held.value.kind == ApiErrorKind.RATE_LIMITED
    assert held.value.status is None


async def test_route_budgets_survive_a_settings_reload(
    paced: Callable[[int, int], Awaitable[Paced]],
) -> None:
    """A client rebuilt for new settings still paces the route that was spent."""
    client, slept = await paced(100, 4)
    for _ in range(2):
        await client.get_environment("web", "production", Problems())
    fresh = client.with_settings(client._settings)
    await fresh.list_integrations(Problems())
    assert slept == []
    await fresh.get_environment("web", "production", Problems())
    assert slept == [pytest.approx(1.5)]


async def test_filters_skip_integrations_before_any_detail_call(
    sim: tuple[Simulator, str], make_client: MakeClient
) -> None:
    """Excluded projects are neither fetched nor reported."""
    simulator, _ = sim
    discovery = make_discovery(
        make_client(), Filters(include=(Scope(project="mobile"),))
    )
    await discovery.run_once()
    assert [i.integration.project for i in discovery.view.integrations] == ["mobile"]
    assert simulator.stats.count("get_integration") == 1


async def test_api_errors_are_counted_once_across_polls(
    sim: tuple[Simulator, str], make_client: MakeClient
) -> None:
    """The same _status.errors entry seen on many polls counts once; a new one adds one."""
    simulator, _ = sim
    discovery = make_discovery(make_client())
    await discovery.run_once()
    await discovery.run_once()
    assert discovery.api_errors_total["000000000000000000000002"] == {"503": 1}
    simulator.update_status(
        "000000000000000000000002",
        errors=[
            {"statusCode": 503, "message": "down", "timestamp": "-1h"},
            {"statusCode": 401, "message": "auth", "timestamp": "-1m"},
        ],
    )
    await discovery.run_once()
    assert discovery.api_errors_total["000000000000000000000002"] == {
        "503": 1,
        "401": 1,
    }


async def test_auth_failure_logs_one_clear_line_without_the_token(
    sim: tuple[Simulator, str], make_client: MakeClient
) -> None:
    """The discovery loop step logs api.auth_failed with the cause; the token never appears."""
    _, url = sim
    config = parse_config(
        {
            "api": {"base_url": url, "token": "${T}", "interval": 10, "timeout": 2},
            "server": {"listen": "127.0.0.1:0"},
        },
        {"T": "wrong-token-value"},
    )
    daemon = Daemon(config, Redactor())
    with capture_logs() as logs:
        await daemon.start()
        try:
            await wait_until(lambda: daemon.state.view.last_error is not None)
        finally:
            await daemon.stop()
    failures = [entry for entry in logs if entry["event"] == "api.auth_failed"]
    assert len(failures) == 1
    assert "401" in failures[0]["cause"]
    assert "wrong-token-value" not in repr(logs)


async def test_shards_split_the_integrations_without_overlap(
    sim: tuple[Simulator, str], make_client: MakeClient
) -> None:
    """Two replicas with --shard 0/2 and 1/2 together monitor every integration once."""
    views = []
    for index in range(2):
        discovery = Discovery(
            make_client(),
            Filters(),
            structlog.get_logger("test"),
            shard=Shard(index, 2),
        )
        await discovery.run_once()
        views.append({i.integration.id for i in discovery.view.integrations})
    assert views[0].isdisjoint(views[1])
    assert views[0] | views[1] == {f"00000000000000000000000{n}" for n in range(1, 5)}
