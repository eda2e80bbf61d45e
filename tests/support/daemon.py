"""An in-process daemon on loopback, with the simulator and a Redis it watches.

The simulator lists one Redis integration stored on the test's redis-server;
the daemon also probes one static target on the same server, so that both
loops have work while faults are injected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from devtools.ldsim import Scenario
from devtools.servers.redis_server import RedisServer
from monitor.daemon import Daemon
from tests.faults.samples import Scrape

TOKEN = "api-faults-test-token"
FORBIDDEN_TOKEN = "reader-without-role"
INTEGRATION_ID = "0123456789abcdef01234567"
CLIENT_SIDE_ID = "cid0000000000000000000001"
STATIC = "static-relay"
STATIC_PREFIX = "relay"
SYNC_KEY = "{prefix}:big_segments_synchronized_on"


def scenario(redis: RedisServer) -> Scenario:
    """One project, one environment, one Redis integration stored on `redis`."""
    return Scenario.from_dict(
        {
            "token": TOKEN,
            "forbidden_tokens": [FORBIDDEN_TOKEN],
            "projects": [
                {
                    "key": "web",
                    "environments": [
                        {"key": "production", "client_side_id": CLIENT_SIDE_ID}
                    ],
                }
            ],
            "integrations": [
                {
                    "id": INTEGRATION_ID,
                    "project": "web",
                    "environment": "production",
                    "kind": "redis",
                    "name": "web production",
                    "config": {"host": redis.host, "port": str(redis.client_port)},
                    "status": {"available": True, "lastSync": "-10s"},
                }
            ],
        }
    )


def seed_store(redis: RedisServer) -> None:
    """A fresh synchronizedOn for the integration and the static target."""
    now_ms = str(int(time.time() * 1000))
    with redis.admin() as client:
        for prefix in (CLIENT_SIDE_ID, STATIC_PREFIX):
            client.set(SYNC_KEY.format(prefix=prefix), now_ms)


def daemon_config(
    redis_url: str,
    *,
    api: dict[str, Any] | None = None,
    probe: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A raw config: one static Redis target, short intervals, a free port."""
    raw: dict[str, Any] = {
        "probe": {"interval": 0.3, "timeout": 0.2, **(probe or {})},
        "targets": [
            {
                "kind": "redis",
                "name": STATIC,
                "url": redis_url,
                "prefix": STATIC_PREFIX,
                "project": "relay",
                "environment": "production",
            }
        ],
        "server": {"listen": "127.0.0.1:0"},
    }
    if api is not None:
        raw["api"] = api
    return raw


@dataclass
class RunningDaemon:
    """A started in-process daemon and an HTTP session to reach it."""

    daemon: Daemon
    session: aiohttp.ClientSession

    @property
    def base(self) -> str:
        """The daemon's base URL."""
        return f"http://127.0.0.1:{self.daemon.port}"

    async def scrape(self) -> tuple[Scrape, float]:
        """GET /metrics; the parsed samples and how long the request took."""
        started = time.monotonic()
        async with self.session.get(f"{self.base}/metrics") as resp:
            assert resp.status == 200
            text = await resp.text()
        return Scrape(text), time.monotonic() - started

    async def get(self, path: str) -> tuple[int, str]:
        """Status and body of GET `path`."""
        async with self.session.get(f"{self.base}{path}") as resp:
            return resp.status, await resp.text()

    async def wait_ready(self, timeout: float = 10.0) -> None:
        """Poll /-/ready until it answers 200."""
        async with asyncio.timeout(timeout):
            # Readiness has no event to await from outside the daemon.
            while (await self.get("/-/ready"))[0] != 200:  # noqa: ASYNC110
                await asyncio.sleep(0.02)

    async def wait_metric(
        self,
        predicate: Callable[[Scrape], bool],
        timeout: float = 10.0,
    ) -> Scrape:
        """Scrape until `predicate` holds; the scrape that satisfied it."""
        async with asyncio.timeout(timeout):
            while True:
                scrape, _ = await self.scrape()
                if predicate(scrape):
                    return scrape
                await asyncio.sleep(0.02)


StartDaemon = Callable[..., Awaitable[RunningDaemon]]
