"""`make demo`: the whole product on one machine, nothing to configure.

Starts the LaunchDarkly API simulator with the bundled scenario (integrations
in healthy, potentially stale, unavailable and erroring states across two
projects), local `redis-server` processes holding stores in healthy, stale,
never-synced and wrong-password states wired to those integrations, and the
daemon watching it all. Prints where to look; stops everything it started
on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import redis.asyncio as aioredis

from devtools.demo.dynamodb import REGION as DYNAMODB_REGION
from devtools.demo.dynamodb import start_dynamodb
from devtools.ldsim import Simulator, SimulatorServer
from devtools.ldsim.scenario import load_demo_scenario
from monitor.config import parse_config
from monitor.daemon import Daemon, wait_for_stop_signal
from monitor.log import Redactor
from monitor.store_keys import (
    context_hash,
    redis_include_key,
    redis_synchronized_on_key,
    segment_ref,
)

# Integrations of the bundled scenario that get a real local Redis.
HEALTHY = "65a1c2d3e4f5061728394a01"  # web/production: kept fresh by the demo
STALE = "65a1c2d3e4f5061728394a02"  # web/staging: synchronizedOn 15 minutes old
# mobile/production: the monitor is given a wrong password for this one.
WRONG_PASSWORD = "65a1c2d3e4f5061728394a04"
NEVER_SYNCED = "65a1c2d3e4f5061728394a07"  # added by the demo: an empty store
SYNC_EVERY = 5.0  # seconds between the demo's own "LaunchDarkly" writes
# A member of web's beta-users segment in every demo store (membership data).
DEMO_CONTEXT = "demo-user-1"


@dataclass
class LocalRedis:
    """A redis-server process started by the demo."""

    process: asyncio.subprocess.Process
    port: int
    password: str | None

    def client(self) -> aioredis.Redis:
        """An admin client (the demo writes; the monitor only reads)."""
        return aioredis.Redis(host="127.0.0.1", port=self.port, password=self.password)

    async def stop(self) -> None:
        """Terminate and reap the process."""
        if self.process.returncode is None:
            self.process.terminate()
        try:
            async with asyncio.timeout(5):
                await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def start_redis(
    binary: str, directory: Path, password: str | None = None
) -> LocalRedis:
    """Start a throwaway redis-server on a free port; return once it answers."""
    port = _free_port()
    args = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    args += ["--dir", str(directory), "--logfile", str(directory / f"redis-{port}.log")]
    if password:
        args += ["--requirepass", password]
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    server = LocalRedis(process, port, password)
    client = server.client()
    try:
        async with asyncio.timeout(10):
            # Nothing to await but the server's first answer: poll for it.
            while not await _answers(client) and process.returncode is None:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    except BaseException:
        await server.stop()
        raise
    finally:
        await client.aclose()
    if process.returncode is not None:
        raise RuntimeError(f"redis-server exited with code {process.returncode}")
    return server


async def _answers(client: aioredis.Redis) -> bool:
    try:
        return bool(await client.ping())
    except (OSError, aioredis.ConnectionError):
        return False


async def _keep_fresh(server: LocalRedis, key: str) -> None:
    """Play LaunchDarkly's part for the healthy store: refresh synchronizedOn."""
    client = server.client()
    try:
        while True:
            await client.set(key, str(int(time.time() * 1000)))
            await asyncio.sleep(SYNC_EVERY)
    finally:
        await client.aclose()


