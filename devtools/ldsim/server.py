"""Serve a Simulator over real HTTP on a local port."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from devtools.ldsim.app import Simulator
from devtools.servers.lifecycle import Lifecycle


class SimulatorServer(Lifecycle):
    """Runs a Simulator's app on host:port (port 0 picks a free port)."""

    def __init__(
        self,
        simulator: Simulator,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        access_log: bool = False,
        shutdown_timeout: float = 2.0,
    ) -> None:
        self.simulator = simulator
        self.host = host
        self._requested_port = port
        self._access_log = access_log
        # Short: stalled and slow replies are released on shutdown, so nothing
        # legitimate needs the aiohttp default of 60 s.
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """Return the bound port; RuntimeError before `start`."""
        if self._port is None:
            raise RuntimeError("SimulatorServer is not started")
        return self._port

    @property
    def url(self) -> str:
        """Return the base URL, e.g. `http://127.0.0.1:8765`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind the port and start answering."""
        if self._runner is not None:
            raise RuntimeError("SimulatorServer is already started")
        options: dict[str, Any] = {} if self._access_log else {"access_log": None}
        runner = web.AppRunner(
            self.simulator.make_app(),
            shutdown_timeout=self._shutdown_timeout,
            **options,
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self._requested_port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])

    async def aclose(self) -> None:
        """Stop answering and release the port (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._port = None
