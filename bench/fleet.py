"""N Redis integrations served by the API simulator, and a monitor set up to watch.

Integration i lives in its own environment (50 per project, as large
accounts spread them), so each has its own client-side ID, which is its key
prefix; its store is redis-server i % 4. The simulator's config carries the
host and port; the monitor's `credentials` supply the password, as in
production, where LaunchDarkly redacts it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import structlog

from bench.harness import progress
from bench.stores import REDIS_PASSWORD, RedisStores
from devtools.ldsim import Scenario, Simulator, SimulatorServer
from devtools.ldsim.scenario import derived_hex
from monitor.config import Config, parse_config
from monitor.log import Redactor, configure_logging
from monitor.service.monitor import Monitor

API_TOKEN = "bench-api-token-5e0b"
ENVIRONMENTS_PER_PROJECT = 50
# Every 7th integration reports an error, so the API-side series are not all alike.
ERROR_EVERY = 7


@dataclass(frozen=True)
class Store:
    """One integration and the store it points at."""

    integration_id: str
    project: str
    environment: str
    prefix: str
    port: int


def redis_fleet(count: int, ports: Sequence[int]) -> list[Store]:
    """`count` integrations, round-robin over the redis-servers on `ports`."""
    return [
        Store(
            integration_id=derived_hex("bench-integration", str(i)),
            project=f"p{i // ENVIRONMENTS_PER_PROJECT:04d}",
            environment=f"e{i % ENVIRONMENTS_PER_PROJECT:02d}",
            prefix=derived_hex("bench-environment", str(i)),
            port=ports[i % len(ports)],
        )
        for i in range(count)
    ]


def scenario(stores: Sequence[Store]) -> Scenario:
    """The simulator's scenario: projects, environments and one integration each."""
    projects: dict[str, list[dict[str, Any]]] = {}
    integrations = []
    for i, store in enumerate(stores):
        projects.setdefault(store.project, []).append(
            {"key": store.environment, "client_side_id": store.prefix}
        )
        status: dict[str, Any] = {
            "available": True,
            "potentiallyStale": False,
            "lastSync": "-20s",
        }
        if i % ERROR_EVERY == 0:
            status["lastError"] = "-1h"
            status["errors"] = [
                {"statusCode": 503, "message": "connection refused", "timestamp": "-1h"}
            ]
        integrations.append(
            {
                "id": store.integration_id,
                "project": store.project,
                "environment": store.environment,
                "kind": "redis",
                "name": f"Redis {store.project}/{store.environment}",
                "config": {"host": "127.0.0.1", "port": str(store.port)},
                "status": status,
            }
        )
    return Scenario.from_dict(
        {
            "token": API_TOKEN,
            # Far above what any benchmark sends: pacing is not what is measured.
            "rate_limit": {"global": 10_000_000, "route": 10_000_000},
            "projects": [
                {"key": key, "environments": envs} for key, envs in projects.items()
            ],
            "integrations": integrations,
        }
    )


def config_document(
    api_url: str,
    *,
    probe: dict[str, Any] | None = None,
    listen: str = "127.0.0.1:0",
    level: str = "info",
) -> dict[str, Any]:
    """The monitor's configuration (as YAML would hold it); secrets by reference."""
    return {
        "api": {"base_url": api_url, "token": "${LD_API_TOKEN}"},
        "probe": probe or {},
        "credentials": [
            {
                "match": {"project": "*"},
                "redis": {"password": "${BENCH_REDIS_PASSWORD}"},
            }
        ],
        "server": {"listen": listen},
        "logging": {"format": "json", "level": level},
    }


def config_env() -> dict[str, str]:
    """The variables the configuration refers to."""
    return {"LD_API_TOKEN": API_TOKEN, "BENCH_REDIS_PASSWORD": REDIS_PASSWORD}


def load_config(document: dict[str, Any]) -> Config:
    """Validate a configuration document as the daemon would."""
    return parse_config(document, env=config_env())


@asynccontextmanager
async def served_simulator(stores: Sequence[Store]) -> AsyncIterator[SimulatorServer]:
    """The simulator serving `stores` on a loopback port."""
    async with SimulatorServer(Simulator(scenario(stores))) as server:
        yield server


@functools.cache
def _devnull() -> TextIO:
    # One handle for the process: the logging handler writes to it until exit.
    return open(os.devnull, "w", encoding="utf-8")


def daemon_logging(config: Config) -> None:
    """Configure logging as `ld-store-monitor run` does, into /dev/null."""
    configure_logging(
        Redactor(config.secrets()), fmt="json", level="info", stream=_devnull()
    )


@asynccontextmanager
async def opened_monitor(config: Config) -> AsyncIterator[Monitor]:
    """A `Monitor` with its clients open (closed on exit), logging as the daemon."""
    daemon_logging(config)
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger("monitor")
    async with Monitor(config, logger) as monitor:
        yield monitor


@asynccontextmanager
async def probed_fleet(
    size: int, directory: Path
) -> AsyncIterator[tuple[Monitor, Config]]:
    """`size` integrations on fresh redis-servers, discovered and probed once.

    The monitor (and its config) are yielded with every store's first result
    in; the servers are stopped on exit.
    """
    redis = RedisStores(directory)
    try:
        stores = redis_fleet(size, redis.ports)
        redis.populate((s.prefix, s.port) for s in stores)
        async with served_simulator(stores) as api:
            config = load_config(config_document(api.url))
            async with opened_monitor(config) as monitor:
                progress(f"discovering and probing {size} integrations")
                await monitor.discover()
                summary = await monitor.probe_round()
                if summary.probed != size or summary.failed:
                    raise RuntimeError(f"probe round went wrong: {summary}")
                yield monitor, config
    finally:
        redis.stop()
