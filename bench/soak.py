"""Soak: thousands of discovery and probe rounds under toggling faults; what grows?

Starts its own redis-server (plain), the fault proxy in a child process in
front of it, and the LaunchDarkly API simulator listing `--targets` Redis
integrations (`--proxied` of them reached through the proxy). Then it runs
`Monitor` (monitor.service.monitor) discovery and probe rounds back to back, every
target forced due each round, switching the proxy between pass, blackhole,
reset, close_after and delay every `--toggle-every` rounds (each switch
also breaks one API reply). RSS, open file descriptors and asyncio tasks
are read after the warm-up, half-way and at the end.

    .venv/bin/python -m bench.soak [--rounds 4000] [--targets 50] [--json]

Exit status 1 when RSS or open descriptors grew by more than `--max-growth`
percent (default 5) from the end of the warm-up to the end.

The redis-server and the fault proxy come from `devtools/servers/`
(`redis_server.py`, `proxy_process.py`); run it from the repository root.
The proxy runs in its own process so that the descriptors and tasks counted
here are the monitor's.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import structlog

from devtools.ldsim import Scenario, Simulator, SimulatorServer
from devtools.servers.proxy_process import ProxyProcess
from devtools.servers.redis_server import RedisServer, start_redis
from monitor.config import parse_config
from monitor.daemon import freeze_startup_objects
from monitor.service.monitor import Monitor

TOKEN = "soak-token"
ENVIRONMENTS = 5
# close_after cuts 3 bytes into GET's reply: `+string\r\n` (TYPE) comes first.
CUT = len(b"+string\r\n") + 3


@dataclass(frozen=True)
class Reading:
    """Resource use at one point of the run."""

    round: int
    rss_kib: int
    open_fds: int
    asyncio_tasks: int


def rss_kib() -> int:
    """Resident set size of this process (VmRSS), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


async def read_resources(round_number: int) -> Reading:
    """Settle, collect garbage, and read RSS, descriptors and tasks."""
    for _ in range(3):
        await asyncio.sleep(0.01)  # let aborted transports close their sockets
    gc.collect()
    return Reading(
        round=round_number,
        rss_kib=rss_kib(),
        open_fds=len(os.listdir("/proc/self/fd")),
        asyncio_tasks=len(asyncio.all_tasks()),
    )


def growth(start: float, now: float) -> float:
    """Percent change from `start` to `now`."""
    return 0.0 if start == 0 else (now - start) / start * 100.0


def scenario(
    redis: RedisServer, proxy: ProxyProcess, targets: int, proxied: int
) -> Scenario:
    """One project, a few environments, `targets` Redis integrations."""
    environments = [
        {"key": f"env{e}", "client_side_id": f"soak{e:020d}"}
        for e in range(ENVIRONMENTS)
    ]
    integrations = []
    for index in range(targets):
        host, port = (
            (proxy.host, proxy.port)
            if index < proxied
            else (redis.host, redis.client_port)
        )
        integrations.append(
            {
                "id": f"{index:024x}",
                "project": "soak",
                "environment": f"env{index % ENVIRONMENTS}",
                "kind": "redis",
                "name": f"soak {index}",
                "config": {"host": host, "port": str(port)},
                "status": {"available": True, "lastSync": "-5s"},
            }
        )
    return Scenario.from_dict(
        {
            "token": TOKEN,
            "projects": [{"key": "soak", "environments": environments}],
            "integrations": integrations,
        }
    )


def seed(redis: RedisServer) -> None:
    """A fresh synchronizedOn under every environment's prefix."""
    now_ms = str(int(time.time() * 1000))
    with redis.admin() as client:
        for e in range(ENVIRONMENTS):
            client.set(f"soak{e:020d}:big_segments_synchronized_on", now_ms)