def demo_config(
    api_url: str,
    listen: str,
    stores: dict[str, int],
    tables: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The daemon's configuration for the demo (secrets come by reference)."""
    credentials: list[dict[str, Any]] = [
        {
            "match": {"integration_id": integration_id},
            "redis": {
                "address": f"127.0.0.1:{port}",
                **(
                    {"password": "${DEMO_WRONG_PASSWORD}"}
                    if integration_id == WRONG_PASSWORD
                    else {}
                ),
            },
        }
        for integration_id, port in stores.items()
    ]
    credentials += [
        {
            "match": {"integration_id": integration_id},
            "dynamodb": {"endpoint_url": url, "region": DYNAMODB_REGION},
        }
        for integration_id, url in (tables or {}).items()
    ]
    config: dict[str, Any] = {
        "api": {
            "base_url": api_url,
            "token": "${LD_API_TOKEN}",
            "interval": "10s",
            "timeout": "3s",
        },
        "probe": {"interval": "5s", "timeout": "2s"},
        "credentials": credentials,
        "server": {"listen": listen},
    }
    if HEALTHY in stores:
        # A store a Relay Proxy fills (default prefix), watched without the API.
        config["targets"] = [
            {
                "kind": "redis",
                "name": "relay-proxy-store",
                "url": f"redis://127.0.0.1:{stores[HEALTHY]}",
                "prefix": "launchdarkly",
                "project": "web",
                "environment": "production",
            }
        ]
    return config


async def _start_stores(
    stack: AsyncExitStack, simulator: Simulator, out: TextIO
) -> tuple[dict[str, int], list[asyncio.Task[None]]]:
    """Start the local Redis stores; {} with a message when redis-server is missing."""
    binary = shutil.which("redis-server")
    if binary is None:
        print(
            "redis-server is not on PATH: the demo runs without local stores "
            "(install it, e.g. `apt-get install redis-server`, to see probes).",
            file=out,
        )
        return {}, []
    directory = Path(
        stack.enter_context(
            tempfile.TemporaryDirectory(prefix="ld-store-monitor-demo-")
        )
    )
    plain = await start_redis(binary, directory)
    stack.push_async_callback(plain.stop)
    empty = await start_redis(binary, directory)
    stack.push_async_callback(empty.stop)
    locked = await start_redis(binary, directory, password=secrets.token_hex(12))
    stack.push_async_callback(locked.stop)
    prefixes = {
        p.key: {e.key: e.client_side_id for e in p.environments}
        for p in simulator.scenario.projects
    }
    healthy_key = redis_synchronized_on_key(prefixes["web"]["production"])
    stale_key = redis_synchronized_on_key(prefixes["web"]["staging"])
    admin = plain.client()
    try:
        await admin.set(stale_key, str(int((time.time() - 900) * 1000)))
        await admin.set(
            redis_synchronized_on_key("launchdarkly"), str(int(time.time() * 1000))
        )
        # Membership data, as LaunchDarkly writes it: one context in beta-users.
        for prefix in (
            prefixes["web"]["production"],
            prefixes["web"]["staging"],
            "launchdarkly",
        ):
            await admin.sadd(
                redis_include_key(prefix, context_hash(DEMO_CONTEXT)),
                segment_ref("beta-users", 2),
            )
    finally:
        await admin.aclose()
    simulator.add_integration(
        "mobile",
        "production",
        "redis",
        name="Mobile production Redis (new, never synced)",
        config={"host": "redis-mobile-2.internal", "port": "6379", "tlsEnabled": False},
        status={"available": True, "potentiallyStale": True},
        integration_id=NEVER_SYNCED,
    )
    writers = [
        asyncio.create_task(_keep_fresh(plain, healthy_key), name="demo:keep-fresh"),
        asyncio.create_task(
            _keep_fresh(plain, redis_synchronized_on_key("launchdarkly")),
            name="demo:relay",
        ),
    ]
    stores = {
        HEALTHY: plain.port,
        STALE: plain.port,
        NEVER_SYNCED: empty.port,
        WRONG_PASSWORD: locked.port,
    }
    return stores, writers


async def run_demo(
    *, listen: str, redactor: Redactor, out: TextIO | None = None
) -> int:
    """Run the demo until SIGINT/SIGTERM."""
    out = sys.stdout if out is None else out
    writers: list[asyncio.Task[None]] = []
    async with AsyncExitStack() as stack:
        simulator = Simulator(load_demo_scenario())
        server = await stack.enter_async_context(
            SimulatorServer(simulator, host="127.0.0.1", port=0)
        )
        stores, writers = await _start_stores(stack, simulator, out)
        tables, table_writers = await start_dynamodb(stack, simulator, out)
        writers += table_writers
        env = {
            "LD_API_TOKEN": simulator.token,
            "DEMO_WRONG_PASSWORD": "not-the-password",
        }
        config = parse_config(demo_config(server.url, listen, stores, tables), env)
        daemon = await stack.enter_async_context(Daemon(config, redactor))
        base = f"http://{_display_host(listen)}:{daemon.port}"
        print(
            "ld-store-monitor demo is running.\n"
            f"  status page   {base}/\n"
            f"  metrics       {base}/metrics\n"
            f"  JSON status   {base}/status\n"
            f"  simulated LaunchDarkly API  {server.url}\n"
            f"  simulator request counters  {server.url}/_sim/stats\n"
            f"  local stores  {len(set(stores.values()))} redis-server processes, "
            f"{len(set(tables.values()))} moto (DynamoDB) server\n"
            "Press Ctrl-C to stop.",
            file=out,
            flush=True,
        )
        try:
            await wait_for_stop_signal()
        finally:
            for task in writers:
                task.cancel()
            await asyncio.gather(*writers, return_exceptions=True)
        print("stopping…", file=out, flush=True)
    return 0


def _display_host(listen: str) -> str:
    host = listen.rpartition(":")[0].strip("[]")
    return "127.0.0.1" if host in {"", "0.0.0.0", "::"} else host
