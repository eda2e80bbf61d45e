"""The LaunchDarkly API simulator: auth, shapes, state, rate limits, faults, CLI."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from devtools.ldsim import (
    DEFAULT_TOKEN,
    Scenario,
    Simulator,
    SimulatorServer,
    load_demo_scenario,
    load_scenario,
)
from devtools.ldsim.state import mask_secret
from devtools.ldsim.status import TimeRef
from tests.support.clock import FakeClock
from tests.support.polling import wait_until

TOKEN = "test-token"
REDIS_ID = "0123456789abcdef01234567"
DYNAMO_ID = "89abcdef0123456789abcdef"
CLIENT_SIDE_ID = "6543210fedcba98765432100"
NOW = 1_700_000_000.0  # on a 10 s boundary, so the rate-limit window is predictable
NOW_MS = int(NOW * 1000)
LIST = "/api/v2/integration-capabilities/big-segment-store"
REDIS_PATH = f"{LIST}/web/production/redis/{REDIS_ID}"
DYNAMO_PATH = f"{LIST}/web/staging/dynamodb/{DYNAMO_ID}"
ENV_PATH = "/api/v2/projects/web/environments/production"
API = {"Authorization": TOKEN, "LD-API-Version": "beta"}
REPO = Path(__file__).resolve().parents[2]


def scenario_data() -> dict[str, Any]:
    """Return a fresh scenario dict: one project, a Redis and a DynamoDB store."""
    return {
        "token": TOKEN,
        "forbidden_tokens": ["reader-token"],
        "projects": [
            {
                "key": "web",
                "name": "Web shop",
                "environments": [
                    {
                        "key": "production",
                        "name": "Production",
                        "client_side_id": CLIENT_SIDE_ID,
                        "api_key": "sdk-00000000-0000-0000-0000-000000000001",
                    },
                    {"key": "staging"},
                ],
            }
        ],
        "integrations": [
            {
                "id": REDIS_ID,
                "project": "web",
                "environment": "production",
                "kind": "redis",
                "name": "Production Redis",
                "tags": ["prod"],
                "version": 3,
                "config": {
                    "host": "redis.example.com",
                    "port": 6379,
                    "username": "ldwriter",
                    "password": "hunter2hunter2",
                    "tlsEnabled": True,
                },
                "status": {
                    "available": True,
                    "potentiallyStale": False,
                    "lastSync": "-30s",
                    "lastError": "-1h",
                    "errors": [
                        {"statusCode": 503, "message": "refused", "timestamp": "-1h"}
                    ],
                },
            },
            {
                "id": DYNAMO_ID,
                "project": "web",
                "environment": "staging",
                "kind": "dynamodb",
                "on": False,
                "config": {"tableName": "ld-big-segments", "region": "us-east-1"},
            },
        ],
        "segments": [
            {
                "project": "web",
                "environment": "production",
                "key": "beta-users",
                "generation": 2,
            }
        ],
    }


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at NOW."""
    return FakeClock(NOW)


@pytest.fixture
def sim(clock: FakeClock) -> Simulator:
    """A simulator over the test scenario and the fake clock."""
    return Simulator(Scenario.from_dict(scenario_data()), clock=clock)


@asynccontextmanager
async def serving(simulator: Simulator) -> AsyncIterator[aiohttp.ClientSession]:
    """Serve `simulator` on a free port and yield a session bound to its URL."""
    async with (
        SimulatorServer(simulator) as server,
        aiohttp.ClientSession(base_url=server.url) as session,
    ):
        yield session


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[aiohttp.ClientSession]:
    """A client session talking to `sim` over real HTTP."""
    async with serving(sim) as session:
        yield session


async def get_json(
    client: aiohttp.ClientSession, path: str, headers: Any = None
) -> tuple[int, Any]:
    """GET `path` (API headers by default); return status and parsed body."""
    async with client.get(path, headers=API if headers is None else headers) as resp:
        return resp.status, await resp.json()


