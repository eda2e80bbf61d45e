"""Fixtures of the fault-injection suite: proxy children, simulators, in-process daemons."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest

from devtools.ldsim import Simulator, SimulatorServer
from devtools.servers.proxy_process import ProxyProcess
from monitor.config import parse_config
from monitor.daemon import Daemon
from monitor.log import Redactor
from tests.faults.daemon_harness import TOKEN, RunningDaemon, StartDaemon

MakeProxyProcess = Callable[[str, int], Awaitable[ProxyProcess]]
ServeSimulator = Callable[[Simulator], Awaitable[str]]


@pytest.fixture
async def proxy_process() -> AsyncIterator[MakeProxyProcess]:
    """Factory: `await proxy_process(host, port)` starts a proxy child; all stopped after."""
    started: list[ProxyProcess] = []

    async def make(upstream_host: str, upstream_port: int) -> ProxyProcess:
        proxy = ProxyProcess(upstream_host, upstream_port)
        await proxy.start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        await proxy.aclose()


@pytest.fixture
async def serve_simulator() -> AsyncIterator[ServeSimulator]:
    """Factory: `await serve_simulator(sim)` serves it on loopback; its base URL."""
    async with AsyncExitStack() as stack:

        async def serve(simulator: Simulator) -> str:
            server = await stack.enter_async_context(SimulatorServer(simulator))
            return server.url

        yield serve


@pytest.fixture
async def start_daemon(
    serve_simulator: ServeSimulator,  # requested so that simulators outlive daemons
) -> AsyncIterator[StartDaemon]:
    """Factory: `await start_daemon(raw_config, token=...)`; every daemon stopped after."""
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())

        async def start(raw: dict[str, Any], *, token: str = TOKEN) -> RunningDaemon:
            config = parse_config(raw, {"LD_API_TOKEN": token})
            daemon = Daemon(config, Redactor())
            stack.push_async_callback(daemon.stop)
            await daemon.start()
            return RunningDaemon(daemon, session)

        yield start
