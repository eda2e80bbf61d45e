"""The daemon under test, in-process or as `python -m monitor run`, and HTTP to reach it.

`RunningDaemon` is a daemon listening on loopback with a session to scrape
and poll it; `InProcessDaemon` adds the `Daemon` object (its loops, its
monitor), `DaemonProcess` the child process. `daemon_process()` starts the
child with nothing of the test's environment but PATH and what it is given.

The harness of the fault tests: the simulator lists one Redis integration
stored on the test's redis-server (`scenario`, `seed_store`); the daemon also
probes one static target on the same server (`daemon_config`), so that both
loops have work while faults are injected.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from devtools.ldsim import Scenario, Simulator
from devtools.servers.redis_server import RedisServer
from monitor.daemon import Daemon
from tests.support.clock import now_ms
from tests.support.scrape import Scrape

ROOT = Path(__file__).resolve().parents[2]

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
    with redis.admin() as client:
        for prefix in (CLIENT_SIDE_ID, STATIC_PREFIX):
            client.set(SYNC_KEY.format(prefix=prefix), str(now_ms()))


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
    """A daemon listening on loopback, and an HTTP session to reach it."""

    base: str
    session: aiohttp.ClientSession

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

    async def wait_ready(self, timeout: float = 20.0) -> None:
        """Poll /-/ready until it answers 200 (refused connections: not listening yet)."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    if (await self.get("/-/ready"))[0] == 200:
                        return
                except aiohttp.ClientConnectionError:
                    pass
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


@dataclass
class InProcessDaemon(RunningDaemon):
    """A daemon started in the test's own event loop."""

    daemon: Daemon

    @classmethod
    def of(cls, daemon: Daemon, session: aiohttp.ClientSession) -> InProcessDaemon:
        """The started `daemon`, reached through `session`."""
        return cls(f"http://127.0.0.1:{daemon.port}", session, daemon)


@dataclass
class DaemonProcess(RunningDaemon):
    """`python -m monitor run` as a child process (see `daemon_process`)."""

    process: asyncio.subprocess.Process


@asynccontextmanager
async def daemon_process(
    config: Path,
    env: Mapping[str, str] | None = None,
    *,
    stdout: int = asyncio.subprocess.PIPE,
    stderr: int = asyncio.subprocess.PIPE,
    new_session: bool = False,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m monitor run --config CONFIG` from the repository root.

    Its environment is PATH plus `env`, nothing else of the test's. With
    `new_session` it leads its own process group, so leftovers are findable.
    Killed on the way out when the test has not stopped it.
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        "run",
        "--config",
        str(config),
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **(env or {})},
        stdout=stdout,
        stderr=stderr,
        start_new_session=new_session,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()


def log_events(log: str) -> list[str]:
    """The `event` of every JSON log line, in order."""
    return [
        json.loads(line)["event"] for line in log.splitlines() if line.startswith("{")
    ]


StartDaemon = Callable[..., Awaitable[InProcessDaemon]]
ServeSimulator = Callable[[Simulator], Awaitable[str]]