# --- auth and the beta header ------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"LD-API-Version": "beta"}, id="missing"),
        pytest.param({"Authorization": "nope", "LD-API-Version": "beta"}, id="wrong"),
        pytest.param(
            {"Authorization": f"Bearer {TOKEN}", "LD-API-Version": "beta"}, id="bearer"
        ),
    ],
)
async def test_request_without_the_exact_token_gets_401(
    client: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    """Only the bare token is accepted: missing, wrong and Bearer-prefixed get 401."""
    status, body = await get_json(client, LIST, headers)
    assert status == 401
    assert body["code"] == "unauthorized"
    assert body["message"] == "Invalid access token"
    assert re.fullmatch(r"[0-9a-f-]{36}", body["id"])


async def test_forbidden_token_gets_403(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """Tokens from the scenario's or the runtime forbidden list are answered 403."""
    status, body = await get_json(client, LIST, {"Authorization": "reader-token"})
    assert (status, body["code"]) == (403, "forbidden")
    sim.forbidden_tokens.add(TOKEN)
    status, body = await get_json(client, LIST)
    assert (status, body["code"]) == (403, "forbidden")


async def test_integration_route_without_beta_header_gets_403(
    client: aiohttp.ClientSession,
) -> None:
    """The beta endpoints refuse a request that lacks LD-API-Version: beta."""
    status, body = await get_json(client, LIST, {"Authorization": TOKEN})
    assert status == 403
    assert body["code"] == "forbidden"
    assert "beta" in body["message"]


async def test_duplicate_version_headers_honour_the_first(
    client: aiohttp.ClientSession,
) -> None:
    """With two LD-API-Version headers only the first counts, as the real API does."""
    non_beta_first = CIMultiDict(
        [
            ("Authorization", TOKEN),
            ("LD-API-Version", "20240415"),
            ("LD-API-Version", "beta"),
        ]
    )
    beta_first = CIMultiDict(
        [
            ("Authorization", TOKEN),
            ("LD-API-Version", "beta"),
            ("LD-API-Version", "20240415"),
        ]
    )
    assert (await get_json(client, LIST, non_beta_first))[0] == 403
    assert (await get_json(client, LIST, beta_first))[0] == 200


async def test_non_beta_routes_need_no_beta_header(
    client: aiohttp.ClientSession,
) -> None:
    """Environments and segments answer with only the token."""
    for path in (
        ENV_PATH,
        "/api/v2/segments/web/production/beta-users",
    ):
        status, _ = await get_json(client, path, {"Authorization": TOKEN})
        assert status == 200, path


# --- integration endpoints -------------------------------------------------------


async def test_list_returns_every_integration_with_links_and_status(
    client: aiohttp.ClientSession,
) -> None:
    """The list reply holds each integration with its links, config and `_status`."""
    status, body = await get_json(client, LIST)
    assert status == 200
    assert body["_links"]["self"] == {"href": LIST, "type": "application/json"}
    by_id = {item["_id"]: item for item in body["items"]}
    assert set(by_id) == {REDIS_ID, DYNAMO_ID}
    redis = by_id[REDIS_ID]
    assert redis["_links"]["self"]["href"] == REDIS_PATH
    assert redis["_links"]["environment"]["href"] == ENV_PATH
    assert set(redis["_links"]) == {"self", "parent", "project", "environment"}
    assert (redis["projectKey"], redis["environmentKey"]) == ("web", "production")
    assert (redis["integrationKey"], redis["version"], redis["on"]) == (
        "redis",
        3,
        True,
    )
    assert redis["config"]["port"] == "6379"
    assert redis["_status"]["available"] is True
    assert by_id[DYNAMO_ID]["_status"] == {}
    assert by_id[DYNAMO_ID]["on"] is False


@pytest.mark.parametrize("list_config", ["empty", "absent"])
async def test_list_items_may_carry_no_config_while_the_detail_does(
    clock: FakeClock, list_config: str
) -> None:
    """`list_config: empty|absent` strips list items' config; the detail GET keeps it."""
    data = scenario_data() | {"list_config": list_config}
    async with serving(Simulator(Scenario.from_dict(data), clock=clock)) as client:
        _, body = await get_json(client, LIST)
        for item in body["items"]:
            if list_config == "empty":
                assert item["config"] == {}
            else:
                assert "config" not in item
        status, detail = await get_json(client, REDIS_PATH)
    assert status == 200
    assert detail["config"]["host"] == "redis.example.com"


async def test_created_integration_is_served_and_listed(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """An integration created by POST can be read back and appears in the list."""
    body = {
        "config": {"host": "new.internal", "port": "6379", "password": "abcdefghijkl"},
        "name": "New store",
        "on": True,
        "tags": ["a"],
    }
    async with client.post(f"{LIST}/web/staging/redis", json=body, headers=API) as resp:
        assert resp.status == 201
        created = await resp.json()
    new_id = created["_id"]
    assert re.fullmatch(r"[0-9a-f]{24}", new_id)
    assert (created["version"], created["_status"], created["name"]) == (
        1,
        {},
        "New store",
    )
    assert created["config"]["password"] == "abc********jkl"
    path = f"{LIST}/web/staging/redis/{new_id}"
    assert (await get_json(client, path))[1]["config"]["host"] == "new.internal"
    assert sim.integration(new_id)["config"]["password"] == "abcdefghijkl"
    assert new_id in {i["_id"] for i in (await get_json(client, LIST))[1]["items"]}


async def test_dynamodb_create_generates_an_external_id(
    client: aiohttp.ClientSession,
) -> None:
    """Creating a DynamoDB integration fills `externalId`, as LaunchDarkly does."""
    body = {"config": {"tableName": "t", "region": "eu-west-1", "roleArn": "arn:x"}}
    async with client.post(
        f"{LIST}/web/production/dynamodb", json=body, headers=API
    ) as resp:
        created = await resp.json()
    assert resp.status == 201
    assert re.fullmatch(r"[0-9a-f-]{36}", created["config"]["externalId"])
    assert created["on"] is False


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        pytest.param("web/production/mongo", {"config": {}}, 400, id="unknown-kind"),
        pytest.param("web/production/redis", {"name": "x"}, 400, id="no-config"),
        pytest.param("web/production/redis", {"config": []}, 400, id="config-array"),
        pytest.param("web/production/redis", [1], 400, id="body-array"),
        pytest.param(
            "web/production/redis", {"config": {"port": 6379}}, 400, id="numeric-port"
        ),
        pytest.param("web/production/redis", {"config": {}, "on": "yes"}, 400, id="on"),
        pytest.param("nope/production/redis", {"config": {}}, 404, id="no-project"),
        pytest.param("web/nope/redis", {"config": {}}, 404, id="no-environment"),
    ],
)
async def test_create_rejects_bad_requests(
    client: aiohttp.ClientSession, sim: Simulator, path: str, body: Any, status: int
) -> None:
    """Create answers 400 for a bad key or body and 404 for an unknown environment."""
    async with client.post(f"{LIST}/{path}", json=body, headers=API) as resp:
        reply = await resp.json()
    assert resp.status == status
    assert reply["code"] == ("invalid_request" if status == 400 else "not_found")
    assert len(sim.integrations) == 2


async def test_create_rejects_a_body_that_is_not_json(
    client: aiohttp.ClientSession,
) -> None:
    """A create body that does not parse is a 400."""
    path = f"{LIST}/web/production/redis"
    async with client.post(path, data=b"{not json", headers=API) as resp:
        assert resp.status == 400
        assert (await resp.json())["code"] == "invalid_request"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(f"{LIST}/web/production/redis/ffffffffffffffffffffffff", id="id"),
        pytest.param(f"{LIST}/web/production/dynamodb/{REDIS_ID}", id="kind"),
        pytest.param(f"{LIST}/web/staging/redis/{REDIS_ID}", id="environment"),
        pytest.param(f"{LIST}/app/production/redis/{REDIS_ID}", id="project"),
    ],
)
async def test_unknown_integration_gets_404(
    client: aiohttp.ClientSession, path: str
) -> None:
    """An id that does not match the project, environment and key in the path is 404."""
    status, body = await get_json(client, path)
    assert (status, body["code"]) == (404, "not_found")


