"""Fixtures of the fault-injection suite: simulators and in-process daemons."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest

from devtools.ldsim import Simulator, SimulatorServer
from monitor.config import parse_config
from monitor.daemon import Daemon
from monitor.log import Redactor
from tests.support.daemon import TOKEN, InProcessDaemon, ServeSimulator, StartDaemon


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

        async def start(raw: dict[str, Any], *, token: str = TOKEN) -> InProcessDaemon:
            config = parse_config(raw, {"LD_API_TOKEN": token})
            daemon = Daemon(config, Redactor())
            stack.push_async_callback(daemon.stop)
            await daemon.start()
            return InProcessDaemon.of(daemon, session)

        yield start
