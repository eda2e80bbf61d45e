"""`ld-store-monitor demo`: the whole product on one machine, nothing to configure.

Starts the LaunchDarkly API simulator with the bundled scenario (integrations
in healthy, potentially stale, unavailable and erroring states across two
projects) and the daemon watching it, prints where to look, and stops
everything it started on Ctrl-C.
"""

from __future__ import annotations

import sys
from contextlib import AsyncExitStack
from typing import Any, TextIO

from monitor.app import Daemon, wait_for_stop_signal
from monitor.config import parse_config
from monitor.log import Redactor
from monitor.simulator import Simulator, SimulatorServer
from monitor.simulator.scenario import load_demo_scenario


def demo_config(api_url: str, listen: str) -> dict[str, Any]:
    """The daemon's configuration for the demo (the token comes by reference)."""
    return {
        "api": {
            "base_url": api_url,
            "token": "${LD_API_TOKEN}",
            "interval": "10s",
            "timeout": "3s",
        },
        "probe": {"interval": "5s", "timeout": "2s"},
        "server": {"listen": listen},
    }


async def run_demo(
    *, listen: str, redactor: Redactor, out: TextIO | None = None
) -> int:
    """Run the demo until SIGINT/SIGTERM."""
    out = sys.stdout if out is None else out
    async with AsyncExitStack() as stack:
        simulator = Simulator(load_demo_scenario())
        server = await stack.enter_async_context(
            SimulatorServer(simulator, host="127.0.0.1", port=0)
        )
        config = parse_config(
            demo_config(server.url, listen), {"LD_API_TOKEN": simulator.token}
        )
        daemon = Daemon(config, redactor)
        stack.push_async_callback(daemon.stop)
        await daemon.start()
        base = f"http://{_display_host(listen)}:{daemon.port}"
        print(
            "ld-store-monitor demo is running.\n"
            f"  status page   {base}/\n"
            f"  metrics       {base}/metrics\n"
            f"  JSON status   {base}/status\n"
            f"  simulated LaunchDarkly API  {server.url}\n"
            f"  simulator request counters  {server.url}/_sim/stats\n"
            "Press Ctrl-C to stop.",
            file=out,
            flush=True,
        )
        await wait_for_stop_signal()
        print("stopping…", file=out, flush=True)
    return 0


def _display_host(listen: str) -> str:
    host = listen.rpartition(":")[0].strip("[]")
    return "127.0.0.1" if host in {"", "0.0.0.0", "::"} else host
