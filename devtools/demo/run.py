"""Run the demo: the simulator, the local stores, then the daemon watching them.

The daemon runs as `python -m monitor run`, as an operator runs it, in a
child process: its environment carries the API token, the wrong Redis
password and fake AWS keys for moto, so this process's own environment is
never changed and the daemon never sees real AWS settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Final, TextIO

import aiohttp
import yaml

from devtools.demo import plan
from devtools.demo.dynamodb_stores import DynamoDBStores, start_dynamodb_stores
from devtools.demo.redis_stores import (
    RedisStores,
    start_empty_store,
    start_redis_stores,
)
from devtools.ldsim import Simulator, SimulatorServer, load_demo_scenario
from devtools.servers.lifecycle import reap
from devtools.servers.ports import free_port
from devtools.servers.redis_server import RedisServer
from monitor.daemon import wait_for_stop_signal

_TOKEN_ENV: Final = "LD_API_TOKEN"
# The token `ld-store-monitor create` writes with; the daemon's stays read-only.
_WRITER_TOKEN: Final = "sim-writer-token"
# The simulated first sync lands this long after `create --apply`.
FIRST_SYNC_DELAY: Final = 3.0
_WRONG_PASSWORD_ENV: Final = "DEMO_WRONG_PASSWORD"
_WRONG_PASSWORD: Final = "not-the-password"
# moto takes any keys; the empty files keep profiles and real keys out.
_AWS_ENV: Final = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
_START_TIMEOUT: Final = 30.0
_STOP_TIMEOUT: Final = 10.0


def demo_config(
    api_url: str,
    listen: str,
    redis: RedisStores,
    dynamodb: DynamoDBStores,
    log_level: str = "warning",
) -> dict[str, Any]:
    """The daemon's configuration for the demo (secrets come by reference)."""
    credentials: list[dict[str, Any]] = []
    for integration_id, address in redis.addresses.items():
        section: dict[str, Any] = {"address": address}
        if integration_id in redis.wrong_password:
            section["password"] = f"${{{_WRONG_PASSWORD_ENV}}}"
        credentials.append(
            {"match": {"integration_id": integration_id}, "redis": section}
        )
    credentials += [
        {
            "match": {"integration_id": integration_id},
            "dynamodb": {
                "endpoint_url": dynamodb.endpoint_url,
                "region": dynamodb.region,
            },
        }
        for integration_id in dynamodb.ids
    ]
    config: dict[str, Any] = {
        "api": {
            "base_url": api_url,
            "token": f"${{{_TOKEN_ENV}}}",
            "interval": "10s",
            "timeout": "3s",
        },
        "probe": {"interval": "5s", "timeout": "2s"},
        "credentials": credentials,
        "server": {"listen": listen},
        "logging": {"format": "console", "level": log_level},
    }
    if redis.relay is not None and redis.relay_url is not None:
        # A store a Relay Proxy fills (default prefix), watched without the API.
        config["targets"] = [
            {
                "kind": "redis",
                "name": "relay-proxy-store",
                "url": redis.relay_url,
                "prefix": redis.relay.prefix,
                "project": redis.relay.integration.project,
                "environment": redis.relay.integration.environment,
            }
        ]
    return config