# --- redaction and times ---------------------------------------------------------


async def test_redis_password_is_masked_on_read_but_stored_in_clear(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """Replies mask the password like `hun********er2`; the simulator keeps it whole."""
    _, listed = await get_json(client, LIST)
    _, one = await get_json(client, REDIS_PATH)
    masked = "hun********er2"
    assert (
        next(i for i in listed["items"] if i["_id"] == REDIS_ID)["config"]["password"]
        == masked
    )
    assert one["config"]["password"] == masked
    assert "hunter2hunter2" not in json.dumps(listed)
    assert sim.integration(REDIS_ID)["config"]["password"] == "hunter2hunter2"


@pytest.mark.parametrize(
    ("secret", "masked"),
    [("supersecret123", "sup********123"), ("short", "********"), ("", "")],
)
def test_mask_secret_hides_all_but_the_ends_of_long_values(
    secret: str, masked: str
) -> None:
    """Long secrets keep 3 characters at each end; short ones are fully masked."""
    assert mask_secret(secret) == masked


async def test_relative_times_move_with_the_injected_clock(
    client: aiohttp.ClientSession, clock: FakeClock
) -> None:
    """`-30s` is rendered from the clock at reply time, so it stays 30 s old."""
    _, first = await get_json(client, REDIS_PATH)
    assert first["_status"]["lastSync"] == NOW_MS - 30_000
    assert first["_status"]["lastError"] == NOW_MS - 3_600_000
    assert first["_status"]["errors"][0]["timestamp"] == NOW_MS - 3_600_000
    clock.now += 100
    _, later = await get_json(client, REDIS_PATH)
    assert later["_status"]["lastSync"] == NOW_MS + 100_000 - 30_000


@pytest.mark.parametrize(
    ("text", "offset_ms"),
    [("-30s", -30_000), ("+1.5h", 5_400_000), ("-250ms", -250), ("-15m", -900_000)],
)
def test_relative_times_are_a_sign_and_a_config_duration(
    text: str, offset_ms: int
) -> None:
    """Offsets use the monitor's duration grammar (`monitor.config.parse_duration`)."""
    assert TimeRef.parse(text).offset_ms == offset_ms
    with pytest.raises(ValueError, match="'-2d' is not a time"):
        TimeRef.parse("-2d")  # the config has no days: write -48h


async def test_absolute_times_are_returned_verbatim(
    client: aiohttp.ClientSession, sim: Simulator, clock: FakeClock
) -> None:
    """An epoch-ms int is returned unchanged whatever the clock says."""
    sim.update_status(REDIS_ID, lastSync=1_600_000_000_000)
    clock.now += 500
    _, doc = await get_json(client, REDIS_PATH)
    assert doc["_status"]["lastSync"] == 1_600_000_000_000


# --- rate limits -----------------------------------------------------------------


async def test_every_api_reply_carries_rate_limit_headers(
    client: aiohttp.ClientSession,
) -> None:
    """Success and error replies both carry remaining budgets and the reset time."""
    async with client.get(LIST, headers=API) as ok:
        assert ok.headers["X-Ratelimit-Global-Remaining"] == "99999"
        assert ok.headers["X-Ratelimit-Route-Remaining"] == "99999"
        assert ok.headers["X-Ratelimit-Reset"] == str(NOW_MS + 10_000)
    async with client.get(LIST) as denied:
        assert denied.status == 401
        assert denied.headers["X-Ratelimit-Reset"] == str(NOW_MS + 10_000)


async def test_exhausted_budgets_get_429_until_the_window_resets(
    clock: FakeClock,
) -> None:
    """Route and global budgets run out within a 10 s window and refill after it."""
    data = scenario_data() | {"rate_limit": {"global": 3, "route": 2}}
    simulator = Simulator(Scenario.from_dict(data), clock=clock)
    async with serving(simulator) as client:
        assert (await get_json(client, LIST))[0] == 200
        async with client.get(LIST, headers=API) as second:
            assert second.status == 200
            assert second.headers["X-Ratelimit-Route-Remaining"] == "0"
            assert second.headers["X-Ratelimit-Global-Remaining"] == "1"
        async with client.get(LIST, headers=API) as limited:
            assert limited.status == 429
            assert (await limited.json())["code"] == "rate_limited"
            assert limited.headers["X-Ratelimit-Reset"] == str(NOW_MS + 10_000)
        assert (await get_json(client, ENV_PATH))[0] == 200  # other route, last global
        assert (await get_json(client, ENV_PATH))[0] == 429  # global budget spent
        clock.now += 10
        async with client.get(LIST, headers=API) as refilled:
            assert refilled.status == 200
            assert refilled.headers["X-Ratelimit-Reset"] == str(NOW_MS + 20_000)
    assert simulator.stats.count("list_integrations", code=429) == 1


# --- faults ----------------------------------------------------------------------


async def test_fail_next_answers_with_status_and_retry_after_then_recovers(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """`fail_next` forces N replies with its status and headers, then stops."""
    sim.faults.fail_next(status=429, count=2, headers={"Retry-After": "1"})
    for _ in range(2):
        async with client.get(LIST, headers=API) as resp:
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "1"
            assert (await resp.json())["code"] == "rate_limited"
    assert (await get_json(client, LIST))[0] == 200


async def test_fail_next_5xx_can_carry_a_raw_body(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """A 5xx fault can return a non-JSON body, as a broken proxy would."""
    sim.faults.fail_next(status=502, body="<html>Bad Gateway</html>")
    async with client.get(ENV_PATH, headers=API) as resp:
        assert resp.status == 502
        assert await resp.text() == "<html>Bad Gateway</html>"
    assert sim.stats.count("get_environment", code=502) == 1


async def test_delay_holds_each_reply(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """With `delay` set, a reply takes at least that long."""
    sim.faults.delay = 0.05
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert (await get_json(client, LIST))[0] == 200
    assert loop.time() - started >= 0.05


async def test_stall_never_answers_so_the_client_times_out(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """A stalled request gets no reply; the client's timeout fires; stats see it."""
    sim.faults.stall = True
    with pytest.raises(TimeoutError):
        await client.get(LIST, headers=API, timeout=aiohttp.ClientTimeout(total=0.1))
    assert sim.stats.count("list_integrations", code=0) == 1


async def test_clearing_faults_releases_a_stalled_request(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """A request held by `stall` is answered normally once faults are cleared."""
    sim.faults.stall = True
    pending = asyncio.create_task(get_json(client, LIST))
    await wait_until(lambda: sim.stats.count("list_integrations") == 1)
    assert not pending.done()
    sim.faults.clear()
    status, _ = await asyncio.wait_for(pending, timeout=2)
    assert status == 200


async def test_slow_body_sends_headers_first_then_drips_the_body(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """With `slow_body`, headers arrive at once and the body in paced chunks."""
    sim.faults.slow_body = 0.02
    sim.faults.chunk_size = 256
    _, expected = await get_json(client, ENV_PATH)
    loop = asyncio.get_running_loop()
    async with client.get(ENV_PATH, headers=API) as resp:
        headers_at = loop.time()
        raw = await resp.read()
        body_took = loop.time() - headers_at
    chunks = -(-len(raw) // 256)
    assert chunks >= 3
    assert body_took >= 0.02 * (chunks - 1)
    assert json.loads(raw) == expected


async def test_slow_body_trips_a_client_read_timeout(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """A slow-loris body makes a client with a short read timeout give up."""
    sim.faults.slow_body = 0.1
    timeout = aiohttp.ClientTimeout(sock_read=0.03)
    with pytest.raises(TimeoutError):
        async with client.get(LIST, headers=API, timeout=timeout) as resp:
            await resp.read()


async def test_malformed_next_truncates_only_the_next_200_reply(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """`malformed_next` skips error replies and breaks exactly one 200 body."""
    sim.faults.malformed_next(count=1)
    assert (await get_json(client, LIST, {}))[0] == 401  # still valid JSON
    async with client.get(LIST, headers=API) as resp:
        assert resp.status == 200
        raw = await resp.read()
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw)
    assert (await get_json(client, LIST))[0] == 200


async def test_pad_next_keeps_json_valid_and_reaches_the_size(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """A padded reply is at least `size_bytes` long and parses to the same document."""
    _, expected = await get_json(client, LIST)
    sim.faults.pad_next(size_bytes=1_000_000, count=1)
    async with client.get(LIST, headers=API) as resp:
        raw = await resp.read()
    assert len(raw) >= 1_000_000
    assert json.loads(raw) == expected
    async with client.get(LIST, headers=API) as resp:
        assert len(await resp.read()) < 100_000


async def test_faults_never_touch_control_routes(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """Control routes answer at once and are not counted, even with every fault on."""
    sim.faults.stall = True
    sim.faults.fail_next(status=500)
    sim.faults.malformed_next()
    async with client.get(
        "/_sim/stats", timeout=aiohttp.ClientTimeout(total=1)
    ) as resp:
        assert resp.status == 200
        assert await resp.json() == {}
    assert sim.stats.total() == 0


# --- stats and programmatic state ------------------------------------------------


async def test_stats_count_each_endpoint_and_code(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """Stats count requests per endpoint and status, including errors; reset clears."""
    await get_json(client, LIST)
    await get_json(client, LIST, {})
    await get_json(client, REDIS_PATH)
    await get_json(client, ENV_PATH, {"Authorization": TOKEN})
    await get_json(client, "/api/v2/nothing-here")
    assert sim.stats.count("list_integrations") == 2
    assert sim.stats.count("list_integrations", code=401) == 1
    assert sim.stats.count("get_integration", code=200) == 1
    assert sim.stats.snapshot()["get_environment"] == {200: 1}
    assert sim.stats.count("unknown", code=404) == 1
    assert sim.stats.total() == 5
    sim.stats.reset()
    assert sim.stats.total() == 0


async def test_update_status_changes_replies_without_bumping_version(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """`update_status` changes `_status` (None removes a field); version stays."""
    sim.update_status(REDIS_ID, available=False, lastError="-5s", errors=None)
    _, doc = await get_json(client, REDIS_PATH)
    assert doc["_status"]["available"] is False
    assert doc["_status"]["lastError"] == NOW_MS - 5_000
    assert "errors" not in doc["_status"]
    assert doc["version"] == 3
    with pytest.raises(ValueError, match="availble"):
        sim.update_status(REDIS_ID, availble=True)
    with pytest.raises(KeyError):
        sim.update_status("missing", available=True)


async def test_update_config_merges_and_bumps_version(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """`update_config` merges keys into config and bumps the version."""
    sim.update_config(REDIS_ID, host="other.internal", port=6380)
    _, doc = await get_json(client, REDIS_PATH)
    assert doc["version"] == 4
    assert (doc["config"]["host"], doc["config"]["port"]) == ("other.internal", "6380")
    assert doc["config"]["username"] == "ldwriter"


async def test_add_and_delete_integration_show_in_the_list(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """Integrations added or deleted in code appear in or vanish from the list."""
    new_id = sim.add_integration(
        "web",
        "staging",
        "redis",
        name="Added",
        config={"host": "h", "port": "6379"},
        status={"available": True, "lastSync": "-1m"},
        tags=("x",),
    )
    assert re.fullmatch(r"[0-9a-f]{24}", new_id)
    _, listed = await get_json(client, LIST)
    added = next(i for i in listed["items"] if i["_id"] == new_id)
    assert (added["name"], added["tags"], added["on"]) == ("Added", ["x"], True)
    assert added["_status"]["lastSync"] == NOW_MS - 60_000
    sim.delete_integration(REDIS_ID)
    _, listed = await get_json(client, LIST)
    assert {i["_id"] for i in listed["items"]} == {DYNAMO_ID, new_id}
    with pytest.raises(ValueError, match="unknown project 'nope'"):
        sim.add_integration("nope", "production", "redis")
    with pytest.raises(ValueError, match="already exists"):
        sim.add_integration("web", "staging", "redis", integration_id=new_id)


async def test_raw_items_are_appended_verbatim_to_the_list(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """`set_raw_items` adds malformed items to the list reply exactly as given."""
    sim.set_raw_items([{"_id": 5}, "not an object", None])
    _, listed = await get_json(client, LIST)
    assert listed["items"][-3:] == [{"_id": 5}, "not an object", None]


async def test_environment_reply_carries_client_side_id_and_sdk_key(
    client: aiohttp.ClientSession,
) -> None:
    """The environment `_id` is the scenario's client-side ID; keys are filled in."""
    _, env = await get_json(client, ENV_PATH, {"Authorization": TOKEN})
    assert env["_id"] == CLIENT_SIDE_ID
    assert env["apiKey"] == "sdk-00000000-0000-0000-0000-000000000001"
    assert env["mobileKey"].startswith("mob-")
    _, staging = await get_json(
        client, "/api/v2/projects/web/environments/staging", {"Authorization": TOKEN}
    )
    assert re.fullmatch(r"[0-9a-f]{24}", staging["_id"])
    assert staging["apiKey"].startswith("sdk-")
    missing = "/api/v2/projects/web/environments/nope"
    assert (await get_json(client, missing, API))[0] == 404


async def test_segment_reply_carries_generation_and_context_kind(
    client: aiohttp.ClientSession,
) -> None:
    """Segments from the scenario are served; others are 404."""
    path = "/api/v2/segments/web/production/beta-users"
    _, segment = await get_json(client, path, {"Authorization": TOKEN})
    assert (segment["generation"], segment["unbounded"]) == (2, True)
    assert segment["unboundedContextKind"] == "user"
    assert segment["creationDate"] == NOW_MS
    assert (await get_json(client, "/api/v2/segments/web/staging/x", API))[0] == 404


# --- control routes --------------------------------------------------------------


async def test_control_routes_report_and_reset_stats(
    client: aiohttp.ClientSession,
) -> None:
    """`GET /_sim/stats` reports counts and `POST /_sim/stats/reset` clears them."""
    await get_json(client, LIST)
    await get_json(client, LIST, {})
    async with client.get("/_sim/stats") as resp:
        assert await resp.json() == {"list_integrations": {"200": 1, "401": 1}}
    async with client.post("/_sim/stats/reset") as resp:
        assert resp.status == 204
    async with client.get("/_sim/stats") as resp:
        assert await resp.json() == {}


async def test_control_route_sets_faults_and_clear_removes_them(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """`POST /_sim/faults` turns faults on without a token; `/clear` turns them off."""
    body = {
        "fail_next": {"status": 503, "count": 1, "headers": {"Retry-After": "2"}},
        "delay": 0.01,
        "malformed_next": 1,
        "pad_next": {"size_bytes": 2000, "count": 2},
    }
    async with client.post("/_sim/faults", json=body) as resp:
        assert resp.status == 200
        state = await resp.json()
    assert state["fail_next"] == [503]
    assert (state["delay"], state["malformed_next"], state["pad_next"]) == (
        0.01,
        1,
        [2000, 2000],
    )
    async with client.get(LIST, headers=API) as faulted:
        assert (faulted.status, faulted.headers["Retry-After"]) == (503, "2")
    async with client.post("/_sim/faults/clear") as resp:
        assert resp.status == 204
    assert sim.faults.snapshot()["pad_next"] == []
    assert sim.faults.delay == 0


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"delay": -1}, id="negative-delay"),
        pytest.param({"stall": "yes"}, id="stall-not-bool"),
        pytest.param({"fail_next": {"status": 200}}, id="status-not-error"),
        pytest.param({"pad_next": {"count": 1}}, id="pad-without-size"),
        pytest.param({"explode": True}, id="unknown-field"),
        pytest.param(["delay"], id="not-object"),
    ],
)
async def test_control_route_rejects_bad_faults_and_applies_nothing(
    client: aiohttp.ClientSession, sim: Simulator, body: Any
) -> None:
    """A bad faults body is a 400 and leaves every switch as it was."""
    payload = body if isinstance(body, list) else {"delay": 0.5, **body}
    async with client.post("/_sim/faults", json=payload) as resp:
        assert resp.status == 400
        assert (await resp.json())["message"]
    assert sim.faults.delay == 0
    assert sim.faults.snapshot()["fail_next"] == []


async def test_control_route_patches_an_integration_status(
    client: aiohttp.ClientSession, sim: Simulator
) -> None:
    """`PATCH /_sim/integrations/{id}/status` merges fields like `update_status`."""
    path = f"/_sim/integrations/{REDIS_ID}/status"
    async with client.patch(
        path, json={"potentiallyStale": True, "lastSync": "-10m"}
    ) as r:
        assert r.status == 200
        assert (await r.json())["_status"]["lastSync"] == NOW_MS - 600_000
    assert sim.integration(REDIS_ID)["_status"]["potentiallyStale"] is True
    async with client.patch(path, json={"lastSync": "yesterday"}) as r:
        assert r.status == 400
    async with client.patch("/_sim/integrations/nope/status", json={}) as r:
        assert r.status == 404


# --- scenarios -------------------------------------------------------------------


def _mutated(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Return the test scenario after `change`."""
    data = scenario_data()
    change(data)
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(
            _mutated(lambda d: d["integrations"][0].update(project="nope")),
            "integrations.0.project: unknown project 'nope'",
            id="unknown-project",
        ),
        pytest.param(
            _mutated(lambda d: d["integrations"][1].update(environment="qa")),
            "integrations.1.environment: unknown environment 'qa' in project 'web'",
            id="unknown-environment",
        ),
        pytest.param(
            _mutated(lambda d: d["integrations"][0].update(kind="mongo")),
            "integrations.0.kind: Input should be 'redis' or 'dynamodb'",
            id="bad-kind",
        ),
        pytest.param(
            _mutated(lambda d: d["integrations"][0]["status"].update(lastSync="-3x")),
            "integrations.0.status.lastSync: '-3x' is not a time",
            id="bad-time",
        ),
        pytest.param(
            _mutated(lambda d: d["integrations"][1].update(id=REDIS_ID)),
            f"integrations: duplicate integration id '{REDIS_ID}'",
            id="duplicate-id",
        ),
        pytest.param(
            _mutated(lambda d: d.update(extra=1)),
            "extra: Extra inputs are not permitted",
            id="extra",
        ),
        pytest.param(
            _mutated(lambda d: d["segments"][0].update(project="nope")),
            "segments.0.project: unknown project 'nope'",
            id="segment-project",
        ),
        pytest.param(
            ["not", "a", "mapping"],
            "(top): Input should be a valid dictionary",
            id="list",
        ),
    ],
)
def test_scenario_rejects_bad_input_naming_the_location(
    data: Any, message: str
) -> None:
    """Scenario problems raise ValueError naming the field path and the problem."""
    with pytest.raises(ValueError, match="invalid scenario") as caught:
        Scenario.from_dict(data)
    assert message in str(caught.value)


def test_scenario_lists_every_problem_at_once() -> None:
    """All problems are reported together, one line each."""
    data = scenario_data()
    data["integrations"][0]["project"] = "nope"
    data["integrations"][1]["kind"] = "mongo"
    data["integrations"][1]["version"] = 0
    with pytest.raises(ValueError, match="invalid scenario") as caught:
        Scenario.from_dict(data)
    lines = str(caught.value).splitlines()[1:]
    assert len(lines) == 3


def test_load_scenario_reads_yaml_and_json_files(tmp_path: Path) -> None:
    """YAML (where `on:` stays a key, not a boolean) and JSON files both load."""
    yaml_file = tmp_path / "s.yaml"
    yaml_file.write_text(
        "projects: [{key: p, environments: [{key: e}]}]\n"
        "integrations:\n"
        "  - {project: p, environment: e, kind: redis, on: false,\n"
        "     config: {port: 6379}}\n"
    )
    from_yaml = load_scenario(yaml_file)
    assert from_yaml.integrations[0].on is False
    assert from_yaml.integrations[0].config["port"] == "6379"
    json_file = tmp_path / "s.json"
    json_file.write_text(json.dumps(scenario_data()))
    assert load_scenario(json_file).token == TOKEN
    assert load_scenario(str(json_file)).integrations[0].id == REDIS_ID


def test_load_scenario_turns_unreadable_files_into_value_errors(tmp_path: Path) -> None:
    """A missing file or broken YAML is a ValueError naming the file."""
    missing = tmp_path / "missing.yaml"
    with pytest.raises(ValueError, match=r"missing\.yaml: cannot read scenario"):
        load_scenario(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("projects: [unclosed\n")
    with pytest.raises(ValueError, match=r"broken\.yaml: not valid YAML"):
        load_scenario(broken)


def test_generated_ids_are_stable_and_shaped_like_launchdarkly_ids() -> None:
    """Ids the scenario leaves out are 24 hex digits and the same on every load."""
    data = scenario_data()
    del data["integrations"][0]["id"]
    first, second = Scenario.from_dict(data), Scenario.from_dict(data)
    assert first.integrations[0].id == second.integrations[0].id
    assert re.fullmatch(r"[0-9a-f]{24}", first.integrations[0].id)
    assert first.projects[0].environments[1].client_side_id == (
        second.projects[0].environments[1].client_side_id
    )


def test_token_defaults_to_scenario_then_sim_token() -> None:
    """The token is the argument, else the scenario's, else `sim-token`."""
    assert Simulator(Scenario.from_dict(scenario_data())).token == TOKEN
    assert Simulator(Scenario.from_dict(scenario_data()), token="t2").token == "t2"
    assert Simulator(Scenario()).token == DEFAULT_TOKEN == "sim-token"


def test_demo_scenario_covers_the_documented_states() -> None:
    """The bundled demo has 2 projects, 8 integrations and each promised state."""
    demo = load_demo_scenario()
    assert [p.key for p in demo.projects] == ["web", "mobile"]
    assert len(demo.integrations) == 8
    statuses = [i.status for i in demo.integrations]
    assert any(s.potentially_stale for s in statuses)
    assert any(s.available is False and len(s.errors or ()) == 2 for s in statuses)
    assert any(s.available and s.errors for s in statuses)
    assert any(not i.on for i in demo.integrations)
    assert {i.kind for i in demo.integrations} == {"redis", "dynamodb"}
    for project in demo.projects:
        for env in project.environments:
            assert re.fullmatch(r"[0-9a-f]{24}", env.client_side_id)


# --- the command line ------------------------------------------------------------


def _env() -> dict[str, str]:
    """Return the environment for a subprocess that imports this checkout."""
    return {**os.environ, "PYTHONPATH": str(REPO)}


async def test_module_serves_the_demo_and_exits_cleanly_on_sigterm() -> None:
    """`python -m devtools.ldsim` prints its URL, answers, and exits 0 on SIGTERM."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devtools.ldsim",
        "--port",
        "0",
        "--token",
        "cli-token",
        "--quiet",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=20)).decode()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        async with aiohttp.ClientSession(base_url=match.group(1)) as client:
            headers = {"Authorization": "cli-token", "LD-API-Version": "beta"}
            status, listed = await get_json(client, LIST, headers)
        assert status == 200
        assert len(listed["items"]) == 8
        proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=10)
        assert proc.returncode == 0, stderr.decode()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()


async def test_module_exits_2_on_a_bad_scenario(tmp_path: Path) -> None:
    """A bad scenario file makes the CLI print the problem and exit 2."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("integrations: [{project: x, environment: y, kind: redis}]\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devtools.ldsim",
        "--scenario",
        str(bad),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout=20)
    assert proc.returncode == 2
    assert "integrations.0.project: unknown project 'x'" in stderr.decode()
