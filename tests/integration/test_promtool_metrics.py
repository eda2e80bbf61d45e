"""`promtool check metrics` on a live /metrics: no lint finding, exit 0.

A daemon watching the API simulator (one Redis integration) plus a static
Redis and a static DynamoDB target (moto) exports the per-integration, Redis,
DynamoDB, monitor and process families; promtool reads that exposition as
Prometheus would and lints every name, help text and type.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from devtools.ldsim import Simulator, SimulatorServer
from devtools.servers.moto_server import (
    MotoServer,
    create_bigsegment_table,
    put_metadata,
)
from devtools.servers.redis_server import RedisServer
from monitor.config import parse_config
from monitor.daemon import Daemon
from monitor.log import Redactor
from tests.support.clock import now_ms
from tests.support.commands import promtool_check_metrics
from tests.support.daemon import (
    INTEGRATION_ID,
    STATIC,
    TOKEN,
    InProcessDaemon,
    daemon_config,
    scenario,
    seed_store,
)
from tests.support.scrape import Scrape

TABLE = "ld-big-segments"
DYNAMODB = "static-dynamodb"


@pytest.fixture
async def running(
    redis_plain: RedisServer, clean_moto: MotoServer, aws_env: None
) -> AsyncIterator[InProcessDaemon]:
    """A daemon with an API integration, a static Redis and a static DynamoDB target."""
    seed_store(redis_plain)
    create_bigsegment_table(clean_moto.endpoint_url, TABLE)
    put_metadata(clean_moto.endpoint_url, TABLE, "", now_ms())
    async with (
        SimulatorServer(Simulator(scenario(redis_plain))) as server,
        aiohttp.ClientSession() as session,
    ):
        raw: dict[str, Any] = daemon_config(
            redis_plain.url, api={"base_url": server.url, "interval": 1, "timeout": 0.5}
        )
        raw["targets"].append(
            {
                "kind": "dynamodb",
                "name": DYNAMODB,
                "table": TABLE,
                "region": "us-east-1",
                "prefix": "",
                "endpoint_url": clean_moto.endpoint_url,
            }
        )
        daemon = Daemon(parse_config(raw, {"LD_API_TOKEN": TOKEN}), Redactor())
        try:
            await daemon.start()
            yield InProcessDaemon.of(daemon, session)
        finally:
            await daemon.stop()


def host_of(redis: RedisServer) -> str:
    """The `host` label of a Redis server's series (its targets' host_key)."""
    return f"redis:{redis.host}:{redis.client_port}"


def everything_exported(scrape: Scrape, redis_host: str) -> bool:
    """The API view, both stores' health and the process families are there."""
    return (
        scrape.value("ld_store_api_up") == 1
        and scrape.value("ld_store_probe_up", integration_id=INTEGRATION_ID) == 1
        and scrape.value("ld_store_probe_success", integration_id=DYNAMODB) == 1
        and scrape.value("ld_store_dynamodb_table_items") is not None
        and bool(scrape.find("ld_store_redis_info", host=redis_host))
        and scrape.value("process_resident_memory_bytes") is not None
    )


async def test_promtool_check_metrics_finds_nothing(
    running: InProcessDaemon, redis_plain: RedisServer
) -> None:
    """The live exposition, every family present, passes promtool's lint."""
    host = host_of(redis_plain)
    await running.wait_metric(
        lambda scrape: everything_exported(scrape, host), timeout=20
    )
    status, text = await running.get("/metrics")
    assert status == 200
    # The API integration and the static target share one redis-server: its
    # health is one series, labelled host, and both targets carry that host.
    scrape = Scrape(text)
    assert [s.labels for s in scrape.find("ld_store_redis_memory_used_bytes")] == [
        {"host": host}
    ]
    assert len(scrape.find("ld_store_redis_info")) == 1
    assert {
        s.labels["integration_id"]
        for s in scrape.find("ld_store_target_info", host=host)
    } == {INTEGRATION_ID, STATIC}
    assert await promtool_check_metrics(text) == ("", 0)