async def run_demo(
    *, listen: str, log_level: str = "warning", out: TextIO | None = None
) -> int:
    """Run the demo until SIGINT/SIGTERM; 1 if the daemon stops on its own."""
    out = sys.stdout if out is None else out
    listen = _with_port(listen)
    writers: list[asyncio.Task[None]] = []
    async with AsyncExitStack() as stack:
        directory = Path(
            stack.enter_context(
                tempfile.TemporaryDirectory(prefix="ld-store-monitor-demo-")
            )
        )
        scenario = load_demo_scenario()
        simulator = Simulator(scenario, writer_token=_WRITER_TOKEN)
        server = await stack.enter_async_context(
            SimulatorServer(simulator, host="127.0.0.1", port=0)
        )
        redis, redis_writers = await start_redis_stores(
            stack, plan.stores(scenario, "redis"), directory, out
        )
        dynamodb, dynamodb_writers = await start_dynamodb_stores(
            stack, plan.stores(scenario, "dynamodb"), out
        )
        writers = redis_writers + dynamodb_writers
        simulator.first_sync.enable(
            FIRST_SYNC_DELAY, dynamodb_endpoint_url=dynamodb.endpoint_url
        )
        empty = await start_empty_store(stack, directory)
        config_file = directory / "ld-store-monitor.yaml"
        config_file.write_text(
            yaml.safe_dump(demo_config(server.url, listen, redis, dynamodb, log_level))
        )
        daemon = await _start_daemon(stack, config_file, simulator.token)
        try:
            base = f"http://{_display_host(listen)}:{listen.rpartition(':')[2]}"
            if not await _answers(f"{base}/-/healthy", daemon):
                print(f"the daemon did not start ({_exit(daemon)})", file=out)
                return 1
            print(
                "ld-store-monitor demo is running.\n"
                f"  status page   {base}/\n"
                f"  metrics       {base}/metrics\n"
                f"  JSON status   {base}/status\n"
                f"  simulated LaunchDarkly API  {server.url}\n"
                f"  simulator request counters  {server.url}/_sim/stats\n"
                f"  local stores  {redis.servers} redis-server processes, "
                f"{1 if dynamodb.endpoint_url else 0} moto (DynamoDB) server\n"
                f"{onboarding(directory, server.url, simulator.token, empty)}"
                "Press Ctrl-C to stop.",
                file=out,
                flush=True,
            )
            stopped = asyncio.create_task(wait_for_stop_signal())
            exited = asyncio.create_task(daemon.wait())
            done, _ = await asyncio.wait(
                {stopped, exited}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in (stopped, exited):
                task.cancel()
            await asyncio.gather(stopped, exited, return_exceptions=True)
            if stopped not in done:
                print(f"the daemon stopped on its own ({_exit(daemon)})", file=out)
                return 1
        finally:
            for task in writers:
                task.cancel()
            await asyncio.gather(*writers, return_exceptions=True)
        print("stopping…", file=out, flush=True)
    return 0


def onboarding(
    directory: Path, api_url: str, token: str, empty: RedisServer | None
) -> str:
    """The banner's lines on onboarding a store (nothing without redis-server),
    with a config of its own: the API only."""
    if empty is None:
        return ""
    config_file = directory / "onboard.yaml"
    config_file.write_text(
        yaml.safe_dump({"api": {"base_url": api_url, "token": f"${{{_TOKEN_ENV}}}"}})
    )
    command = (
        f"{_TOKEN_ENV}={token} LD_API_WRITER_TOKEN={_WRITER_TOKEN} "
        f"{sys.executable} -m monitor create --config {config_file} "
        "--project web --environment staging --kind redis "
        f"--host {empty.host} --port {empty.client_port} "
        "--name 'Onboarded store' --on --apply --wait --timeout 1m"
    )
    return (
        f"  onboard a store (an empty redis-server at {empty.address}; the "
        f"simulator syncs it {FIRST_SYNC_DELAY:.0f}s after creation):\n"
        f"    {command}\n"
        "    (without --apply it only runs the preflight and prints the request)\n"
    )


async def _start_daemon(
    stack: AsyncExitStack, config_file: Path, token: str
) -> asyncio.subprocess.Process:
    """Start `python -m monitor run` with its secrets and AWS keys in its env only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= _AWS_ENV | {_TOKEN_ENV: token, _WRONG_PASSWORD_ENV: _WRONG_PASSWORD}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "monitor",
        "run",
        "--config",
        str(config_file),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
    )
    stack.push_async_callback(_stop, process)
    return process


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the daemon (Ctrl-C may have reached it already) and reap it."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        await reap(process, _STOP_TIMEOUT)


async def _answers(url: str, daemon: asyncio.subprocess.Process) -> bool:
    """Wait until the daemon's server answers at `url`; False if it exits first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _START_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while daemon.returncode is None and loop.time() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url):
                    return True
            await asyncio.sleep(0.1)
    return False


def _exit(daemon: asyncio.subprocess.Process) -> str:
    """How the daemon ended, for a message."""
    if daemon.returncode is None:
        return f"no answer within {_START_TIMEOUT:.0f} s"
    return f"exit code {daemon.returncode}"


def _with_port(listen: str) -> str:
    """`listen`, with a free port in place of port 0 (the banner needs the port)."""
    host, _, port = listen.rpartition(":")
    return f"{host}:{free_port()}" if port == "0" else listen


def _display_host(listen: str) -> str:
    host = listen.rpartition(":")[0].strip("[]")
    return "127.0.0.1" if host in {"", "0.0.0.0", "::"} else host
