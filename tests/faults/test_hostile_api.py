"""A hostile LaunchDarkly API: it can neither switch discovery off, nor blind
or stall the monitor, nor collect the monitor's store credentials.

A small aiohttp app on loopback plays the API with scripted replies: list,
detail and environment routes, each answering what the test sets.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp import web

from monitor.cli.check import run_check
from monitor.cli.exits import Exit
from monitor.config import ApiConfig, Filters, parse_config
from monitor.export.report import build_report
from monitor.launchdarkly.client import (
    MAX_JSON_DEPTH,
    MAX_RATE_LIMIT_WAIT,
    LaunchDarklyClient,
)
from monitor.launchdarkly.discovery import Discovery
from monitor.launchdarkly.errors import ApiErrorKind
from monitor.log import Redactor
from monitor.service.monitor import Monitor
from monitor.targets import resolve_targets
from tests.support.scrape import Scrape

TOKEN = "hostile-api-token"
LIST = "/api/v2/integration-capabilities/big-segment-store"


def item(
    integration_id: str,
    *,
    project: str = "web",
    environment: str = "production",
    kind: str = "redis",
    host: str = "redis.internal",
    port: int = 6379,
) -> dict[str, Any]:
    """A list item (and detail reply) as the API sends it."""
    config: dict[str, Any] = (
        {"host": host, "port": str(port)}
        if kind == "redis"
        else {"tableName": "ld", "region": "us-east-1"}
    )
    return {
        "_id": integration_id,
        "integrationKey": kind,
        "projectKey": project,
        "environmentKey": environment,
        "name": f"store {integration_id}",
        "version": 1,
        "on": True,
        "config": config,
        "_status": {"available": True, "lastSync": 1_750_000_000_000},
    }


Reply = tuple[int, Any, dict[str, str]]  # status, body (bytes or JSON), headers


@dataclass
class HostileApi:
    """What the fake API answers; what it was asked."""

    items: list[dict[str, Any]] = field(default_factory=list)
    list_reply: Reply | None = None  # overrides the items when set
    details: dict[str, Reply] = field(default_factory=dict)
    environments: dict[tuple[str, str], Reply] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    url: str = ""

    def answer(self, reply: Reply) -> web.Response:
        status, body, headers = reply
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return web.Response(
            status=status,
            body=data,
            headers=headers,
            content_type="application/json",
        )

    async def list(self, request: web.Request) -> web.Response:
        self.calls["list"] += 1
        return self.answer(self.list_reply or (200, {"items": self.items}, {}))

    async def detail(self, request: web.Request) -> web.Response:
        integration_id = request.match_info["id"]
        self.calls[f"detail:{integration_id}"] += 1
        found = next((i for i in self.items if i["_id"] == integration_id), None)
        default: Reply = (200, found, {}) if found else (404, {}, {})
        return self.answer(self.details.get(integration_id, default))

    async def environment(self, request: web.Request) -> web.Response:
        key = (request.match_info["project"], request.match_info["env"])
        self.calls[f"env:{key[0]}/{key[1]}"] += 1
        default: Reply = (200, {"_id": f"cid-{key[0]}-{key[1]}"}, {})
        return self.answer(self.environments.get(key, default))


@pytest.fixture
async def api() -> AsyncIterator[HostileApi]:
    """The hostile API on loopback."""
    hostile = HostileApi()
    app = web.Application()
    app.router.add_get(LIST, hostile.list)
    app.router.add_get(LIST + "/{project}/{env}/{kind}/{id}", hostile.detail)
    app.router.add_get(
        "/api/v2/projects/{project}/environments/{env}", hostile.environment
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    hostile.url = f"http://127.0.0.1:{port}"
    yield hostile
    await runner.cleanup()


@dataclass
class Watching:
    """A discovery (and its client) over the hostile API."""

    discovery: Discovery
    client: LaunchDarklyClient
    settings: ApiConfig


@pytest.fixture
async def watching(api: HostileApi) -> AsyncIterator[Watching]:
    """A client and discovery on the hostile API."""
    settings = ApiConfig.model_validate(
        {"base_url": api.url, "token": TOKEN, "timeout": 5, "interval": 30}
    )
    async with aiohttp.ClientSession() as session:
        log = structlog.get_logger("test")
        client = LaunchDarklyClient(session, settings, log, retries=0)
        yield Watching(Discovery(client, Filters(), log), client, settings)


# -- the API cannot switch discovery off -----------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        {"message": "maintenance"},  # no items array
        {"items": "none"},
        {"items": [{}, {"_id": 5}, 7]},  # nothing in it can be identified
    ],
    ids=["no_items", "items_not_a_list", "all_items_unusable"],
)
async def test_a_reply_without_usable_items_keeps_the_known_integrations(
    api: HostileApi, watching: Watching, reply: dict[str, Any]
) -> None:
    """M1: a 200 reply without usable items is an error (api_up 0), never
    "no integrations": the stores known so far stay monitored."""
    api.items = [item("a" * 24), item("b" * 24)]
    assert (await watching.discovery.run_once()).ok
    api.list_reply = (200, reply, {})
    outcome = await watching.discovery.run_once()
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error.kind == ApiErrorKind.MALFORMED
    view = watching.discovery.view
    assert not view.api_up
    assert [i.integration.id for i in view.integrations] == ["a" * 24, "b" * 24]
    assert watching.discovery.counters.parse_errors_total >= 1


async def test_an_empty_items_array_still_means_no_integrations(
    api: HostileApi, watching: Watching
) -> None:
    """Only `"items": []` removes the known integrations."""
    api.items = [item("a" * 24)]
    assert (await watching.discovery.run_once()).ok
    api.items = []
    assert (await watching.discovery.run_once()).ok
    assert watching.discovery.view.integrations == ()
    assert watching.discovery.view.api_up


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
async def test_deep_nesting_is_a_parse_error_not_a_crashed_round(
    api: HostileApi, watching: Watching, depth: int
) -> None:
    """M2: nesting beyond MAX_JSON_DEPTH (or beyond what the parser can
    recurse) fails the round as malformed: api_up 0, nothing escapes."""
    api.items = [item("a" * 24)]
    assert (await watching.discovery.run_once()).ok
    body = b'{"items": [' + b"[" * depth + b"]" * depth + b"]}"
    api.list_reply = (200, body, {})
    outcome = await watching.discovery.run_once()
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error.kind == ApiErrorKind.MALFORMED
    assert "nested deeper" in str(outcome.error)
    assert not watching.discovery.view.api_up
    assert len(watching.discovery.view.integrations) == 1


async def _max_loop_lag(work: Callable[[], Any]) -> tuple[Any, float]:
    """Run `work()`; the longest the event loop was held meanwhile."""
    worst = 0.0
    done = False

    async def tick() -> None:
        nonlocal worst
        while not done:
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            worst = max(worst, time.perf_counter() - started - 0.01)

    ticker = asyncio.create_task(tick())
    try:
        result = await work()
    finally:
        done = True
        await ticker
    return result, worst


@pytest.mark.parametrize("items", [10_000_000, 400_000])
async def test_a_reply_of_tiny_items_costs_neither_memory_nor_the_loop(
    api: HostileApi, watching: Watching, items: int
) -> None:
    """M5: a reply under the size cap made of tiny items (30 MB of `{}`, or
    one under the value bound) is refused or parsed off the event loop,
    fast, and its problems are a count, not a string per item."""
    body = b'{"items": [' + b"{}," * (items - 1) + b"{}]}"
    assert len(body) < 32 * 1024 * 1024
    api.list_reply = (200, body, {})
    started = time.perf_counter()
    outcome, lag = await _max_loop_lag(watching.discovery.run_once)
    assert time.perf_counter() - started < 10
    assert lag < 0.5
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error.kind == ApiErrorKind.MALFORMED


# -- rate limits -------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Retry-After": "1e12"},
        {"Retry-After": "inf"},
        {"X-Ratelimit-Reset": str(10**15)},
    ],
    ids=["retry_after_huge", "retry_after_inf", "reset_far_future"],
)
async def test_a_rate_limit_wait_is_capped_and_a_reload_clears_it(
    api: HostileApi, watching: Watching, headers: dict[str, str]
) -> None:
    """M3: Retry-After / X-Ratelimit-Reset are clamped to MAX_RATE_LIMIT_WAIT,
    and a reload (new client settings) clears the wait."""
    api.list_reply = (429, {}, headers)
    outcome = await watching.discovery.run_once()
    assert not outcome.ok
    wait = outcome.next_delay(watching.settings)
    assert wait is not None
    assert wait <= MAX_RATE_LIMIT_WAIT + 1
    assert 0 < watching.client.retry_after() <= MAX_RATE_LIMIT_WAIT + 1
    reloaded = watching.client.with_settings(watching.settings)
    assert reloaded.retry_after() == 0
    watching.discovery.set_client(reloaded)
    api.list_reply = None
    api.items = [item("a" * 24)]
    assert (await watching.discovery.run_once()).ok


@pytest.mark.parametrize("value", ["-5", "abc", "nan", "0"])
async def test_a_429_without_a_usable_wait_waits_the_interval(
    api: HostileApi, watching: Watching, value: str
) -> None:
    """L1: a 429 whose Retry-After gives no usable wait never makes the
    monitor poll faster than api.interval."""
    api.list_reply = (429, {}, {"Retry-After": value})
    outcome = await watching.discovery.run_once()
    wait = outcome.next_delay(watching.settings)
    assert wait is not None
    assert wait >= watching.settings.interval
    assert watching.client.retry_after() >= watching.settings.interval - 1


# -- one failing fetch does not throttle the others ---------------------------


async def test_one_failing_environment_does_not_hold_back_the_others(
    api: HostileApi, watching: Watching
) -> None:
    """L14: the first environment in sort order answers garbage; the nine
    others are resolved in the same round."""
    projects = [f"p{n}" for n in range(10)]
    api.items = [item(f"{n:024d}", project=p) for n, p in enumerate(projects)]
    api.environments[("p0", "production")] = (200, b"{not json", {})
    outcome = await watching.discovery.run_once()
    assert outcome.ok
    known = {
        i.integration.project: i.client_side_id
        for i in watching.discovery.view.integrations
    }
    assert known["p0"] is None
    assert all(known[p] == f"cid-{p}-production" for p in projects[1:])


async def test_one_failing_detail_does_not_hold_back_the_others(
    api: HostileApi, watching: Watching
) -> None:
    """L14: one integration's detail answers garbage; the others' are fetched."""
    full = [item(f"{n:024d}") for n in range(8)]
    api.items = [{**i, "config": {}} for i in full]  # list items are summaries
    api.details = {i["_id"]: (200, i, {}) for i in full}
    api.details["0" * 24] = (200, b"[[[", {})
    outcome = await watching.discovery.run_once()
    assert outcome.ok
    fetched = {
        i.integration.id
        for i in watching.discovery.view.integrations
        if i.integration.settings is not None
    }
    assert fetched == {f"{n:024d}" for n in range(1, 8)}


async def test_a_listed_integration_whose_detail_is_404_is_reported(
    api: HostileApi, watching: Watching
) -> None:
    """L14: the list shows it, its detail answers 404: it stays, with a problem
    its target shows, and is asked for again next round."""
    ghost = item("c" * 24)
    ghost.pop("config")
    api.items = [item("a" * 24), ghost]
    api.details["c" * 24] = (404, {}, {})
    outcome = await watching.discovery.run_once()
    assert outcome.ok
    view = {i.integration.id: i for i in watching.discovery.view.integrations}
    assert set(view) == {"a" * 24, "c" * 24}
    assert view["c" * 24].detail_problem is not None
    assert "404" in view["c" * 24].detail_problem
    config = parse_config({"api": {"token": "${T}"}}, {"T": "t"})
    targets = {t.id: t for t in resolve_targets(view.values(), config)}
    assert targets["c" * 24].problem is not None
    assert "404" in targets["c" * 24].problem
    await watching.discovery.run_once()
    assert api.calls["detail:" + "c" * 24] == 2


async def test_a_detail_of_another_kind_is_a_finding_not_a_crash(
    api: HostileApi, watching: Watching
) -> None:
    """L13: the list says dynamodb, the detail brings a Redis config: a parse
    problem and a target that says so, never a probe fed the wrong endpoint."""
    listed = item("d" * 24, kind="dynamodb")
    listed["config"] = {}
    api.items = [listed]
    api.details["d" * 24] = (200, item("d" * 24, kind="redis"), {})
    outcome = await watching.discovery.run_once()
    assert outcome.ok
    assert outcome.problems >= 1
    (found,) = watching.discovery.view.integrations
    assert found.integration.kind == "dynamodb"
    assert found.integration.settings is None
    assert found.detail_problem is not None
    assert "disagrees" in found.detail_problem
    config = parse_config({"api": {"token": "${T}"}}, {"T": "t"})
    (target,) = resolve_targets([found], config)
    assert not target.probeable
    assert target.problem == found.detail_problem


# -- credentials go only where they belong ------------------------------------


@dataclass
class Capture:
    """A TCP server that records every connection and byte it receives."""

    port: int = 0
    connections: int = 0
    received: bytearray = field(default_factory=bytearray)


@pytest.fixture
async def capture() -> AsyncIterator[Capture]:
    """A listener standing in for a host an attacker named in LaunchDarkly."""
    seen = Capture()

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        seen.connections += 1
        try:
            while data := await reader.read(4096):
                seen.received.extend(data)
                writer.write(b"-ERR nope\r\n")
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    seen.port = server.sockets[0].getsockname()[1]
    async with server:
        yield seen


PASSWORD = "Prod-Readonly-Secret-4242"


def _pinning_config(api: HostileApi, hosts: list[str], sdk: str = "python") -> Any:
    return parse_config(
        {
            "api": {"base_url": api.url, "token": "${T}", "timeout": 2},
            "probe": {"timeout": 1, "interval": 10},
            "credentials": [
                {
                    "match": {"project": "*", "environment": "production"},
                    "sdk": sdk,
                    "redis": {
                        "username": "ldmon",
                        "password": "${P}",
                        "hosts": hosts,
                    },
                }
            ],
        },
        {"T": TOKEN, "P": PASSWORD},
    )


async def test_a_pinned_credential_is_never_sent_to_a_host_the_api_names(
    api: HostileApi, capture: Capture
) -> None:
    """M6: the API names a host outside the credential's `hosts`: the monitor
    never connects there, and says so (/status problem, check, metric)."""
    api.items = [item("e" * 24, host="127.0.0.1", port=capture.port)]
    config = _pinning_config(api, ["*.redis.internal", "10.0.0.*:6379"])
    async with Monitor(config, structlog.get_logger("test")) as monitor:
        await monitor.discover()
        await monitor.probe_round()
        await asyncio.sleep(0.2)
    assert capture.connections == 0
    assert PASSWORD.encode() not in capture.received
    (target,) = monitor.state.targets
    assert target.credential_withheld
    assert not target.probeable
    assert target.endpoint is not None
    assert getattr(target.endpoint, "password", None) is None
    scrape = Scrape.of(monitor.state)
    assert scrape.value("ld_store_credential_withheld", integration_id="e" * 24) == 1
    (row,) = build_report(monitor.state).targets
    assert row.problem is not None
    assert row.problem.startswith("credential withheld")


async def test_a_credential_goes_to_a_host_its_pattern_allows(
    api: HostileApi, capture: Capture
) -> None:
    """The counterpart: a matching pattern lets the credential through (so the
    capture above would have seen it)."""
    api.items = [item("f" * 24, host="127.0.0.1", port=capture.port)]
    config = _pinning_config(api, [f"127.0.0.1:{capture.port}"])
    async with Monitor(config, structlog.get_logger("test")) as monitor:
        await monitor.discover()
        await monitor.probe_round()
    assert capture.connections >= 1
    assert PASSWORD.encode() in bytes(capture.received)
    (target,) = monitor.state.targets
    assert not target.credential_withheld
    assert Scrape.of(monitor.state).value("ld_store_credential_withheld") == 0


# -- check ---------------------------------------------------------------------


async def test_check_exits_2_with_a_message_on_api_garbage(api: HostileApi) -> None:
    """L12: deep JSON (or any reply the monitor cannot use) is exit 2 with a
    clear message, not exit 1 with empty output."""
    api.list_reply = (200, b'{"items": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", {})
    config = parse_config(
        {"api": {"base_url": api.url, "token": "${T}", "timeout": 2}}, {"T": TOKEN}
    )
    out, err = io.StringIO(), io.StringIO()
    code = await run_check(config, Redactor(), fmt="table", out=out, err=err)
    assert code == Exit.BAD_INPUT
    assert err.getvalue().startswith("cannot use the LaunchDarkly API: invalid JSON")


async def test_check_prints_a_table_even_with_a_lone_surrogate(api: HostileApi) -> None:
    """L12: a lone surrogate in a name from the API never leaves the table
    half-written on a UTF-8 stdout."""
    odd = item("a" * 24, host="127.0.0.1", port=1)
    odd["name"] = "bad \ud800 name"
    api.items = [odd]
    config = parse_config(
        {
            "api": {"base_url": api.url, "token": "${T}", "timeout": 2},
            "probe": {"timeout": 1, "interval": 10},
        },
        {"T": TOKEN},
    )
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8")
    code = await run_check(config, Redactor(), fmt="table", out=out, err=io.StringIO())
    out.flush()
    assert code == Exit.UNHEALTHY
    text = raw.getvalue().decode("utf-8")
    assert "targets, 1 unhealthy" in text


async def test_a_cluster_redirect_outside_the_pins_is_not_followed(
    api: HostileApi, capture: Capture
) -> None:
    """M6, one step further: a pinned store that answers MOVED to a node none
    of the credential's hosts matches does not get the credential sent there
    (a cluster-following SDK profile, node)."""

    async def node(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                parts = []
                for _ in range(int(line[1:])):
                    size = int((await reader.readline())[1:])
                    parts.append((await reader.readexactly(size + 2))[:-2])
                if parts[0].upper() in {b"AUTH", b"SELECT"}:
                    writer.write(b"+OK\r\n")
                else:
                    writer.write(b"-MOVED 1 127.0.0.1:%d\r\n" % capture.port)
                await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(node, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    api.items = [item("9" * 24, host="127.0.0.1", port=port)]
    config = _pinning_config(api, [f"127.0.0.1:{port}"], sdk="node")
    async with server, Monitor(config, structlog.get_logger("test")) as monitor:
        await monitor.discover()
        await monitor.probe_round()
    assert capture.connections == 0
    record = monitor.runner.records["9" * 24]
    assert record.result is not None
    assert record.result.reason == "cluster_redirect"
    assert "credential withheld" in (record.result.error or "")
