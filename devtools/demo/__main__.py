"""`python -m devtools.demo`: the simulator, local stores and the daemon."""

from __future__ import annotations

import argparse
import asyncio
import sys

from devtools.demo import run_demo


def main() -> int:
    """Parse the demo's two options and run it until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m devtools.demo",
        description="run a self-contained demo: simulator, local stores and the daemon",
    )
    parser.add_argument(
        "--listen",
        metavar="HOST:PORT",
        default="127.0.0.1:9725",
        help="where the daemon serves",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default="warning",
        help="the daemon's log level",
    )
    args = parser.parse_args()
    try:
        return asyncio.run(run_demo(listen=args.listen, log_level=args.log_level))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
