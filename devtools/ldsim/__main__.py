"""Run the LaunchDarkly API simulator: `python -m devtools.ldsim --port 8765`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from devtools.ldsim.app import Simulator
from devtools.ldsim.scenario import Scenario, load_demo_scenario, load_scenario
from devtools.ldsim.server import SimulatorServer


def main(argv: list[str] | None = None) -> int:
    """Serve a scenario until SIGINT or SIGTERM; exit 2 on a bad scenario."""
    parser = argparse.ArgumentParser(
        prog="python -m devtools.ldsim",
        description="Serve a simulated LaunchDarkly REST API (big segment stores).",
    )
    parser.add_argument("--scenario", help="YAML or JSON scenario (default: the demo)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free)")
    parser.add_argument("--token", help="access token to accept (default: scenario's)")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    try:
        scenario = (
            load_scenario(args.scenario) if args.scenario else load_demo_scenario()
        )
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    simulator = Simulator(scenario, token=args.token)
    try:
        asyncio.run(_serve(simulator, args.host, args.port, access_log=not args.quiet))
    except OSError as err:
        print(f"cannot listen on {args.host}:{args.port}: {err}", file=sys.stderr)
        return 1
    return 0


async def _serve(
    simulator: Simulator, host: str, port: int, *, access_log: bool
) -> None:
    """Serve until a stop signal arrives."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with SimulatorServer(simulator, host, port, access_log=access_log) as server:
        print(_banner(server.url, simulator.token, simulator.scenario), flush=True)
        await stop.wait()
    print("LaunchDarkly API simulator stopped", flush=True)


def _banner(url: str, token: str, scenario: Scenario) -> str:
    """Return the startup lines: where to point a client and what it will find."""
    return (
        f"LaunchDarkly API simulator listening on {url}\n"
        f"  token: {token}  (send as 'Authorization: {token}', no Bearer)\n"
        f"  {len(scenario.projects)} projects, "
        f"{len(scenario.integrations)} integrations; "
        f"control routes under {url}/_sim/"
    )


if __name__ == "__main__":
    sys.exit(main())