async def soak(args: argparse.Namespace, redis: RedisServer) -> dict[str, Any]:
    """Run the rounds; the report."""
    modes = (
        "pass",
        "blackhole",
        "reset",
        f"close_after {CUT}",
        f"delay {2 * args.probe_timeout}",
    )
    warmup = max(50, args.rounds // 10)
    middle = warmup + (args.rounds - warmup) // 2
    checkpoints = {warmup: "start", middle: "middle", args.rounds: "end"}
    readings: dict[str, Reading] = {}
    outcomes: dict[str, Counter[str]] = {"direct": Counter(), "proxied": Counter()}
    api_failures = 0
    async with AsyncExitStack() as stack:
        proxy = await stack.enter_async_context(
            ProxyProcess(redis.host, redis.client_port)
        )
        sim = Simulator(scenario(redis, proxy, args.targets, args.proxied))
        server = await stack.enter_async_context(SimulatorServer(sim))
        config = parse_config(
            {
                "api": {"base_url": server.url, "interval": 60, "timeout": 5},
                "probe": {
                    "interval": 60,
                    "timeout": args.probe_timeout,
                    "concurrency": 64,
                },
                "server": {"listen": "127.0.0.1:0"},
            },
            {"LD_API_TOKEN": TOKEN},
        )
        logger = cast(structlog.stdlib.BoundLogger, structlog.get_logger("soak"))
        monitor = await stack.enter_async_context(Monitor(config, logger))
        runner = monitor.runner
        started = time.monotonic()
        measured_from = started
        for number in range(1, args.rounds + 1):
            if (number - 1) % args.toggle_every == 0:
                await proxy.set(modes[(number - 1) // args.toggle_every % len(modes)])
                sim.faults.malformed_next()  # and one broken API reply per switch
            outcome = await monitor.discover()
            if outcome is not None and not outcome.ok:
                api_failures += 1
            for record in runner.records.values():
                record.next_due = 0.0  # every target due: no backoff skips rounds
            await monitor.probe_round()
            if number == 1:
                freeze_startup_objects()  # as the daemon does once it is ready
            for target in monitor.state.targets:
                result = runner.records[target.id].result
                assert result is not None
                group = (
                    "proxied" if proxy.address in (target.address or "") else "direct"
                )
                outcomes[group][str(result.reason or "ok")] += 1
            if number in checkpoints:
                readings[checkpoints[number]] = await read_resources(number)
                if number == warmup:
                    measured_from = time.monotonic()
        finished = time.monotonic()
    start, end = readings["start"], readings["end"]
    rss_growth = growth(start.rss_kib, end.rss_kib)
    fd_growth = growth(start.open_fds, end.open_fds)
    return {
        "rounds": args.rounds,
        "targets": args.targets,
        "proxied": args.proxied,
        "toggle_every": args.toggle_every,
        "probe_timeout": args.probe_timeout,
        "warmup_rounds": warmup,
        "seconds": round(finished - started, 2),
        "rounds_per_second": round(
            (args.rounds - warmup) / max(finished - measured_from, 1e-9), 2
        ),
        "probe_outcomes": {
            group: dict(counts.most_common()) for group, counts in outcomes.items()
        },
        "api_failed_rounds": api_failures,
        "api_requests": sim.stats.snapshot(),
        "readings": {name: asdict(r) for name, r in readings.items()},
        "growth_percent": {
            "rss_middle": round(growth(start.rss_kib, readings["middle"].rss_kib), 2),
            "rss_end": round(rss_growth, 2),
            "fds_middle": round(growth(start.open_fds, readings["middle"].open_fds), 2),
            "fds_end": round(fd_growth, 2),
            "tasks_end": round(growth(start.asyncio_tasks, end.asyncio_tasks), 2),
        },
        "max_growth_percent": args.max_growth,
        "passed": rss_growth <= args.max_growth and fd_growth <= args.max_growth,
    }


def render(report: dict[str, Any]) -> str:
    """The report for people."""
    r = report["readings"]
    g = report["growth_percent"]
    lines = [
        f"soak: {report['rounds']} rounds, {report['targets']} targets "
        f"({report['proxied']} behind the fault proxy), faults switched every "
        f"{report['toggle_every']} rounds, probe timeout {report['probe_timeout']} s",
        f"time: {report['seconds']} s; {report['rounds_per_second']} rounds/s "
        f"after {report['warmup_rounds']} warm-up rounds",
        *(
            f"probe outcomes, {group} targets: "
            + ", ".join(f"{k} {v}" for k, v in counts.items())
            for group, counts in report["probe_outcomes"].items()
        ),
        f"discovery rounds failed (broken API replies): {report['api_failed_rounds']}",
        "",
        f"{'':16}{'start':>10}{'middle':>10}{'end':>10}{'mid %':>9}{'end %':>9}",
    ]
    rows = (
        ("RSS (KiB)", "rss_kib", g["rss_middle"], g["rss_end"]),
        ("open fds", "open_fds", g["fds_middle"], g["fds_end"]),
        (
            "asyncio tasks",
            "asyncio_tasks",
            growth(r["start"]["asyncio_tasks"], r["middle"]["asyncio_tasks"]),
            g["tasks_end"],
        ),
    )
    for label, key, mid, end in rows:
        lines.append(
            f"{label:16}{r['start'][key]:>10}{r['middle'][key]:>10}{r['end'][key]:>10}"
            f"{mid:>+8.1f}%{end:>+8.1f}%"
        )
    verdict = "PASS" if report["passed"] else "FAIL"
    lines += [
        "",
        f"{verdict}: RSS and open-fd growth from start to end "
        f"{'within' if report['passed'] else 'above'} {report['max_growth_percent']} %",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=4000)
    parser.add_argument("--targets", type=int, default=50)
    parser.add_argument(
        "--proxied",
        type=int,
        default=None,
        help="targets behind the proxy (default 1/5)",
    )
    parser.add_argument("--toggle-every", type=int, default=25)
    parser.add_argument("--probe-timeout", type=float, default=0.05)
    parser.add_argument("--max-growth", type=float, default=5.0)
    parser.add_argument(
        "--json", action="store_true", help="also print the report as JSON"
    )
    args = parser.parse_args(argv)
    if args.proxied is None:
        args.proxied = max(1, args.targets // 5)
    if not 0 < args.proxied <= args.targets or args.rounds < 100:
        parser.error("need 0 < --proxied <= --targets and --rounds >= 100")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the soak; 0 when nothing grew beyond the limit."""
    args = parse_args(argv)
    # Only errors (a crashed probe, say) are worth printing during thousands of rounds.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR)
    )
    with tempfile.TemporaryDirectory(prefix="ld-soak-") as tmp:
        redis = start_redis(Path(tmp))
        try:
            seed(redis)
            report = asyncio.run(soak(args, redis))
        finally:
            redis.stop()
    print(render(report))
    if args.json:
        print(json.dumps(report, indent=2))
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
