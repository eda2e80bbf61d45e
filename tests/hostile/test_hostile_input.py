"""Hostile input: one bad store or API item is one bad series, never a broken page.

One daemon (in-process, JSON logs at debug level, a long store password)
watches, all at once, every class of hostile store of
`devtools/servers/hostile.py` beside healthy ones, and an API that lists a
healthy integration next to one carrying a 400-digit `lastSync`, `NaN`s and
lone surrogates. Then:

- `/metrics` answers 200 and parses (prometheus_client's text and
  OpenMetrics parsers, and `promtool check metrics`), and lists every
  healthy store as up and every hostile one with its own reason;
- each hostile probe ended within its timeout (a bound refuses a reply
  before its body is read, it does not wait for it);
- the Python heap never grew by more than HEAP_LIMIT (tracemalloc peak),
  whatever the stores announced or streamed;
- `/status`, the page and `check` answer, and no 16-character piece of the
  password appears in any of them, nor in the logs.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from io import StringIO
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from devtools.servers.hostile import (
    BIG,
    HostileApi,
    HostileDynamoDB,
    HostileRedis,
    ServerThread,
)
from monitor.config import parse_config
from monitor.daemon import Daemon
from monitor.log import Redactor, configure_logging
from tests.support.commands import promtool_check_metrics
from tests.support.daemon import InProcessDaemon
from tests.support.scrape import Scrape

TOKEN = "hostile-api-token-0123456789"
PASSWORD = "Zq7-Hostile-Store-Secret-kX9vR2mW4pL8nT6yB3cF5hJ1dG7sA0eQ-uV8wZ2xY4tN"
TIMEOUT = 2.0
INTERVAL = 2.5
HEAP_LIMIT = 100 * 1024 * 1024
CID = "cid0123456789abcdef012345"
HEALTHY_API = "0000000000000000000000a1"
HOSTILE_API = "0000000000000000000000b1"

# Each hostile Redis mode, and the reason its store must show.
REDIS_REASONS = {
    "huge_bulk": "reply_too_large",
    "huge_array": "reply_too_large",
    "deep": "reply_too_large",
    "int_garbage": "parse",
    "long_error": "other",  # the error answers AUTH, and is no auth error
    "bigint": "parse",
    "info_bigint": None,  # the value is dropped; the store is otherwise fine
    "future": None,  # flagged by ld_store_sync_in_future, not a failure
}
DYNAMODB_REASONS = {
    "huge": "reply_too_large",
    "endless": "reply_too_large",
    "bigint": "parse",
    "nan": "parse",
}


def _api_items(port: int) -> list[dict[str, Any]]:
    """A healthy integration and a hostile one, both on the healthy fake Redis."""

    def item(ident: str, name: str, status: dict[str, Any], version: Any) -> Any:
        return {
            "_id": ident,
            "integrationKey": "redis",
            "projectKey": "web",
            "environmentKey": "prod",
            "name": name,
            "on": True,
            "version": version,
            "config": {"host": "127.0.0.1", "port": str(port)},
            "_status": status,
        }

    now_ms = int(time.time() * 1000)
    return [
        item(HEALTHY_API, "healthy api", {"available": True, "lastSync": now_ms}, 1),
        item(
            HOSTILE_API,
            "bad \ud800 name \x1b[31m\x00",
            {
                "available": True,
                "lastSync": int(BIG),
                "lastError": math.nan,
                "errors": [
                    {"statusCode": int(BIG), "message": "x\udfff", "timestamp": 1.5}
                ],
            },
            math.nan,
        ),
    ]


def _config(
    redis: dict[str, HostileRedis],
    dynamodb: dict[str, HostileDynamoDB],
    api: HostileApi,
    healthy_port: int,
) -> dict[str, Any]:
    targets: list[dict[str, Any]] = [
        {
            "kind": "redis",
            "name": f"redis-{mode}",
            "url": server.url("${REDIS_PASSWORD}"),
        }
        for mode, server in redis.items()
    ]
    targets += [
        {
            "kind": "dynamodb",
            "name": f"dynamodb-{mode}",
            "table": "big-segments",
            "region": "us-east-1",
            "endpoint_url": server.url,
        }
        for mode, server in dynamodb.items()
    ]
    return {
        "api": {"base_url": api.url, "interval": "30s", "timeout": "2s"},
        "probe": {
            "interval": f"{INTERVAL}s",
            "timeout": f"{TIMEOUT}s",
            "stale_after": "10m",
        },
        "credentials": [
            {
                "match": {"integration_id": ident},
                "redis": {
                    "address": f"127.0.0.1:{healthy_port}",
                    "username": "ldmon",
                    "password": "${REDIS_PASSWORD}",
                },
            }
            for ident in (HEALTHY_API, HOSTILE_API)
        ],
        "targets": targets,
        "server": {"listen": "127.0.0.1:0"},
    }


class World:
    """The servers, the daemon, and what it logged."""

    def __init__(self) -> None:
        self.redis: dict[str, HostileRedis] = {}
        self.dynamodb: dict[str, HostileDynamoDB] = {}
        self.raw: dict[str, Any] = {}
        self.logs = StringIO()
        self.daemon: InProcessDaemon
        self.heap_peak = 0


@pytest.fixture
async def world(aws_env: None) -> AsyncIterator[World]:
    """Every hostile store and the hostile API, watched by one daemon."""
    state = World()
    async with AsyncExitStack() as stack:
        servers = ServerThread()
        stack.push_async_callback(servers.aclose)
        for mode in ["healthy", *REDIS_REASONS]:
            state.redis[mode] = await servers.start(HostileRedis(mode))
        for mode in ["healthy", *DYNAMODB_REASONS]:
            state.dynamodb[mode] = await servers.start(HostileDynamoDB(mode))
        healthy = state.redis["healthy"]
        api = await servers.start(HostileApi(_api_items(healthy.port), CID))
        state.raw = _config(state.redis, state.dynamodb, api, healthy.port)
        env = {"LD_API_TOKEN": TOKEN, "REDIS_PASSWORD": PASSWORD}
        config = parse_config(state.raw, env)
        redactor = Redactor(config.secrets())
        configure_logging(redactor, fmt="json", level="debug", stream=state.logs)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        try:
            daemon = Daemon(config, redactor)
            stack.push_async_callback(daemon.stop)
            await daemon.start()
            state.daemon = InProcessDaemon.of(daemon, session)
            await _wait_for_every_target(state, rounds=2)
            state.heap_peak = tracemalloc.get_traced_memory()[1] - baseline
        finally:
            tracemalloc.stop()
        yield state


def _target_names(state: World) -> list[str]:
    return [
        *(f"redis-{mode}" for mode in state.redis),
        *(f"dynamodb-{mode}" for mode in state.dynamodb),
    ]


async def _wait_for_every_target(state: World, *, rounds: int) -> None:
    """Until every static target was probed `rounds` times and the API read."""

    def done(scrape: Scrape) -> bool:
        probed = all(
            (scrape.value("ld_store_probe_duration_seconds", integration_id=name))
            is not None
            for name in _target_names(state)
        )
        api = scrape.value("ld_store_probe_up", integration_id=HEALTHY_API)
        rounds_done = scrape.value("ld_store_probe_rounds_total") or 0
        return probed and api is not None and rounds_done >= rounds

    await state.daemon.wait_metric(done, timeout=30)


def _password_pieces() -> list[str]:
    return [PASSWORD[i : i + 16] for i in range(len(PASSWORD) - 15)]


def _assert_no_secret(where: str, text: str) -> None:
    leaked = [piece for piece in _password_pieces() if piece in text]
    assert not leaked, f"{where} holds a piece of the password: {leaked[:1]}"
    assert TOKEN not in text, where


async def test_hostile_stores_and_api_leave_every_other_series_intact(
    world: World, tmp_path: Path
) -> None:
    """The whole contract, against every hostile class at once."""
    daemon = world.daemon
    status, text = await daemon.get("/metrics")
    assert status == 200
    families = {f.name for f in text_string_to_metric_families(text)}
    assert "ld_store_probe_up" in families
    async with daemon.session.get(
        f"{daemon.base}/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
    ) as resp:
        assert resp.status == 200
        assert list(openmetrics_families(await resp.text()))  # type: ignore[no-untyped-call]  # prometheus_client leaves it untyped
    lint, code = await promtool_check_metrics(text)
    assert code == 0, lint
    scrape = Scrape(text)

    # Healthy stores: up, no failure.
    for name in ("redis-healthy", "dynamodb-healthy", HEALTHY_API):
        assert scrape.value("ld_store_probe_up", integration_id=name) == 1.0, name
        # The latest probe succeeded (the first round may be slow: the AWS
        # clients are created then, under tracemalloc).
        failing = scrape.value(
            "ld_store_probe_consecutive_failures", integration_id=name
        )
        assert failing == 0, name
        assert scrape.value("ld_store_available", integration_id=name) == 1.0

    # Hostile stores: their own reason, within the timeout.
    expected = {f"redis-{m}": r for m, r in REDIS_REASONS.items()}
    expected |= {f"dynamodb-{m}": r for m, r in DYNAMODB_REASONS.items()}
    for name, reason in expected.items():
        reasons = {
            s.labels["reason"]
            for s in scrape.find("ld_store_probe_failures_total", integration_id=name)
        }
        assert reasons == ({reason} if reason else set()), name
        duration = scrape.value("ld_store_probe_duration_seconds", integration_id=name)
        assert duration is not None
        assert duration <= TIMEOUT + 0.25, (name, duration)

    # A bound refused each stream early: a few MB at most were sent, never GBs.
    for mode in ("huge_bulk", "huge_array"):
        assert world.redis[mode].sent < 64 * 1024 * 1024, mode
    for mode in ("huge", "endless"):
        assert world.dynamodb[mode].sent < 64 * 1024 * 1024, mode

    # The 400-digit values: clamped, flagged, finite.
    assert scrape.value("ld_store_sync_in_future", integration_id="redis-bigint") == 1
    assert scrape.value("ld_store_sync_in_future", integration_id="redis-future") == 1
    assert scrape.value("ld_store_sync_in_future", integration_id="redis-healthy") == 0
    # INFO's health is per server: the one the info_bigint store lives on.
    [bigint] = scrape.find("ld_store_target_info", integration_id="redis-info_bigint")
    used = scrape.value("ld_store_redis_memory_used_bytes", host=bigint.labels["host"])
    assert used is None or used == 0
    # The hostile API item: kept, its bad fields dropped, its name made safe.
    [info] = scrape.find("ld_store_integration_info", integration_id=HOSTILE_API)
    assert info.labels["name"] == "bad \ufffd name \ufffd[31m\ufffd"
    assert (
        scrape.value(
            "ld_store_api_last_sync_timestamp_seconds", integration_id=HOSTILE_API
        )
        is None
    )
    assert (scrape.value("ld_store_api_parse_errors_total") or 0) >= 5

    # Memory: the heap stayed bounded while all of it was going on.
    assert world.heap_peak < HEAP_LIMIT, world.heap_peak

    # /status, the page and check answer; no secret anywhere.
    _assert_no_secret("/metrics", text)
    for path in ("/status", "/"):
        code, body = await daemon.get(path)
        assert code == 200, path
        _assert_no_secret(path, body)
    status_doc = json.dumps(json.loads((await daemon.get("/status"))[1]))
    assert "more than a day in the future" in status_doc
    out, err = await _check(world, tmp_path)
    _assert_no_secret("check stdout", out)
    _assert_no_secret("check stderr", err)
    assert "redis-healthy" in out
    logs = world.logs.getvalue()
    _assert_no_secret("the logs", logs)
    assert "probe.crashed" not in logs
    assert "Traceback" not in logs


async def _check(world: World, tmp_path: Path) -> tuple[str, str]:
    """`ld-store-monitor check` on the same config, JSON logs at debug level."""
    path = tmp_path / "config.yaml"
    raw = {**world.raw, "server": {"listen": "127.0.0.1:0"}}
    path.write_text(yaml.safe_dump(raw))
    env = {
        **{k: v for k, v in os.environ.items() if k.startswith("AWS_")},
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LD_API_TOKEN": TOKEN,
        "REDIS_PASSWORD": PASSWORD,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        "check",
        "--config",
        str(path),
        "--log-format",
        "json",
        "--log-level",
        "debug",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode == 1, err.decode()  # some stores are unhealthy
    return out.decode(), err.decode()
